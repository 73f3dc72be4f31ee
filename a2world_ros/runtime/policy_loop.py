"""The policy loop: observations in (30 Hz), command chunks out, inference in the background.

It implements the protocol the ROS policy node drives (`a2world_ros/nodes/policy_loop.py`):
`on_observation(obs)` (non-blocking), `next_chunk()` (a new chunk once, else None), `start()`,
`stop()`, `close()`, `diagnostics()`; the no-ROS graph (`a2world_ros/run_policy.py`) drives it the
same way and hands each chunk to the chunk executor.

Scheduling (real-time chunking): the loop keeps the plan it last emitted (what the executor runs). When
less than `trigger_remaining_s` of that plan lies ahead, it starts an inference on the newest
observation. The request carries the committed prefix: the plan's own targets for the next K steps
after the observation time, K covering the p95 of the measured inference latency plus a margin, so
those steps execute unchanged while the policy thinks. The emitted chunk is prefix + result, starting
at the observation time, so the executor splices it without a jump. A failed inference (server down,
timeout) is counted and retried after `retry_s`; meanwhile the executor finishes the plan and holds the
last target. A result whose observation is older than `max_result_age_s` when it would be released is
dropped and counted (`expired_results`).

Two modes: "thread" runs inference on a worker thread (real time); "inline" (the twin in lockstep)
runs it inside `on_observation` and releases the chunk only once the loop's clock has advanced by the
simulated latency (`sim_latency_s`, or the measured wall time), so a lockstep run is deterministic.

The loop depends only on the `Policy` protocol (`policy.interface`): no torch here.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

from policy.interface import Policy, PolicyRequest, PolicyResult
from rig.config import ConfigError, load_yaml
from rig.conventions import ARM_NAMES, COMMAND_DIM, POLICY_HZ
from rig.executor import ArmPlan
from rig.schema import CommandChunk, Observation, SchemaError
from rig.timing import Clock, MonotonicClock

log = logging.getLogger(__name__)

MODES = ("thread", "inline")


@dataclass(frozen=True)
class PolicyLoopConfig:
    """Loop tunables (config/run.yaml, `policy_loop:`); see the comments there."""

    trigger_remaining_s: float = 1.0
    min_interval_s: float = 0.1
    initial_latency_s: float = 0.2
    latency_window: int = 50
    prefix_quantile: float = 95.0
    prefix_margin_s: float = 0.04
    max_prefix_steps: int = 15
    retry_s: float = 0.5
    max_observation_age_s: float = 0.2
    max_result_age_s: float = 1.0
    """A chunk is released only while its observation is at most this old; older results are dropped."""
    sim_latency_s: float | None = 0.15
    """None: lockstep uses the measured wall-clock latency ("measured" in YAML)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"policy_loop.{f.name}: {value}, expected a finite number >= 0")
        if self.latency_window < 1:
            raise ConfigError(f"policy_loop.latency_window: {self.latency_window}, expected >= 1")
        if not 0 < self.prefix_quantile <= 100:
            raise ConfigError(f"policy_loop.prefix_quantile: {self.prefix_quantile}, expected a percentile in (0, 100]")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "policy_loop") -> PolicyLoopConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown keys {unknown} (known: {sorted(known)})")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key == "sim_latency_s" and value in ("measured", None):
                kwargs[key] = None
                continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                expected = "a number or 'measured'" if key == "sim_latency_s" else "a number"
                raise ConfigError(f"{where}.{key}: {value!r}, expected {expected}") from None
            kwargs[key] = int(number) if key in ("latency_window", "max_prefix_steps") else number
        try:
            return cls(**kwargs)
        except ConfigError as exc:
            raise ConfigError(str(exc).replace("policy_loop.", f"{where}.", 1)) from None


