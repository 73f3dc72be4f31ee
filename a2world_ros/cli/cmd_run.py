"""`a2world run policy`: run a policy on the rig (default: the MuJoCo twin) without ROS.

The same graph as `ros2 launch a2world_ros policy.launch.py`: observations at 30 Hz -> policy loop
(background inference, committed prefix) -> chunk executor -> safety guard -> arms and grippers.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

from a2world_ros.cli.cmd_sim import ensure_headless_gl, parse_size
from worldmodel.threads import add_threads_option

RUN_HELP = """\
Run --policy on --rig for --episodes episodes of --task and print one result line per episode.

--policy is one of:
  DIR                a policy checkpoint directory (`a2world policy train`): the model runs in this process
  tcp://HOST:PORT    a policy server (`a2world policy serve`), possibly on another machine
  expert             the task's scripted expert (twin only): a reference run without a trained model

On the twin (--rig sim, default) each episode resets the scene with seed --seed + i and reports
success and the progress score from simulator state. The default --clock lockstep steps the physics
and the controller together on simulated time and simulates the policy's thinking time
(config/run.yaml policy_loop.sim_latency_s), so a run is reproducible; --clock realtime paces the twin
to the wall clock and runs inference in the background exactly as on the robot.

On the real rig (--rig real) the arms MOVE. Keep the e-stop in reach; Ctrl-C latches the software
e-stop and ends the run. Before each further episode you are asked to reset the scene.

--record DIR writes every episode (LeRobot v3.0 + rosbag2 MCAP, as `a2world collect`) with the policy's
commands; rollouts are marked `source: policy_rollout` in the episode metadata.

Settings: config/run.yaml (loop, rates, timeouts) and --config (executor and guard, default
config/policy.yaml, the file the ROS launch uses).

