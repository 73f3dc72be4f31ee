"""The no-ROS policy graph on the MuJoCo twin (a2world_ros/run_policy.py, `a2world run policy`): a full
lockstep episode, reproducibility, the policy server dying and coming back mid-episode, recording, and
the CLI."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from a2world_ros.cli.main import main
from a2world_ros.run_policy import PolicyRunner, build_sim_rig, load_graph_config, task_instruction
from a2world_ros.runtime.expert_policy import ExpertPolicy
from a2world_ros.runtime.policy_loop import open_policy
from policy.interface import PolicyRequest, PolicyResult
from policy.server import PolicyServer, ServerConfig
from rig.conventions import ARM_NAMES

TASK = "lift_box_high"


@pytest.fixture
def sim_rig():
    rigs = []

    def make(**kwargs):
        rig = build_sim_rig(TASK, **kwargs)
        rig.connect()
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.disconnect()


def expert_runner(rig, **kwargs) -> tuple[PolicyRunner, ExpertPolicy]:
    policy = ExpertPolicy(rig.arms["left"].twin)
    runner = PolicyRunner(rig, policy, load_graph_config(), task_instruction(TASK), on_episode_start=policy.reset,
                          **kwargs)
    return runner, policy


def test_guard_workspace_contains_the_twin_home_pose(sim_rig):
    """The shipped guard boxes (config/policy.yaml) must fit the twin's mount, or the guard pins the arms."""
    rig = sim_rig(cameras=False)
    twin = rig.arms["left"].twin
    limits = load_graph_config().guard.arms
    for arm in ARM_NAMES:
        home = twin.tcp_pose_base(arm)[:3]
        lo, hi = np.array(limits[arm].workspace_min), np.array(limits[arm].workspace_max)
        assert np.all(home >= lo) and np.all(home <= hi), (
            f"config/policy.yaml guard.arms.{arm}: workspace [{lo.tolist()}, {hi.tolist()}] does not contain the "
            f"twin's home TCP {np.round(home, 3).tolist()} (base frame of config/sim.yaml's mount)")


def test_full_lockstep_episode_succeeds_with_spliced_chunks(sim_rig):
    rig = sim_rig(cameras=False)
    runner, _ = expert_runner(rig)
    report = runner.run_episode(0, seed=0, max_seconds=12.0)
    runner.close()
    assert report.success is True and report.progress == 1.0 and report.best_progress == 1.0
    assert report.seconds < 12.0  # ended after success + settle time
    assert report.chunks >= 3 and report.failures == 0
    assert report.latency_p50_ms == pytest.approx(150.0)  # config/run.yaml sim_latency_s
    counters = runner.executor.stats.counters
    # Every chunk starts with the committed prefix the executor is running: spliced, never blended.
    assert counters["splice"] == 2 * (report.chunks - 1) and counters["blend"] == 0
    assert "estop" not in report.interventions and "stale_data" not in report.interventions
    assert "episode 0 (seed 0): SUCCESS" in report.summary()


def test_lockstep_runs_are_reproducible(sim_rig):
    finals = []
    for _ in range(2):
        rig = sim_rig(cameras=False)
        runner, _ = expert_runner(rig)
        runner.run_episode(0, seed=3, max_seconds=1.5)
        twin = rig.arms["left"].twin
        finals.append(np.concatenate([twin.tcp_pose_base(a) for a in ARM_NAMES] + [twin.data.qpos.copy()]))
        runner.close()
    np.testing.assert_array_equal(finals[0], finals[1])


class CirclePolicy:
    """Moves each arm's TCP on a 3 cm circle as a function of time (consistent across chunks)."""

    def __init__(self) -> None:
        self.centre: np.ndarray | None = None
        self.calls = 0

    def metadata(self) -> dict:
        return {"name": "circle", "dt": 1 / 30, "max_prefix": 15}

    def infer(self, request: PolicyRequest) -> PolicyResult:
        self.calls += 1
        if self.centre is None:
            self.centre = request.state.copy()
        k = len(request.prefix)
        t = request.t_obs + (k + np.arange(60)) / 30
        chunk = np.repeat(self.centre[None], 60, axis=0)
        chunk[:, :, 0] += (0.03 * (np.cos(t) - 1.0))[:, None]
        chunk[:, :, 1] += (0.03 * np.sin(t))[:, None]
        return PolicyResult(chunk=chunk, dt=1 / 30)