class LatencyTracker:
    """Inference latencies (seconds) over a sliding window: p50, p95 and any percentile."""

    def __init__(self, window: int, initial_s: float) -> None:
        self._values: deque[float] = deque(maxlen=window)
        self.initial_s = initial_s
        self.count = 0

    def add(self, seconds: float) -> None:
        self._values.append(float(seconds))
        self.count += 1

    def percentile(self, q: float) -> float:
        """The q-th percentile of the window; the configured initial estimate while it is empty."""
        if not self._values:
            return self.initial_s
        return float(np.percentile(np.fromiter(self._values, float), q))

    @property
    def p50(self) -> float:
        return self.percentile(50.0)

    @property
    def p95(self) -> float:
        return self.percentile(95.0)

    def values(self) -> list[float]:
        return list(self._values)


def request_from_observation(obs: Observation, instruction: str,
                             prefix: NDArray[np.float64] | None = None) -> PolicyRequest:
    """The policy request of one synchronized observation: images, (2, 8) state, instruction, prefix."""
    missing = [a for a in ARM_NAMES if a not in obs.arms or a not in obs.grippers]
    if missing:
        raise SchemaError(f"observation: no arm or gripper state for {missing}, expected both of {list(ARM_NAMES)}")
    state = np.zeros((len(ARM_NAMES), COMMAND_DIM))
    for i, arm in enumerate(ARM_NAMES):
        state[i, :7] = obs.arms[arm].tcp_pose
        state[i, 7] = obs.grippers[arm].opening
    images = {name: frame.color for name, frame in obs.frames.items()}
    kwargs: dict[str, Any] = {"images": images, "state": state, "instruction": instruction, "t_obs": obs.t}
    if prefix is not None:
        kwargs["prefix"] = prefix
    return PolicyRequest(**kwargs).validate()


@dataclass
class _Pending:
    chunk: CommandChunk
    ready_at: float
    generation: int