Examples:
  a2world run policy --task lift_box_high --policy expert --episodes 3
  a2world run policy --task lift_box_high --policy ~/ckpt/lift_tiny --episodes 10 --record /tmp/rollouts
  a2world run policy --rig real --task lift_box_high --policy tcp://gpu-box:5555 --max-seconds 30
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="run a policy on the rig or its twin (no ROS needed)",
                                   description="Run things on the rig without ROS.")
    parser.set_defaults(func=lambda _args: parser.print_help() or 0)
    sub = parser.add_subparsers(dest="run_command", metavar="SUBCOMMAND")
    p = sub.add_parser("policy", help="run a policy for some episodes and report the results",
                       description=RUN_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rig", choices=("sim", "real"), default="sim", help="the twin (default) or the real rig")
    p.add_argument("--task", required=True, help="task name from config/tasks.yaml, e.g. lift_box_high")
    p.add_argument("--policy", required=True, help="checkpoint directory, tcp://HOST:PORT, or `expert` (twin)")
    p.add_argument("--episodes", type=int, default=1, help="number of episodes (default: 1)")
    p.add_argument("--seed", type=int, default=0, help="twin: seed of the first episode (default: 0)")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="episode length limit in seconds (twin default: the task's max_seconds; "
                        "real rig default: run.default_max_seconds)")
    p.add_argument("--instruction", default=None, help="task instruction (default: the task's, from tasks.yaml)")
    p.add_argument("--record", type=Path, default=None, metavar="DIR", help="record the episodes into DIR")
    p.add_argument("--config", default=None, metavar="policy.yaml",
                   help="executor and guard settings (default: run.policy_config of config/run.yaml)")
    p.add_argument("--run-config", default="run.yaml", help="loop and run settings (default: config/run.yaml)")
    p.add_argument("--server-key", default=None, metavar="FILE",
                   help="CURVE: the policy server's public key (server.key from `a2world policy keys`; required "
                        "for a server off loopback; default: policy_client.server_public_key_file)")
    p.add_argument("--client-key", default=None, metavar="FILE",
                   help="CURVE: this robot's key pair (robot.key_secret; its public half is in the server's "
                        "--authorized-keys; default: policy_client.client_secret_key_file)")
    p.add_argument("--rig-config", default="rig.yaml", help="real rig devices (default: config/rig.yaml)")
    p.add_argument("--clock", choices=("lockstep", "realtime"), default="lockstep",
                   help="twin only: lockstep (reproducible, default) or realtime")
    p.add_argument("--size", type=parse_size, default=None,
                   help="twin camera size HxW (default: run.render_size); must match what the policy expects")
    p.add_argument("--no-cameras", action="store_true",
                   help="twin only: no rendering, the policy gets no images (fast; for `expert`)")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the results as JSON")
    add_threads_option(p)
    p.add_argument("--shadow", default=None, metavar="CHECKPOINT",
                   help="run the shadow predictor with this world model in its own process: live metrics of "
                        "predicted vs real cameras, report in --shadow-out (docs/shadow.md)")
    p.add_argument("--shadow-config", default="shadow.yaml", help="shadow settings (default: config/shadow.yaml)")
    p.add_argument("--shadow-out", type=Path, default=Path("shadow_report"), help="shadow report directory")
    p.add_argument("--shadow-address", default=None,
                   help="use a running `a2world shadow serve` at this address instead of starting one")
    p.set_defaults(func=cmd_run_policy)


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def cmd_run_policy(args: argparse.Namespace) -> int:
    if args.episodes <= 0:
        return _error(f"--episodes {args.episodes}, expected a positive number")
    if args.max_seconds is not None and not (math.isfinite(args.max_seconds) and args.max_seconds > 0):
        return _error(f"--max-seconds {args.max_seconds}, expected a positive number of seconds")
    if args.rig == "real" and (args.policy == "expert" or args.no_cameras):
        return _error("--policy expert and --no-cameras exist only on the twin (--rig sim)")
    if args.rig == "sim":
        ensure_headless_gl()

    from a2world_ros.run_policy import PolicyRunner, build_sim_rig, load_graph_config, task_instruction
    from a2world_ros.runtime.policy_loop import ClientKeys, open_policy
    from rig.config import ConfigError
    from rig.drivers.base import DeviceError

    try:
        if args.rig == "sim":
            from rig.sim.tasks import TASK_NAMES

            if args.task not in TASK_NAMES:
                return _error(f"--task: unknown task {args.task!r}; the twin's tasks are {list(TASK_NAMES)}")
        config = load_graph_config(args.run_config, args.config)
        instruction = args.instruction or task_instruction(args.task)
    except ConfigError as exc:
        return _error(str(exc))

    rig = None
    runner = None
    recorder = None
    shadow = None
    try:
        on_start = None
        if args.rig == "sim":
            size = args.size or config.run.render_size
            rig = build_sim_rig(args.task, args.seed, args.clock, size, cameras=not args.no_cameras)
            twin = rig.arms["left"].twin  # type: ignore[attr-defined]
            max_seconds = args.max_seconds if args.max_seconds is not None else _task_limit(twin)
        else:
            from rig.factory import build_rig

            rig = build_rig(args.rig_config, rig="real")
            max_seconds = args.max_seconds if args.max_seconds is not None else config.run.default_max_seconds
        if args.policy == "expert":
            from a2world_ros.runtime.expert_policy import ExpertPolicy

            policy: Any = ExpertPolicy(twin)
            on_start = policy.reset
        else:
            if not args.policy.startswith(("tcp://", "ipc://", "inproc://")):
                from worldmodel.threads import configure_torch_threads

                configure_torch_threads(args.threads, source="--threads")  # the model runs in this process
            keys = config.client_keys
            if args.server_key or args.client_key:
                keys = ClientKeys(args.server_key or keys.server_public_key_file,
                                  args.client_key or keys.client_secret_key_file)
            policy = open_policy(args.policy, config.client_timeout_s, keys)
        rig.connect()
        if args.record is not None:
            recorder = _open_recorder(args.record, rig)
        if args.shadow is not None or args.shadow_address is not None:
            shadow = _start_shadow(args)
        runner = PolicyRunner(rig, policy, config, instruction, recorder=recorder, on_episode_start=on_start,
                              on_observation=shadow.on_observation if shadow else None,
                              on_chunk=shadow.on_chunk if shadow else None)
        if shadow is not None:
            shadow.on_hold = lambda reason, r=runner: r.guard.estop(reason, r.clock.now())
        print(f"running {args.policy} on the {'twin' if args.rig == 'sim' else 'REAL rig'}: task {args.task} "
              f"({instruction!r}), {args.episodes} episode(s) of at most {max_seconds:g} s"
              + (f", clock {args.clock}" if args.rig == "sim" else ""), flush=True)
        between = None if args.rig == "sim" else _ask_reset
        reports = []
        from tqdm import tqdm

        # On the real rig the operator is prompted between episodes: no bar fighting with the prompt.
        bar = tqdm(total=args.episodes, unit="ep", desc=args.task, dynamic_ncols=True, disable=args.rig != "sim")
        for i in range(args.episodes):
            if i > 0 and between is not None:
                between(i)
            report = runner.run_episode(i, args.seed + i, max_seconds)
            reports.append(report)
            bar.update(1)
            wins = sum(bool(r.success) for r in reports)
            bar.set_postfix_str(f"{wins}/{len(reports)} successful", refresh=False)
            tqdm.write(report.summary(), file=sys.stdout)
            if runner.interrupted or _never_answered([report]):
                break
        bar.close()
        if recorder is not None:
            recorder.wait()
    except (ConfigError, DeviceError, ValueError) as exc:
        return _error(str(exc))
    finally:
        if shadow is not None:
            shadow.close()
            summary = shadow.write_report(args.shadow_out, f"{args.task}: {args.policy}")
            print(f"shadow: {summary['chunks']} chunks scored, report in {args.shadow_out} "
                  f"({', '.join(summary['files'].values()) or 'no scored chunk'})", flush=True)
        if runner is not None:
            runner.close()
        if recorder is not None:
            recorder.close()
        if rig is not None:
            try:
                rig.disconnect()
            except DeviceError as exc:
                logging.getLogger(__name__).warning("disconnect: %s", exc)
    _print_summary(reports)
    if args.json is not None:
        args.json.write_text(json.dumps([r.__dict__ for r in reports], indent=2, default=float))
    if _never_answered(reports):
        failed = sum(r.failures for r in reports)
        return _error(f"the policy {args.policy} never answered ({failed} request(s) failed or timed out, no "
                      "chunk executed); is the server running and reachable? (`a2world policy serve ...`)")
    return 0


