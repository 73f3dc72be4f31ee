"""Test double of `rclpy.node.Node` and its entities, with the documented signatures:
`create_publisher(msg_type, topic, qos_profile)`, `create_subscription(msg_type, topic, callback,
qos_profile)`, `create_service(srv_type, srv_name, callback)`, `create_timer(timer_period_sec,
callback)`, `get_logger()`, `declare_parameter(name, value=None)`, `get_parameter(name)`,
`get_parameters_by_prefix(prefix)`, `destroy_node()`.

Everything runs in-process: a publish is queued for every subscription on the same topic whose QoS is
compatible (as DDS would match them) and delivered by `rclpy.spin_once`. Test-only inspection lives
in `rclpy.testing`, not here.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from rclpy.context import Context, get_default_context
from rclpy.exceptions import ParameterAlreadyDeclaredException, ParameterNotDeclaredException
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, compatible, qos_profile_services_default


def _check_qos(qos_profile: QoSProfile | int, what: str) -> QoSProfile:
    if isinstance(qos_profile, int):
        return QoSProfile(depth=qos_profile)
    if not isinstance(qos_profile, QoSProfile):
        raise TypeError(f"{what}: qos_profile must be a QoSProfile or a history depth, got {qos_profile!r}")
    return qos_profile


def _check_msg_type(msg_type: Any, what: str) -> None:
    if not isinstance(msg_type, type) or not hasattr(msg_type, "get_fields_and_field_types"):
        raise TypeError(f"{what}: {msg_type!r} is not a ROS message class")


class Publisher:
    """Returned by `Node.create_publisher`; `publish(msg)` requires an instance of `msg_type`."""

    def __init__(self, node: Node, msg_type: type, topic: str, qos_profile: QoSProfile) -> None:
        self.node = node
        self.msg_type = msg_type
        self.topic = topic
        self.qos_profile = qos_profile
        self.published: list[Any] = []

    @property
    def topic_name(self) -> str:
        return self.topic

    def publish(self, msg: Any) -> None:
        if not isinstance(msg, self.msg_type):
            raise TypeError(f"Expected {self.msg_type.__name__}, got {type(msg).__name__}")
        self.published.append(msg)
        self.node.context.route(self, msg)

    def get_subscription_count(self) -> int:
        return sum(1 for s in self.node.context.subscriptions(self.topic) if compatible(self.qos_profile,
                                                                                         s.qos_profile))

    def destroy(self) -> None:
        self.node.publishers.remove(self)


class Subscription:
    """Returned by `Node.create_subscription`; messages wait in `pending` until spun."""

    def __init__(self, node: Node, msg_type: type, topic: str, callback: Callable[[Any], None],
                 qos_profile: QoSProfile) -> None:
        self.node = node
        self.msg_type = msg_type
        self.topic = topic
        self.callback = callback
        self.qos_profile = qos_profile
        self.pending: deque[Any] = deque()

    @property
    def topic_name(self) -> str:
        return self.topic

    def enqueue(self, msg: Any) -> None:
        self.pending.append(msg)
        depth = self.qos_profile.depth
        while depth > 0 and len(self.pending) > depth:  # KEEP_LAST drops the oldest
            self.pending.popleft()


class Service:
    """Returned by `Node.create_service`; the callback is `callback(request, response) -> response`."""

    def __init__(self, node: Node, srv_type: type, srv_name: str, callback: Callable[[Any, Any], Any],
                 qos_profile: QoSProfile) -> None:
        if not (hasattr(srv_type, "Request") and hasattr(srv_type, "Response")):
            raise TypeError(f"create_service: {srv_type!r} is not a ROS service type")
        self.node = node
        self.srv_type = srv_type
        self.srv_name = srv_name
        self.callback = callback
        self.qos_profile = qos_profile


class Timer:
    """Returned by `Node.create_timer`; fires from `spin_once` once its period has elapsed."""

    def __init__(self, timer_period_sec: float, callback: Callable[[], None]) -> None:
        if timer_period_sec <= 0:
            raise ValueError(f"create_timer: period {timer_period_sec} must be positive")
        self.timer_period_ns = round(timer_period_sec * 1e9)
        self.callback = callback
        self.cancelled = False
        self._next = time.monotonic() + timer_period_sec

    def cancel(self) -> None:
        self.cancelled = True

    def is_canceled(self) -> bool:
        return self.cancelled

    def reset(self) -> None:
        self.cancelled = False
        self._next = time.monotonic() + self.timer_period_ns * 1e-9

    def due(self, now: float) -> bool:
        return not self.cancelled and now >= self._next

    def fire(self) -> None:
        self._next = max(self._next + self.timer_period_ns * 1e-9, time.monotonic())
        self.callback()


class RcutilsLogger:
    """`node.get_logger()`: debug/info/warning (warn)/error/fatal, routed to Python logging."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._log = logging.getLogger(f"ros.{name}")

    def debug(self, message: str, **_: Any) -> bool:
        self._log.debug(message)
        return True

    def info(self, message: str, **_: Any) -> bool:
        self._log.info(message)
        return True

    def warning(self, message: str, **_: Any) -> bool:
        self._log.warning(message)
        return True

    warn = warning

    def error(self, message: str, **_: Any) -> bool:
        self._log.error(message)
        return True

    def fatal(self, message: str, **_: Any) -> bool:
        self._log.critical(message)
        return True