class PolicyLoop:
    """Observations in, chunks out; see the module doc. Thread-safe."""

    def __init__(
        self,
        policy: Policy,
        instruction: str = "",
        config: PolicyLoopConfig | None = None,
        clock: Clock | None = None,
        mode: str = "thread",
        dt: float | None = None,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(f"policy loop mode {mode!r}: expected one of {list(MODES)}")
        self.policy = policy
        self.instruction = instruction
        self.config = config or PolicyLoopConfig()
        self.clock: Clock = clock if clock is not None else MonotonicClock()
        self.mode = mode
        meta = self._metadata()
        self.dt = float(dt) if dt is not None else self._policy_dt(meta)
        self.max_prefix = self._policy_max_prefix(meta)
        self.latency = LatencyTracker(self.config.latency_window, self.config.initial_latency_s)
        self.counters: Counter[str] = Counter()
        self.last_error = ""
        self.last_prefix_steps = 0
        self._plan: _DualPlan | None = None
        self._plan_end = -math.inf
        self._latest: Observation | None = None
        self._pending: _Pending | None = None
        self._in_flight = False
        self._retry_until = -math.inf
        self._last_start = -math.inf
        self._generation = 0
        self._running = False
        self._closed = False
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None
        if mode == "thread":
            self._worker = threading.Thread(target=self._work, name="policy-loop", daemon=True)
            self._worker.start()

    # ------------------------------------------------------------------ setup helpers

    def _metadata(self) -> Mapping[str, Any]:
        try:
            meta = self.policy.metadata()
        except Exception as exc:  # a server that is down at start-up: the loop still starts and retries
            log.warning("policy loop: metadata unavailable (%s); using defaults", exc)
            return {}
        return meta if isinstance(meta, Mapping) else {}

    @staticmethod
    def _policy_dt(meta: Mapping[str, Any]) -> float:
        # "dt" (server/test policies), "rates.action_hz" (A2WorldPolicy), else the rig's policy rate.
        if meta.get("dt"):
            return float(meta["dt"])
        rates = meta.get("rates")
        if isinstance(rates, Mapping) and rates.get("action_hz"):
            return 1.0 / float(rates["action_hz"])
        return 1.0 / POLICY_HZ

    def _policy_max_prefix(self, meta: Mapping[str, Any]) -> int:
        # "max_prefix" at the top, or the trained policy's `config.policy.max_prefix`.
        value = meta.get("max_prefix")
        config = meta.get("config")
        if value is None and isinstance(config, Mapping) and isinstance(config.get("policy"), Mapping):
            value = config["policy"].get("max_prefix")
        cap = int(self.config.max_prefix_steps)
        return min(cap, int(value)) if isinstance(value, (int, float)) else cap

    # ------------------------------------------------------------------ the node protocol

    def start(self) -> None:
        with self._cond:
            self._running = True
            self._cond.notify_all()

    def stop(self) -> None:
        """Stop producing chunks; forget the plan and any result in flight (an e-stop or operator stop)."""
        with self._cond:
            self._running = False
            self._reset_locked()

    def reset(self) -> None:
        """New episode: forget the plan, the pending result and the newest observation (stats are kept)."""
        with self._cond:
            self._reset_locked()

    def _reset_locked(self) -> None:
        self._generation += 1
        self._plan = None
        self._plan_end = -math.inf
        self._pending = None
        self._latest = None
        self._retry_until = -math.inf
        self._last_start = -math.inf

    @property
    def running(self) -> bool:
        return self._running

    def on_observation(self, obs: Observation) -> None:
        with self._cond:
            self._latest = obs
            self.counters["observations"] += 1
            if self.mode == "thread":
                self._cond.notify_all()
                return
            job = self._take_job_locked(self.clock.now())
        if job is not None:
            self._infer(*job)

    def next_chunk(self) -> CommandChunk | None:
        with self._cond:
            pending = self._pending
            if pending is None or pending.generation != self._generation:
                return None
            now = self.clock.now()
            if now < pending.ready_at:
                return None
            self._pending = None
            if not now - pending.chunk.t0 <= self.config.max_result_age_s:
                self.counters["expired_results"] += 1
                log.warning("policy loop: result for the observation at %.3f arrived %.3f s later (limit %.3f s); "
                            "dropped", pending.chunk.t0, now - pending.chunk.t0, self.config.max_result_age_s)
                self._cond.notify_all()
                return None
            self._adopt_locked(pending.chunk)
            self.counters["chunks"] += 1
            return pending.chunk

    def wait_chunk(self, timeout: float) -> CommandChunk | None:
        """Thread mode: block up to `timeout` s (host time) for a new chunk; None when none arrived."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending is None and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
        return self.next_chunk()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._running = False
            self._cond.notify_all()
        if self._worker is not None:
            self._worker.join(timeout=5.0)
        close = getattr(self.policy, "close", None)
        if callable(close):
            close()

    def diagnostics(self) -> dict[str, float | str]:
        now = self.clock.now()
        with self._cond:
            remaining = self._plan_end - now if self._plan is not None else 0.0
            out: dict[str, float | str] = {
                "running": str(self._running),
                "inference_latency_p50_ms": self.latency.p50 * 1e3,
                "inference_latency_p95_ms": self.latency.p95 * 1e3,
                "prefix_steps": float(self.last_prefix_steps),
                "plan_remaining_s": max(remaining, 0.0),
                "last_error": self.last_error,
            }
            for key in ("observations", "inferences", "failures", "chunks", "late_results", "stale_skipped",
                        "expired_results"):
                out[key] = float(self.counters[key])
        return out

    # ------------------------------------------------------------------ scheduling

    def prefix_steps(self) -> int:
        """Committed prefix length K from the latency percentile + margin, capped by the policy's maximum."""
        need = self.latency.percentile(self.config.prefix_quantile) + self.config.prefix_margin_s
        return int(min(self.max_prefix, max(0, math.ceil(need / self.dt - 1e-9))))

    def _due_locked(self, now: float) -> bool:
        if not self._running or self._in_flight or self._closed or self._latest is None:
            return False
        if self._pending is not None and self._pending.generation == self._generation:
            return False
        if now < self._retry_until or now - self._last_start < self.config.min_interval_s:
            return False
        return self._plan_end - now < self.config.trigger_remaining_s

    def _take_job_locked(self, now: float) -> tuple[Observation, NDArray[np.float64], int, float] | None:
        if not self._due_locked(now):
            return None
        obs = self._latest
        assert obs is not None
        if now - obs.t > self.config.max_observation_age_s:
            self.counters["stale_skipped"] += 1
            return None
        k = self.prefix_steps()
        prefix = self._prefix_locked(obs, k)
        self._in_flight = True
        self._last_start = now
        self.last_prefix_steps = k
        return obs, prefix, self._generation, now

    def _prefix_locked(self, obs: Observation, k: int) -> NDArray[np.float64]:
        """(k, 2, 8): the emitted plan at t_obs + i*dt (its last target past its end; the measured
        state when there is no plan yet)."""
        out = np.zeros((k, len(ARM_NAMES), COMMAND_DIM))
        if k == 0:
            return out
        if self._plan is None:
            state = request_from_observation(obs, self.instruction).state
            out[:] = state[None]
            return out
        for i in range(k):
            out[i] = self._plan.sample(obs.t + i * self.dt).reshape(len(ARM_NAMES), COMMAND_DIM)
        return out

    def _adopt_locked(self, chunk: CommandChunk) -> None:
        self._plan = _DualPlan(chunk)
        self._plan_end = float(chunk.times()[-1])

    # ------------------------------------------------------------------ inference

    def _infer(self, obs: Observation, prefix: NDArray[np.float64], generation: int, started: float) -> None:
        instruction = self.instruction or obs.task
        wall0 = time.perf_counter()
        try:
            request = request_from_observation(obs, instruction, prefix)
            result = self.policy.infer(request)
            chunk = self._chunk_from_result(obs, prefix, result)
        except Exception as exc:  # any failure: hold (the executor runs out and holds), retry later
            wall = time.perf_counter() - wall0
            with self._cond:
                self._in_flight = False
                self.counters["failures"] += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._retry_until = self.clock.now() + self.config.retry_s
                if self.counters["failures"] == 1 or self.counters["failures"] % 20 == 0:
                    log.warning("policy loop: inference failed after %.0f ms (%s); retrying in %.2f s "
                                "(%d failures so far)", wall * 1e3, self.last_error, self.config.retry_s,
                                self.counters["failures"])
                self._cond.notify_all()
            return
        wall = time.perf_counter() - wall0
        with self._cond:
            self._in_flight = False
            self.counters["inferences"] += 1
            if self.mode == "inline":
                latency = wall if self.config.sim_latency_s is None else self.config.sim_latency_s
                ready_at = started + latency
            else:
                latency = max(self.clock.now() - started, 0.0)
                ready_at = -math.inf
            self.latency.add(latency)
            if latency > len(prefix) * self.dt:
                self.counters["late_results"] += 1  # the executor will blend instead of splicing
            if generation != self._generation:
                self._cond.notify_all()
                return
            if self.last_error:
                log.info("policy loop: inference works again (after: %s)", self.last_error)
                self.last_error = ""
            self._pending = _Pending(chunk, ready_at, generation)
            self._cond.notify_all()

    def _chunk_from_result(self, obs: Observation, prefix: NDArray[np.float64], result: PolicyResult) -> CommandChunk:
        actions = np.asarray(result.chunk, dtype=np.float64)
        if actions.ndim != 3 or actions.shape[1:] != (len(ARM_NAMES), COMMAND_DIM) or actions.shape[0] == 0:
            raise SchemaError(f"policy result: chunk shape {actions.shape}, expected (T, 2, 8) with T >= 1")
        if not math.isclose(result.dt, self.dt, rel_tol=1e-6):
            raise SchemaError(f"policy result: dt {result.dt}, expected the loop's step {self.dt}")
        return CommandChunk(np.concatenate([prefix, actions]), t0=obs.t, dt=self.dt)

    def _work(self) -> None:
        while True:
            with self._cond:
                job = None
                while not self._closed:
                    job = self._take_job_locked(self.clock.now())
                    if job is not None:
                        break
                    # Re-check periodically: the trigger depends on time, not only on new observations.
                    self._cond.wait(0.01)
                if self._closed:
                    return
            assert job is not None
            self._infer(*job)


class _DualPlan:
    """The emitted chunk as one plan per arm (interpolated like the executor samples it)."""

    def __init__(self, chunk: CommandChunk) -> None:
        times = chunk.times()
        self.plans = [ArmPlan(times.copy(), chunk.arm(arm).copy()) for arm in ARM_NAMES]

    def sample(self, t: float) -> NDArray[np.float64]:
        return np.stack([p.sample(t) for p in self.plans])


# ---------------------------------------------------------------------- building from config


def load_loop_config(params: Mapping[str, Any] | None = None, run_config: str = "run.yaml") -> PolicyLoopConfig:
    """The loop section of a node's parameters (`loop:`), else `policy_loop:` of config/run.yaml."""
    if params is not None and isinstance(params.get("loop"), Mapping):
        return PolicyLoopConfig.from_mapping(params["loop"], "policy.loop")
    data = load_yaml(run_config)
    section = data.get("policy_loop", {})
    if not isinstance(section, Mapping):
        raise ConfigError(f"{run_config}: policy_loop: expected a mapping")
    return PolicyLoopConfig.from_mapping(section, f"{run_config}: policy_loop")


def client_timeout(params: Mapping[str, Any] | None = None, run_config: str = "run.yaml") -> float:
    """Policy-client reply timeout: `client_timeout_s` of the node, else `policy_client.timeout_s`."""
    if params is not None and "client_timeout_s" in params:
        value, where = params["client_timeout_s"], "policy.client_timeout_s"
    else:
        section = load_yaml(run_config).get("policy_client", {})
        value, where = (section or {}).get("timeout_s", 1.0), f"{run_config}: policy_client.timeout_s"
    try:
        timeout = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {value!r}, expected a number of seconds") from None
    if not math.isfinite(timeout) or timeout <= 0:
        raise ConfigError(f"{where}: {timeout}, expected a positive number of seconds")
    return timeout


def open_policy(spec: str, timeout_s: float = 1.0) -> Policy:
    """A `Policy` from `tcp://HOST:PORT` (the policy server, through `PolicyClient`) or a checkpoint
    directory (the in-process model, `policy.inference`, imported lazily: it needs torch)."""
    if not spec:
        raise ConfigError("policy: empty, expected a checkpoint directory or tcp://HOST:PORT")
    if spec.startswith(("tcp://", "ipc://", "inproc://")):
        from policy.client import PolicyClient

        return PolicyClient(spec, timeout_s=timeout_s)
    from pathlib import Path

    path = Path(spec).expanduser()
    if not path.exists():
        raise ConfigError(f"policy: {spec!r} is neither tcp://HOST:PORT nor an existing checkpoint directory")
    try:
        from policy.inference import A2WorldPolicy
    except ImportError as exc:
        raise ConfigError(f"policy: checkpoint {spec!r} needs the in-process model (policy.inference), which "
                          f"cannot be imported ({exc}); serve it with `a2world policy serve` and pass "
                          "tcp://HOST:PORT instead") from None
    try:
        return A2WorldPolicy(path)
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"policy: cannot load checkpoint {spec!r}: {exc}") from None


def make_policy_loop(policy: str, instruction: str, params: Mapping[str, Any]) -> PolicyLoop:
    """Factory for the ROS policy node (`policy_loop_factory: "a2world_ros.runtime.policy_loop:make_policy_loop"`):
    a thread-mode loop on the host monotonic clock around `open_policy(policy)`."""
    config = load_loop_config(params)
    loop = PolicyLoop(open_policy(policy, client_timeout(params)), instruction, config, MonotonicClock(), "thread")
    return loop
