"""The policy graph without ROS: rig (twin or real) + policy loop + chunk executor + safety guard +
optional episode recorder. `a2world run policy` is a thin CLI over `PolicyRunner`.

Observations are assembled at `observation_hz` from the camera and arm drivers (on the twin: its
rendered views and simulated states) and handed to the policy loop; chunks from the loop go to the
executor, which streams targets through the guard at its command rate.

Clocks: with the twin in lockstep, one thread does everything on simulated time: it steps the physics
to the next event (executor tick at `command_hz`, observation at `observation_hz`), and the loop runs
inference inline, releasing each chunk after the simulated latency, so runs are reproducible. In real
time (the real rig, or the twin with `clock: realtime`), the executor runs on its own thread
(`ExecutorThread`), the loop infers on its worker thread and the calling thread assembles observations
and forwards chunks.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from a2world_ros.runtime.policy_loop import ClientKeys, PolicyLoop, PolicyLoopConfig
from policy.interface import Policy
from rig.config import ConfigError, load_yaml, node_params
from rig.conventions import ARM_NAMES
from rig.drivers.base import DeviceError
from rig.executor import ChunkExecutor, ExecutorConfig, ExecutorThread, TickResult
from rig.factory import Rig
from rig.observe import TwinClock, command_in_force, read_observation, twin_of
from rig.safety import GuardConfig, SafetyGuard
from rig.schema import CommandChunk, Observation
from rig.timing import JitterSummary, MonotonicClock, RateKeeper

log = logging.getLogger(__name__)

ObservationHook = Callable[[float, Observation], None]


@dataclass(frozen=True)
class RunSettings:
    """`run:` of config/run.yaml: graph rates and episode handling."""

    policy_config: str = "policy.yaml"
    observation_hz: float = 30.0
    settle_s: float = 1.0
    stop_on_success: bool = True
    default_max_seconds: float = 60.0
    render_size: tuple[int, int] = (480, 640)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "run") -> RunSettings:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown keys {unknown} (known: {sorted(known)})")
        kwargs: dict[str, Any] = dict(data)
        for key in ("observation_hz", "settle_s", "default_max_seconds"):
            if key in kwargs:
                try:
                    kwargs[key] = float(kwargs[key])
                except (TypeError, ValueError):
                    raise ConfigError(f"{where}.{key}: {kwargs[key]!r}, expected a number") from None
                if not math.isfinite(kwargs[key]) or kwargs[key] < 0 or (key != "settle_s" and kwargs[key] == 0):
                    raise ConfigError(f"{where}.{key}: {kwargs[key]}, expected a positive number")
        if "render_size" in kwargs:
            size = kwargs["render_size"]
            if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(v, int) and v > 0
                                                                              for v in size)):
                raise ConfigError(f"{where}.render_size: {size!r}, expected [height, width] in pixels")
            kwargs["render_size"] = (int(size[0]), int(size[1]))
        if "stop_on_success" in kwargs and not isinstance(kwargs["stop_on_success"], bool):
            raise ConfigError(f"{where}.stop_on_success: {kwargs['stop_on_success']!r}, expected true or false")
        return cls(**kwargs)


@dataclass(frozen=True)
class GraphConfig:
    """Everything the graph needs from config files: executor, guard, loop, run settings."""

    executor: ExecutorConfig
    guard: GuardConfig
    loop: PolicyLoopConfig
    run: RunSettings
    client_timeout_s: float = 1.0
    client_keys: ClientKeys = field(default_factory=lambda: ClientKeys())


def load_graph_config(run_config: str = "run.yaml", policy_config: str | None = None) -> GraphConfig:
    """Read config/run.yaml and the executor/guard sections (`/**`) of `policy_config` (default: the
    file named by `run.policy_config`, normally config/policy.yaml)."""
    from a2world_ros.runtime.policy_loop import client_keys, client_timeout, load_loop_config

    data = load_yaml(run_config)
    run = RunSettings.from_mapping(data.get("run", {}) or {}, f"{run_config}: run")
    name = policy_config or run.policy_config
    shared = node_params(load_yaml(name), "/**")
    for key in ("executor", "guard"):
        if not isinstance(shared.get(key), Mapping):
            raise ConfigError(f"{name}: '/**' ros__parameters has no '{key}' mapping (see config/policy.yaml)")
    return GraphConfig(
        executor=ExecutorConfig.from_mapping(shared["executor"], f"{name}: executor"),
        guard=GuardConfig.from_mapping(shared["guard"], f"{name}: guard"),
        loop=load_loop_config(None, run_config),
        run=run,
        client_timeout_s=client_timeout(None, run_config),
        client_keys=client_keys(None, run_config),
    )


def task_instruction(task: str) -> str:
    """The instruction of a task in config/tasks.yaml (no simulator needed)."""
    tasks = load_yaml("tasks.yaml")
    # Only entries with an instruction are tasks; others (e.g. floating_grippers) are shared settings.
    names = sorted(k for k, v in tasks.items() if isinstance(v, Mapping) and isinstance(v.get("instruction"), str))
    if task not in names:
        raise ConfigError(f"unknown task {task!r}: the tasks in tasks.yaml are {names}")
    return tasks[task]["instruction"]


@dataclass
class EpisodeReport:
    """Outcome of one episode. `success`/`progress` come from simulator state (None on the real rig)."""

    index: int
    seed: int
    success: bool | None
    progress: float | None
    best_progress: float | None
    seconds: float
    observations: int
    chunks: int
    inferences: int
    failures: int
    latency_p50_ms: float
    latency_p95_ms: float
    interventions: dict[str, int] = field(default_factory=dict)
    recorded_episode: int | None = None

    def summary(self) -> str:
        head = f"episode {self.index} (seed {self.seed}): "
        if self.success is not None:
            head += (f"{'SUCCESS' if self.success else 'failure'}, progress {self.progress:.2f} "
                     f"(best {self.best_progress:.2f}), ")
        guard = ", ".join(f"{k} {v}" for k, v in sorted(self.interventions.items())) or "none"
        rec = f", recorded as episode {self.recorded_episode}" if self.recorded_episode is not None else ""
        return (head + f"{self.seconds:.1f} s, {self.chunks} chunks from {self.inferences} inferences "
                f"({self.failures} failed), latency p50 {self.latency_p50_ms:.0f} ms p95 {self.latency_p95_ms:.0f} ms, "
                f"guard interventions: {guard}{rec}")


class PolicyRunner:
    """Runs episodes of `policy` on a connected-or-not `rig`; see the module doc.

    `on_episode_start(seed, t0)` is called after the twin is reset (e.g. to restart a scripted expert);
    `on_observation(t, obs)` after each observation is handed to the loop (tests, progress display).
    """

    def __init__(
        self,
        rig: Rig,
        policy: Policy,
        config: GraphConfig,
        instruction: str,
        recorder: Any = None,
        on_episode_start: Callable[[int, float], None] | None = None,
        on_observation: ObservationHook | None = None,
        on_chunk: Callable[[CommandChunk], None] | None = None,
    ) -> None:
        if not instruction.strip():
            raise ConfigError("instruction: empty; give --instruction or a task with an instruction")
        self.rig = rig
        self.config = config
        self.instruction = instruction
        self.recorder = recorder
        self.on_episode_start = on_episode_start
        self.on_observation = on_observation
        self.on_chunk = on_chunk
        """Called with each chunk handed to the executor (the shadow predictor's input)."""
        self.twin = twin_of(rig)
        self.lockstep = self.twin is not None and self.twin.clock == "lockstep"
        self.clock = TwinClock(self.twin) if self.lockstep else MonotonicClock()
        missing = [a for a in ARM_NAMES if a not in rig.arms]
        if missing:
            raise ConfigError(f"rig: arms {missing} missing; the policy commands both of {list(ARM_NAMES)}")
        # The watchdog can only watch cameras this graph reads (no cameras: arm states only).
        watch = tuple(w for w in config.guard.watch if w in rig.cameras or w.startswith("arm:"))
        dropped = sorted(set(config.guard.watch) - set(watch))
        if dropped:
            log.warning("run: guard.watch lists %s, which this rig does not provide; not watched", dropped)
        self.guard = SafetyGuard(replace(config.guard, watch=watch), rig.arms, rig.grippers, self.clock)
        self.executor = ChunkExecutor(config.executor, self.guard)
        self.loop = PolicyLoop(policy, instruction, config.loop, self.clock,
                               mode="inline" if self.lockstep else "thread")
        self._last_tick: TickResult | None = None
        self.jitter: JitterSummary | None = None
        """Executor tick jitter of the last real-time episode."""
        self._stats_before: dict[str, float] = {}
        self._interrupted = False

    # ------------------------------------------------------------------ episodes

    def run(self, episodes: int, max_seconds: float, seed: int = 0,
            between: Callable[[int], None] | None = None) -> list[EpisodeReport]:
        """Run `episodes` episodes of at most `max_seconds` each; `between(i)` before episode i > 0."""
        reports = []
        for i in range(episodes):
            if i > 0 and between is not None:
                between(i)
            reports.append(self.run_episode(i, seed + i, max_seconds))
            if self._interrupted:
                break
        return reports

    def run_episode(self, index: int, seed: int, max_seconds: float) -> EpisodeReport:
        self._begin(seed)
        recorded = None
        if self.recorder is not None:
            recorded = self.recorder.start_episode(self.instruction)
        try:
            result = self._episode_lockstep(max_seconds) if self.lockstep else self._episode_realtime(max_seconds)
        except BaseException:
            self.guard.estop("run interrupted", self.clock.now())
            if self.recorder is not None and self.recorder.episode_open:
                self.recorder.discard_episode("episode interrupted")
            raise
        finally:
            self.loop.stop()
            self.executor.clear()
        seconds, observations, best = result
        success = progress = None
        if self.twin is not None and self.twin.task is not None:
            success, progress = bool(self.twin.task_success()), float(self.twin.task_progress())
        report = self._report(index, seed, success, progress, best, seconds, observations, recorded)
        if self.recorder is not None:
            extra = {"seed": seed, "source": "policy_rollout", "progress": progress, "best_progress": best}
            self.recorder.end_episode(bool(success), {k: v for k, v in extra.items() if v is not None})
        return report

    def _begin(self, seed: int) -> None:
        self.loop.reset()
        self.executor.clear()
        if self.twin is not None:
            self.twin.reset_state(seed)
            for cam in self.rig.cameras.values():
                sim_rig = getattr(cam, "rig", None)
                if sim_rig is not None and hasattr(sim_rig, "reset_frames"):
                    sim_rig.reset_frames()
                    break
        now = self.clock.now()
        self.guard.reset(now)
        if self.on_episode_start is not None:
            self.on_episode_start(seed, now)
        self._stats_before = {"chunks": self.loop.counters["chunks"], "inferences": self.loop.counters["inferences"],
                              "failures": self.loop.counters["failures"], **{f"g:{k}": v for k, v in
                                                                            self.guard.counters.items()}}
        self._latency_count = self.loop.latency.count
        self.loop.start()

    def _report(self, index: int, seed: int, success: bool | None, progress: float | None, best: float | None,
                seconds: float, observations: int, recorded: int | None) -> EpisodeReport:
        before = self._stats_before
        interventions = {k: int(v - before.get(f"g:{k}", 0)) for k, v in self.guard.counters.items()
                         if v - before.get(f"g:{k}", 0) > 0 and not k.startswith("blocked_") and k != "reset"}
        new = min(self.loop.latency.count - self._latency_count, len(self.loop.latency.values()))
        lat = np.asarray(self.loop.latency.values()[len(self.loop.latency.values()) - new:]) * 1e3
        return EpisodeReport(
            index=index, seed=seed, success=success, progress=progress, best_progress=best, seconds=seconds,
            observations=observations,
            chunks=int(self.loop.counters["chunks"] - before["chunks"]),
            inferences=int(self.loop.counters["inferences"] - before["inferences"]),
            failures=int(self.loop.counters["failures"] - before["failures"]),
            latency_p50_ms=float(np.percentile(lat, 50)) if lat.size else math.nan,
            latency_p95_ms=float(np.percentile(lat, 95)) if lat.size else math.nan,
            interventions=interventions, recorded_episode=recorded,
        )

    # ------------------------------------------------------------------ observations

    def observe(self) -> Observation | None:
        """Read every camera (newest frame), arm and gripper; feed the guard; None until all cameras
        have delivered a frame."""
        return read_observation(self.rig, self.guard, self.instruction)

    def _command_of(self, obs: Observation) -> NDArray[np.float64]:
        """The (2, 8) command in force at `obs` (for the recorder): the guard's last output, else the state."""
        return command_in_force(self.guard, obs)

    def _handle_observation(self, obs: Observation) -> None:
        self.loop.on_observation(obs)
        if self.recorder is not None and all(c in obs.frames for c in self.recorder.cameras):
            self.recorder.add(obs, self._command_of(obs))
        if self.on_observation is not None:
            self.on_observation(self.clock.now(), obs)

    # ------------------------------------------------------------------ lockstep (twin)

    def _episode_lockstep(self, max_seconds: float) -> tuple[float, int, float | None]:
        twin = self.twin
        assert twin is not None
        timestep = float(twin.timestep)
        tick_every = max(1, round(1.0 / (self.config.executor.command_hz * timestep)))
        obs_period = 1.0 / self.config.run.observation_hz
        total_steps = math.ceil(max_seconds / timestep - 1e-9)
        settle_steps = round(self.config.run.settle_s / timestep)
        has_task = twin.task is not None
        step = 0
        obs_k = 0
        observations = 0
        best = 0.0 if has_task else None
        success_at: int | None = None
        while step < total_steps:
            next_obs_step = math.ceil(obs_k * obs_period / timestep - 1e-9)
            if step >= next_obs_step:
                obs_k += 1
                obs = self.observe()
                if obs is not None:
                    observations += 1
                    self._handle_observation(obs)
                if has_task:
                    best = max(best or 0.0, float(twin.task_progress()))
                    if success_at is None and self.config.run.stop_on_success and twin.task_success():
                        success_at = step
            if step % tick_every == 0:
                now = self.clock.now()
                chunk = self.loop.next_chunk()
                if chunk is not None:
                    self.executor.submit(chunk, now)
                    if self.on_chunk is not None:
                        self.on_chunk(chunk)
                self._last_tick = self.executor.tick(now)
            if success_at is not None and step - success_at >= settle_steps:
                break
            next_obs_step = math.ceil(obs_k * obs_period / timestep - 1e-9)
            next_tick = (step // tick_every + 1) * tick_every
            target = min(next_obs_step, next_tick, total_steps)
            twin.step((target - step) * timestep)
            step = target
        return step * timestep, observations, best

    # ------------------------------------------------------------------ real time

    def _episode_realtime(self, max_seconds: float) -> tuple[float, int, float | None]:
        clock = self.clock
        thread = ExecutorThread(self.executor, MonotonicClock(), on_tick=self._on_tick).start()
        rate = RateKeeper(self.config.run.observation_hz, MonotonicClock())
        start = clock.now()
        observations = 0
        has_task = self.twin is not None and self.twin.task is not None
        best = 0.0 if has_task else None
        success_at: float | None = None
        try:
            while clock.now() - start < max_seconds:
                scheduled = rate.wait()
                try:
                    obs = self.observe()
                except DeviceError as exc:
                    log.warning("run: observation failed: %s", exc)
                    obs = None
                if obs is not None:
                    observations += 1
                    self._handle_observation(obs)
                if has_task:
                    assert self.twin is not None
                    best = max(best or 0.0, float(self.twin.task_progress()))
                    if success_at is None and self.config.run.stop_on_success and self.twin.task_success():
                        success_at = clock.now()
                if success_at is not None and clock.now() - success_at >= self.config.run.settle_s:
                    break
                if thread.error is not None:
                    raise RuntimeError(f"executor thread failed: {thread.error!r}")
                deadline = scheduled + rate.period
                chunk = self.loop.wait_chunk(max(0.0, deadline - clock.now() - 0.002))
                if chunk is not None:
                    self.executor.submit(chunk, clock.now())
                    if self.on_chunk is not None:
                        self.on_chunk(chunk)
        except KeyboardInterrupt:
            self._interrupted = True
            self.guard.estop("operator interrupt (Ctrl-C)", clock.now())
        finally:
            thread.stop()
            self.jitter = thread.jitter()
        return clock.now() - start, observations, best

    def _on_tick(self, result: TickResult) -> None:
        self._last_tick = result

    @property
    def interrupted(self) -> bool:
        """True once Ctrl-C ended a real-time episode (the e-stop is latched)."""
        return self._interrupted

    # ------------------------------------------------------------------ shutdown

    def close(self) -> None:
        self.loop.close()


def build_sim_rig(task: str, seed: int = 0, clock: str = "lockstep", render_size: tuple[int, int] | None = None,
                  cameras: bool = True) -> Rig:
    """The twin with `task` as a `Rig`; `cameras=False` leaves the cameras out (no rendering)."""
    from rig.factory import build_rig

    overrides: dict[str, Any] = {"task": task, "seed": seed, "clock": clock}
    if render_size is not None:
        overrides["render"] = {"height": int(render_size[0]), "width": int(render_size[1])}
    rig = build_rig(rig="sim", sim_overrides=overrides)
    if not cameras:
        rig.cameras = {}
    return rig
