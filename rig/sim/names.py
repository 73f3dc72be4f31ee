"""Names of the elements the twin adds to the MuJoCo model (all start with "rig/", tasks use others)."""

from __future__ import annotations

from rig.sim import rizon4s

PREFIX = "rig/"
TABLE = "rig/table"
FLOOR = "rig/floor"


def base(arm: str) -> str:
    return f"rig/{arm}/base"


def link(arm: str, index: int) -> str:
    return f"rig/{arm}/link{index}"


def joint(arm: str, index: int) -> str:
    """Name of joint `index` in 1..7."""
    return f"rig/{arm}/{rizon4s.JOINTS[index - 1].name}"


def joints(arm: str) -> list[str]:
    return [joint(arm, i) for i in range(1, len(rizon4s.JOINTS) + 1)]


def position_actuator(arm: str, index: int) -> str:
    return f"rig/{arm}/pos{index}"


def velocity_actuator(arm: str, index: int) -> str:
    return f"rig/{arm}/vel{index}"


def gripper(arm: str) -> str:
    return f"rig/{arm}/gripper"


def finger_joint(arm: str, side: str) -> str:
    """Slide joint of finger `side` in ("a", "b"); its position is half the finger distance."""
    return f"rig/{arm}/finger_{side}"


def finger_pad(arm: str, side: str) -> str:
    return f"rig/{arm}/pad_{side}"


def gripper_tendon(arm: str) -> str:
    return f"rig/{arm}/finger_width"


def gripper_actuator(arm: str) -> str:
    return f"rig/{arm}/gripper_act"


def flange_site(arm: str) -> str:
    return f"rig/{arm}/flange"


def tcp_site(arm: str) -> str:
    return f"rig/{arm}/tcp"


def camera(name: str) -> str:
    """MuJoCo camera of rig camera `name` (front, wrist_left, wrist_right)."""
    return f"rig/{name}"