class Node:
    """`Node(node_name, *, namespace=None, parameter_overrides=None,
    allow_undeclared_parameters=False, automatically_declare_parameters_from_overrides=False)`."""

    def __init__(
        self,
        node_name: str,
        *,
        context: Context | None = None,
        cli_args: list[str] | None = None,
        namespace: str | None = None,
        use_global_arguments: bool = True,
        enable_rosout: bool = True,
        start_parameter_services: bool = True,
        parameter_overrides: list[Parameter] | None = None,
        allow_undeclared_parameters: bool = False,
        automatically_declare_parameters_from_overrides: bool = False,
    ) -> None:
        self.context = context or get_default_context()
        if not self.context.ok():
            raise RuntimeError("rclpy.init() has not been called")
        if not node_name or not node_name.replace("_", "a").isalnum():
            raise ValueError(f"Invalid node name: {node_name!r}")
        self._name = node_name
        self._namespace = namespace or "/"
        self.publishers: list[Publisher] = []
        self.subscriptions: list[Subscription] = []
        self.services: list[Service] = []
        self.timers: list[Timer] = []
        self._overrides = {p.name: p for p in (parameter_overrides or [])}
        self._parameters: dict[str, Parameter] = {}
        self._allow_undeclared = allow_undeclared_parameters
        if automatically_declare_parameters_from_overrides:
            self._parameters.update(self._overrides)
        self._logger = RcutilsLogger(node_name)
        self.destroyed = False
        self.context.add_node(self)

    def get_name(self) -> str:
        return self._name

    def get_namespace(self) -> str:
        return self._namespace

    def get_logger(self) -> RcutilsLogger:
        return self._logger

    def _resolve(self, name: str) -> str:
        if name.startswith("/"):
            return name
        if name.startswith("~/"):
            return f"{self._namespace.rstrip('/')}/{self._name}/{name[2:]}"
        return f"{self._namespace.rstrip('/')}/{name}"

    def create_publisher(self, msg_type: type, topic: str, qos_profile: QoSProfile | int, *,
                         callback_group: Any = None, event_callbacks: Any = None,
                         qos_overriding_options: Any = None, publisher_class: Any = None) -> Publisher:
        _check_msg_type(msg_type, "create_publisher")
        pub = Publisher(self, msg_type, self._resolve(topic), _check_qos(qos_profile, "create_publisher"))
        self.publishers.append(pub)
        return pub

    def create_subscription(self, msg_type: type, topic: str, callback: Callable[[Any], None],
                            qos_profile: QoSProfile | int, *, callback_group: Any = None,
                            event_callbacks: Any = None, qos_overriding_options: Any = None,
                            raw: bool = False) -> Subscription:
        _check_msg_type(msg_type, "create_subscription")
        if not callable(callback):
            raise TypeError("create_subscription: callback is not callable")
        sub = Subscription(self, msg_type, self._resolve(topic), callback,
                           _check_qos(qos_profile, "create_subscription"))
        self.subscriptions.append(sub)
        return sub

    def create_service(self, srv_type: type, srv_name: str, callback: Callable[[Any, Any], Any], *,
                       qos_profile: QoSProfile = qos_profile_services_default,
                       callback_group: Any = None) -> Service:
        srv = Service(self, srv_type, self._resolve(srv_name), callback, qos_profile)
        if any(s.srv_name == srv.srv_name for n in self.context.nodes for s in n.services):
            raise RuntimeError(f"service {srv.srv_name} already exists")
        self.services.append(srv)
        return srv

    def create_timer(self, timer_period_sec: float, callback: Callable[[], None],
                     callback_group: Any = None, clock: Any = None) -> Timer:
        timer = Timer(timer_period_sec, callback)
        self.timers.append(timer)
        return timer

    def declare_parameter(self, name: str, value: Any = None, descriptor: Any = None,
                          ignore_override: bool = False) -> Parameter:
        if name in self._parameters:
            raise ParameterAlreadyDeclaredException(name)
        if name in self._overrides and not ignore_override:
            param = self._overrides[name]
        else:
            param = Parameter(name, value=value)
        self._parameters[name] = param
        return param

    def has_parameter(self, name: str) -> bool:
        return name in self._parameters

    def get_parameter(self, name: str) -> Parameter:
        if name in self._parameters:
            return self._parameters[name]
        if self._allow_undeclared:
            return Parameter(name)
        raise ParameterNotDeclaredException(name)

    def get_parameters_by_prefix(self, prefix: str) -> dict[str, Parameter]:
        """Declared parameters under `prefix.`, keyed by the rest of their name (all when prefix is '')."""
        if not prefix:
            return dict(self._parameters)
        head = prefix + "."
        return {k[len(head):]: v for k, v in self._parameters.items() if k.startswith(head)}

    def add_on_set_parameters_callback(self, callback: Callable[[list[Parameter]], Any]) -> None:
        self._set_callbacks = [*getattr(self, "_set_callbacks", []), callback]

    def set_parameters(self, parameter_list: list[Parameter]) -> list[Any]:
        """Like rclpy: each callback sees the list first; the values change only when all accept."""
        results = []
        for param in parameter_list:
            result = None
            for callback in getattr(self, "_set_callbacks", []):
                result = callback([param])
                if not result.successful:
                    break
            if result is None or result.successful:
                if param.name not in self._parameters and not self._allow_undeclared:
                    raise ParameterNotDeclaredException(param.name)
                self._parameters[param.name] = param
            results.append(result)
        return results

    def destroy_node(self) -> None:
        self.destroyed = True
        self.context.remove_node(self)