def test_server_dying_mid_episode_holds_the_arms_and_the_loop_resumes_after_restart(sim_rig):
    policy = CirclePolicy()
    server = PolicyServer(policy, ServerConfig(address="tcp://127.0.0.1:0"))
    address = server.address
    thread = server.start_background()
    servers = {"current": server, "thread": thread}
    rig = sim_rig(cameras=False)
    config = load_graph_config()
    client = open_policy(address, timeout_s=0.3)
    log: list[tuple[float, np.ndarray, np.ndarray, int, int]] = []
    kill_at, restart_at = 1.5, 5.0

    def on_obs(t: float, obs) -> None:
        if t >= kill_at and servers["current"] is not None and t < restart_at:
            servers["current"].stop()
            servers["thread"].join(5.0)
            servers["current"] = None
        if t >= restart_at and servers["current"] is None and not servers.get("restarted"):
            again = PolicyServer(policy, ServerConfig(address=address))
            servers.update(current=again, thread=again.start_background(), restarted=True)
        commanded = runner.guard.last_command("left")
        log.append((t, obs.arms["left"].tcp_pose[:3].copy(),
                    commanded[:3].copy() if commanded is not None else np.full(3, np.nan),
                    runner.loop.counters["failures"], runner.loop.counters["chunks"]))

    runner = PolicyRunner(rig, client, config, "trace a circle", on_observation=on_obs)
    try:
        report = runner.run_episode(0, seed=0, max_seconds=8.0)
    finally:
        runner.close()
        if servers["current"] is not None:
            servers["current"].stop()
    times = np.array([e[0] for e in log])
    tcp = np.array([e[1] for e in log])
    cmd = np.array([e[2] for e in log])
    failures = np.array([e[3] for e in log])
    chunks = np.array([e[4] for e in log])
    assert report.failures >= 2 and failures[-1] == report.failures
    # The last chunk before the outage covers at most its 60 + prefix steps; after that the arms hold.
    last_chunk_before = chunks[times < kill_at].max()
    assert chunks[(times > kill_at) & (times < restart_at)].max() == last_chunk_before
    hold = (times > kill_at + 2.6) & (times < restart_at)
    assert hold.sum() > 10
    assert np.ptp(cmd[hold], axis=0).max() == 0.0  # the guard re-sends one held target: no motion commanded
    speeds = np.linalg.norm(np.diff(tcp[hold], axis=0), axis=1) * 30
    assert speeds.max() < 1e-3  # and the arm stands still
    # After the restart, inference works again and the arm moves on.
    after = times > restart_at + 0.8
    assert chunks[after].max() > last_chunk_before
    assert np.ptp(cmd[after], axis=0).max() > 0.005
    assert "guard" not in report.summary() or "estop" not in report.interventions


def test_recording_with_rendered_views(sim_rig, tmp_path):
    from a2world_ros.cli.cmd_run import _open_recorder

    rig = sim_rig(render_size=(48, 64))
    seen: list[set[str]] = []
    policy = ExpertPolicy(rig.arms["left"].twin)
    original = policy.infer

    def infer(request: PolicyRequest) -> PolicyResult:
        seen.append({k for k, v in request.images.items() if v.shape == (48, 64, 3)})
        return original(request)

    policy.infer = infer  # type: ignore[method-assign]
    recorder = _open_recorder(tmp_path / "rollouts", rig)
    runner = PolicyRunner(rig, policy, load_graph_config(), task_instruction(TASK), recorder=recorder,
                          on_episode_start=policy.reset)
    try:
        report = runner.run_episode(0, seed=0, max_seconds=1.0)
        recorder.wait(60.0)
    finally:
        runner.close()
        recorder.close()
    assert seen and all(s == {"front", "wrist_left", "wrist_right"} for s in seen)
    assert report.recorded_episode == 0 and report.observations == 30
    assert "stale_data" not in report.interventions  # 30 Hz frames keep the watchdog fed
    info = json.loads((tmp_path / "rollouts" / "lerobot" / "meta" / "info.json").read_text())
    assert info["total_episodes"] == 1 and info["total_frames"] == 30
    assert (tmp_path / "rollouts" / "bags" / "episode_000000").is_dir()