def _never_answered(reports: list[Any]) -> bool:
    """True when requests were made and not one chunk came back (a dead or unreachable policy)."""
    return bool(reports) and sum(r.chunks for r in reports) == 0 and sum(r.failures + r.inferences for r in reports) > 0


def _start_shadow(args: argparse.Namespace) -> Any:
    from a2world_ros.shadow_session import ShadowSession
    from rig.config import ConfigError
    from worldmodel.shadow.config import load_shadow_config

    config = load_shadow_config(args.shadow_config)
    print(f"starting the shadow predictor ({args.shadow_address or args.shadow}) ...", flush=True)
    try:
        return ShadowSession.start(args.shadow, config, args.shadow_config, address=args.shadow_address)
    except RuntimeError as exc:  # the process died before serving, or no server answers at the address
        raise ConfigError(f"--shadow: {exc}") from None


def _task_limit(twin: Any) -> float:
    from rig.sim.experts.runner import episode_limit

    return float(episode_limit(twin.task))


def _open_recorder(root: Path, rig: Any) -> Any:
    from dataclasses import replace

    from rig.conventions import POLICY_HZ
    from teleop.recorder import EpisodeRecorder, RecorderSettings

    cameras = tuple(rig.cameras)
    intrinsics = {name: cam.intrinsics for name, cam in rig.cameras.items()}
    settings = RecorderSettings.from_config()
    twin = getattr(rig.arms.get("left"), "twin", None)
    if twin is not None:
        # The lockstep twin can wait for the writer; a live rig must never block (drop and count instead).
        settings = replace(settings, overflow="block", block_timeout_s=30.0)
    # Lockstep samples carry simulated seconds: stamp the bags from the real recording time instead.
    sample_clock = "sim" if twin is not None and twin.clock == "lockstep" else "monotonic"
    return EpisodeRecorder(root, fps=POLICY_HZ, cameras=cameras, settings=settings, intrinsics=intrinsics,
                           sample_clock=sample_clock)


def _ask_reset(index: int) -> None:
    if sys.stdin.isatty():
        input(f"episode {index}: reset the scene, then press Enter to start (Ctrl-C to end) ")


def _print_summary(reports: list[Any]) -> None:
    if not reports:
        return
    sims = [r for r in reports if r.success is not None]
    if sims:
        wins = sum(r.success for r in sims)
        mean_progress = sum(r.progress for r in sims) / len(sims)
        print(f"{wins}/{len(sims)} successful ({100.0 * wins / len(sims):.0f} %), mean progress {mean_progress:.2f}")
    else:
        print(f"{len(reports)} episode(s) done (no success signal on the real rig)")
