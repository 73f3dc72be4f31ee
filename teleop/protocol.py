"""The headset-agnostic teleop input protocol: one msgpack map per message, no pickle, no extension types.

A **frame** message carries the headset and both controller poses, each controller's buttons and
analog trigger/grip, a per-message timestamp and a sequence number. A **command** message carries an
episode command from a page button (start, stop, success, failure, discard, recenter, or instruction with
the next episode's instruction in `text`). Both are the same
on ZeroMQ (one message per ZeroMQ frame) and on the WebXR page's WebSocket (one binary message each).
Field by field (docs/teleop.md has the same table):

    v        int     protocol version, 1
    kind     str     "frame" | "command"
    seq      int     sequence number, strictly increasing per sender (>= 0)
    t        float   sender time in seconds at which the poses were sampled (any monotonic clock)
    headset  [7]     frame only: headset pose [x y z qx qy qz qw] in the VR frame
    left     map     frame only: {"pose": [7], "trigger": 0..1, "grip": 0..1, "buttons": {name: bool}}
    right    map     frame only: same for the right controller
    command  str     command only: one of COMMANDS
    text     str     command "instruction" only: the instruction of the next episodes (1..500 characters)

The VR frame is the OpenXR/WebXR convention (`local-floor` reference space): right-handed, metres,
+y up, -z forward (the way the operator faces at start), +x to the operator's right; quaternions are
scalar-last unit quaternions. Button names are free-form strings (the Quest's "a", "b", "x", "y",
"thumbstick", "menu"); config/teleop.yaml maps them to actions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import msgpack
import numpy as np
from numpy.typing import NDArray

from rig.conventions import ARM_NAMES

VERSION: Final = 1
KINDS: Final = ("frame", "command")
COMMANDS: Final = ("start", "stop", "success", "failure", "discard", "recenter", "instruction")
MAX_TEXT: Final = 500
MAX_MESSAGE_BYTES: Final = 8192
"""A frame is about 300 bytes; anything this large is malformed (bounds the decoder's work)."""
QUAT_TOL: Final = 0.05


class ProtocolError(ValueError):
    """A message that does not follow the protocol; the text names the field, the value and the form."""


@dataclass(frozen=True)
class ControllerState:
    """One controller: pose in the VR frame, trigger and grip in [0, 1], named buttons."""

    pose: NDArray[np.float64]
    trigger: float
    grip: float
    buttons: Mapping[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class VRFrame:
    """One decoded frame message."""

    seq: int
    t: float
    headset: NDArray[np.float64]
    controllers: Mapping[str, ControllerState]


@dataclass(frozen=True)
class VRCommand:
    """One decoded command message (from a page button or another client)."""

    seq: int
    t: float
    command: str
    text: str = ""


Message = VRFrame | VRCommand


def _pose(value: Any, where: str) -> NDArray[np.float64]:
    if not isinstance(value, (list, tuple)) or len(value) != 7 or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in value):
        raise ProtocolError(f"{where}: {value!r:.80}, expected 7 numbers [x y z qx qy qz qw]")
    arr = np.array(value, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ProtocolError(f"{where}: {value!r:.80} has non-finite values")
    norm = float(np.linalg.norm(arr[3:]))
    if abs(norm - 1.0) > QUAT_TOL:
        raise ProtocolError(f"{where}: quaternion norm {norm:.4f}, expected a unit quaternion (qx qy qz qw)")
    arr[3:] /= norm
    return arr


def _unit(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ProtocolError(f"{where}: {value!r:.40}, expected a number in [0, 1]")
    if not -1e-6 <= value <= 1.0 + 1e-6:
        raise ProtocolError(f"{where}: {value}, expected a number in [0, 1]")
    return min(max(float(value), 0.0), 1.0)


def _controller(value: Any, where: str) -> ControllerState:
    if not isinstance(value, Mapping):
        raise ProtocolError(f"{where}: {type(value).__name__}, expected a map with pose, trigger, grip, buttons")
    buttons = value.get("buttons", {})
    if not isinstance(buttons, Mapping) or not all(isinstance(k, str) and isinstance(b, bool)
                                                   for k, b in buttons.items()):
        raise ProtocolError(f"{where}.buttons: {buttons!r:.80}, expected a map of name -> true/false")
    return ControllerState(pose=_pose(value.get("pose"), f"{where}.pose"),
                           trigger=_unit(value.get("trigger", 0.0), f"{where}.trigger"),
                           grip=_unit(value.get("grip", 0.0), f"{where}.grip"), buttons=dict(buttons))


def decode(raw: bytes) -> Message:
    """Parse and validate one message; raises ProtocolError naming what is wrong."""
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise ProtocolError(f"message: {type(raw).__name__}, expected bytes (msgpack)")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message: {len(raw)} bytes, expected at most {MAX_MESSAGE_BYTES}")
    try:
        # strict_map_key and no ext_hook: only plain msgpack types come out; nothing is executed.
        data = msgpack.unpackb(bytes(raw), raw=False, strict_map_key=True)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, TypeError) as exc:
        raise ProtocolError(f"message: not a msgpack value ({exc})") from None
    if not isinstance(data, Mapping):
        raise ProtocolError(f"message: {type(data).__name__}, expected a msgpack map")
    if data.get("v") != VERSION:
        raise ProtocolError(f"message.v: {data.get('v')!r}, expected protocol version {VERSION}")
    kind = data.get("kind")
    if kind not in KINDS:
        raise ProtocolError(f"message.kind: {kind!r}, expected one of {list(KINDS)}")
    seq = data.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise ProtocolError(f"message.seq: {seq!r}, expected an integer >= 0")
    t = data.get("t")
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
        raise ProtocolError(f"message.t: {t!r}, expected the sender time in seconds")
    if kind == "command":
        command = data.get("command")
        if command not in COMMANDS:
            raise ProtocolError(f"message.command: {command!r}, expected one of {list(COMMANDS)}")
        text = data.get("text", "")
        if command == "instruction" and (not isinstance(text, str) or not 0 < len(text.strip()) <= MAX_TEXT):
            raise ProtocolError(f"message.text: {text!r:.60}, expected the instruction (1..{MAX_TEXT} characters)")
        return VRCommand(seq, float(t), command, text.strip() if isinstance(text, str) else "")
    controllers = {arm: _controller(data.get(arm), f"message.{arm}") for arm in ARM_NAMES}
    return VRFrame(seq, float(t), _pose(data.get("headset"), "message.headset"), controllers)


def _list(pose: Any) -> list[float]:
    return [float(x) for x in np.asarray(pose, dtype=np.float64).reshape(7)]


def encode_frame(seq: int, t: float, headset: Any, controllers: Mapping[str, ControllerState]) -> bytes:
    """msgpack bytes of one frame message."""
    body: dict[str, Any] = {"v": VERSION, "kind": "frame", "seq": int(seq), "t": float(t), "headset": _list(headset)}
    for arm in ARM_NAMES:
        c = controllers[arm]
        body[arm] = {"pose": _list(c.pose), "trigger": float(c.trigger), "grip": float(c.grip),
                     "buttons": {str(k): bool(v) for k, v in c.buttons.items()}}
    return msgpack.packb(body, use_bin_type=True)


def encode_command(seq: int, t: float, command: str, text: str = "") -> bytes:
    """msgpack bytes of one command message (`text`: the instruction, for command "instruction")."""
    if command not in COMMANDS:
        raise ProtocolError(f"command {command!r}: expected one of {list(COMMANDS)}")
    body: dict[str, Any] = {"v": VERSION, "kind": "command", "seq": int(seq), "t": float(t), "command": command}
    if text:
        body["text"] = text
    return msgpack.packb(body, use_bin_type=True)


def restamp(raw: bytes, t: float) -> bytes:
    """The same message with its timestamp replaced by `t` (a sender putting its clock in at send time)."""
    data = msgpack.unpackb(raw, raw=False, strict_map_key=True)
    data["t"] = float(t)
    return msgpack.packb(data, use_bin_type=True)