def test_checkpoint_directory_runs_in_process(sim_rig, tmp_path):
    """`--policy DIR`: the loop drives `policy.inference.A2WorldPolicy` in-process. The checkpoint is the
    tiny config saved untrained (this checks the plumbing: images, prefix, chunk shape and timing; the
    policy tests cover training)."""
    torch = pytest.importorskip("torch")
    from policy.action_repr import Normalizer
    from policy.checkpoint import build_text_encoder, build_vae, save_policy
    from policy.config import load_policy_config
    from policy.model import build_policy_net

    config = load_policy_config("tiny")
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    state = np.tile(np.array([0.0, -0.07, 0.42, 0.0, 0.0, 0.0, 1.0, 1.0]), (2, 1))
    normalizer = Normalizer.fit(rng.normal(0, 0.003, (200, 14)), state[None] + rng.normal(0, 0.01, (200, 2, 8)),
                                action_min_std=0.005, state_min_std=0.02)
    ckpt = save_policy(tmp_path / "ckpt", config, normalizer, build_policy_net(config), build_text_encoder(config),
                       build_vae(config.vae))
    policy = open_policy(str(ckpt))
    assert type(policy).__name__ == "A2WorldPolicy"
    rig = sim_rig(render_size=(48, 64))
    runner = PolicyRunner(rig, policy, load_graph_config(), task_instruction(TASK))
    try:
        assert runner.loop.dt == pytest.approx(1 / 30) and runner.loop.max_prefix == 15
        report = runner.run_episode(0, seed=0, max_seconds=0.5)
    finally:
        runner.close()
    assert report.failures == 0 and report.chunks >= 1 and report.inferences >= 1
    assert runner.executor.stats.counters["chunks"] == report.chunks


def test_cli_run_policy_on_the_twin_prints_episode_results(capsys, tmp_path):
    out = tmp_path / "results.json"
    rc = main(["run", "policy", "--rig", "sim", "--task", TASK, "--policy", "expert", "--episodes", "2",
               "--max-seconds", "0.5", "--no-cameras", "--json", str(out)])
    text = capsys.readouterr().out
    assert rc == 0
    assert "episode 0 (seed 0): failure, progress 0.00" in text and "episode 1 (seed 1)" in text
    assert "0/2 successful (0 %)" in text
    results = json.loads(out.read_text())
    assert [r["seed"] for r in results] == [0, 1] and results[0]["chunks"] >= 1


def test_cli_rejects_bad_combinations(capsys):
    assert main(["run", "policy", "--rig", "real", "--task", TASK, "--policy", "expert"]) == 2
    assert "only on the twin" in capsys.readouterr().err
    assert main(["run", "policy", "--task", "no_such_task", "--policy", "expert", "--no-cameras"]) == 2
    assert "no_such_task" in capsys.readouterr().err
    assert main(["run", "policy", "--task", TASK, "--policy", "/nonexistent/ckpt", "--no-cameras"]) == 2
    assert "neither tcp://HOST:PORT nor an existing checkpoint" in capsys.readouterr().err


def test_run_group_without_subcommand_prints_help(capsys):
    assert main(["run"]) == 0
    assert "policy" in capsys.readouterr().out


def test_threads_are_cleaned_up():
    # The loop's worker threads end with close(); nothing named policy-loop is left behind by the tests.
    assert not [t for t in threading.enumerate() if t.name == "policy-loop" and t.is_alive()]
