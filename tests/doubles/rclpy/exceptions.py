"""Test double of `rclpy.exceptions` (the names rclpy uses)."""


class ParameterNotDeclaredException(Exception):  # noqa: N818 - rclpy's name
    """Raised by get_parameter for a name that was never declared."""


class ParameterAlreadyDeclaredException(Exception):  # noqa: N818 - rclpy's name
    """Raised by declare_parameter for a name declared before."""
