"""The interface the policy node drives, and how the node finds the implementation.

The policy loop itself (model inference, real-time chunking, the policy client) lives elsewhere; the
node only needs this protocol:

- `on_observation(obs: Observation) -> None` is called once per synchronized observation (30 Hz, from
  the ROS executor thread); it must return quickly (hand the observation to its own worker).
- `next_chunk() -> CommandChunk | None` is polled at `publish_hz`; it returns a new chunk exactly once,
  or None when there is nothing new. Chunk times are host monotonic seconds (the node stamps them).

Optional methods, called when present: `start()` / `stop()` (operator start/stop and e-stop),
`close()` (node shutdown), `diagnostics() -> Mapping[str, float | str]` (merged into /diagnostics).

The node builds the loop with the callable named by the `policy_loop_factory` parameter,
"package.module:function", called as `factory(policy=<checkpoint path or tcp://host:port>,
instruction=<task text>, params=<the node's nested parameters>)`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from rig.config import ConfigError
from rig.schema import CommandChunk, Observation


@runtime_checkable
class PolicyLoop(Protocol):
    """What the policy node needs from a policy: observations in, command chunks out."""

    def on_observation(self, obs: Observation) -> None:
        """Take one synchronized observation (non-blocking)."""
        ...

    def next_chunk(self) -> CommandChunk | None:
        """A newly produced chunk, once, or None."""
        ...


PolicyLoopFactory = Callable[..., PolicyLoop]


def load_factory(spec: str, where: str = "policy_loop_factory") -> PolicyLoopFactory:
    """Resolve "package.module:function" to the callable; ConfigError naming the parameter otherwise."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{where}: {spec!r}, expected 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{where}: cannot import {module_name!r} ({exc})") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ConfigError(f"{where}: {module_name!r} has no callable {attr!r}")
    return factory


def build_policy_loop(spec: str, policy: str, instruction: str, params: Mapping[str, Any]) -> PolicyLoop:
    """Load the factory and build the loop; checks the result satisfies `PolicyLoop`."""
    loop = load_factory(spec)(policy=policy, instruction=instruction, params=dict(params))
    if not isinstance(loop, PolicyLoop):
        raise ConfigError(f"policy_loop_factory: {spec!r} returned {type(loop).__name__}, which lacks "
                          "on_observation(obs) / next_chunk()")
    return loop
