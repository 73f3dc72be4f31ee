"""The typed policy interface every policy implementation, the server and the client speak.

A request carries the newest synchronized observation (images, arm states, instruction) and the
committed action prefix (the steps that will execute while inference runs); the reply is an
absolute `(T, 2, 8)` command chunk in the rig layout plus timing. Everything is plain numpy, so the
same objects travel over the wire unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from rig.conventions import ARM_NAMES, COMMAND_DIM
from rig.rotations import UNIT_QUAT_TOL
from rig.schema import SchemaError


@dataclass
class PolicyRequest:
    """Inputs of one inference.

    images: camera name -> (H, W, 3) uint8 RGB. state: (2, 8) current TCP pose in each arm's base
    frame plus gripper opening. prefix: (K, 2, 8) absolute targets already committed, K >= 0.
    """

    images: dict[str, NDArray[np.uint8]]
    state: NDArray[np.float64]
    instruction: str
    t_obs: float = 0.0
    prefix: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, len(ARM_NAMES), COMMAND_DIM)))

    def validate(self) -> PolicyRequest:
        """Check shapes and dtypes; raise SchemaError naming the field."""
        if not isinstance(self.instruction, str):
            raise SchemaError(f"request.instruction: {type(self.instruction).__name__}, expected str")
        for name, image in self.images.items():
            if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                desc = f"{getattr(image, 'dtype', type(image).__name__)} {getattr(image, 'shape', '')}"
                raise SchemaError(f"request.images[{name!r}]: {desc}, expected uint8 (H, W, 3)")
        state = np.asarray(self.state, dtype=np.float64)
        if state.shape != (len(ARM_NAMES), COMMAND_DIM) or not np.all(np.isfinite(state)):
            raise SchemaError(f"request.state: shape {state.shape}, expected finite (2, 8)")
        prefix = np.asarray(self.prefix, dtype=np.float64)
        if prefix.ndim != 3 or prefix.shape[1:] != (len(ARM_NAMES), COMMAND_DIM) or not np.all(np.isfinite(prefix)):
            raise SchemaError(f"request.prefix: shape {prefix.shape}, expected finite (K, 2, 8)")
        for name, values in (("state", state), ("prefix", prefix)):
            norms = np.linalg.norm(values[..., 3:7], axis=-1)
            bad = np.argwhere(np.abs(norms - 1.0) > UNIT_QUAT_TOL)
            if bad.size:
                where = tuple(int(i) for i in bad[0])
                raise SchemaError(f"request.{name}{list(where)}: quaternion norm {norms[where]:.4f}, expected a unit "
                                  f"quaternion (|norm - 1| <= {UNIT_QUAT_TOL}) in [3:7]")
        self.state, self.prefix = state, prefix
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"images": self.images, "state": self.state, "instruction": self.instruction,
                "t_obs": float(self.t_obs), "prefix": self.prefix}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicyRequest:
        try:
            images = dict(data["images"])
            return cls(images=images, state=data["state"], instruction=data["instruction"],
                       t_obs=float(data.get("t_obs", 0.0)),
                       prefix=data.get("prefix", np.zeros((0, len(ARM_NAMES), COMMAND_DIM)))).validate()
        except KeyError as exc:
            raise SchemaError(f"request: missing field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            if isinstance(exc, SchemaError):
                raise
            raise SchemaError(f"request: malformed ({exc})") from None


@dataclass
class PolicyResult:
    """An absolute command chunk `(T, 2, 8)` whose step 0 is due at the observation time plus
    `len(prefix) * dt`; `timing` holds milliseconds per stage."""

    chunk: NDArray[np.float64]
    dt: float
    timing: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"chunk": self.chunk, "dt": float(self.dt), "timing": dict(self.timing)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicyResult:
        try:
            return cls(chunk=np.asarray(data["chunk"], dtype=np.float64), dt=float(data["dt"]),
                       timing={k: float(v) for k, v in data.get("timing", {}).items()})
        except KeyError as exc:
            raise SchemaError(f"result: missing field {exc.args[0]!r}") from None


@runtime_checkable
class Policy(Protocol):
    """What a policy offers: static metadata and one inference call."""

    def metadata(self) -> dict[str, Any]:
        """Config, action layout, rates and model hash; plain msgpack-able values."""
        ...

    def infer(self, request: PolicyRequest) -> PolicyResult:
        """One action chunk for the request."""
        ...
