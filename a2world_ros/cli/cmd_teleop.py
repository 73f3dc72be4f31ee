"""`a2world teleop`: VR teleoperation of both arms into training data, and `a2world teleop send-scripted`,
the reference sender that drives the twin through a task from its scripted expert's targets."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path

from a2world_ros.cli.cmd_sim import ensure_headless_gl, parse_size

TELEOP_HELP = """\
Teleoperate both arms from a VR headset and record episodes into --out (LeRobot v3.0 + rosbag2 MCAP,
as `a2world collect`). --vr is
  zmq://HOST:PORT   bind a ZeroMQ PULL socket there; any sender of the teleop protocol (docs/teleop.md),
                    e.g. `a2world teleop send-scripted`, connects to it
  webxr             serve the WebXR page at https://<this machine>:8443/ (config/teleop.yaml webxr);
                    open it in the headset's browser (Quest, Vision Pro): no app to install

Controls (config/teleop.yaml buttons): grip = clutch per arm (hold to move that arm), trigger = gripper,
right A = start / stop episode, right B = mark success, left Y = mark failure, left X = discard,
thumbstick press = re-centre. The same actions can be typed here (start, stop, success, failure,
discard, recenter, or `instruction TEXT` for the next episodes, then Enter), clicked on the page, or
called as ROS services (teleop_node; the instruction on the /teleop/instruction topic).

On --rig sim the twin runs in real time with --task's scene; each saved or discarded episode resets it
with the next seed (--seed + k). On --rig real the arms MOVE: keep the e-stop in reach; Ctrl-C latches
the software e-stop.

Examples:
  a2world teleop --rig sim --vr zmq://127.0.0.1:5600 --out /tmp/teleop_lift --task lift_box_high
  a2world teleop send-scripted --task lift_box_high --to zmq://127.0.0.1:5600 --episodes 2
  a2world teleop --rig real --vr webxr --out ~/a2world_data/lift --task lift_box_high --operator ana
"""

SEND_HELP = """\
Replay a task's scripted expert as controller motion over the teleop protocol to --to (a running
`a2world teleop --vr zmq://...`): for each episode it plans on a private twin with seed --seed + k (the
seed the teleop twin uses for its k-th episode), then streams idle frames, presses start, squeezes both
grips, moves the controllers so the retargeted targets follow the expert, releases, optionally marks
the outcome (--mark) and presses stop.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("teleop", help="VR teleoperation of both arms into training data",
                              description=TELEOP_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rig", choices=("sim", "real"), default="sim", help="the twin (default) or the real rig")
    p.add_argument("--vr", default="webxr", help="zmq://HOST:PORT or webxr (default)")
    p.add_argument("--out", type=Path, default=None, help="recording root (created if missing)")
    p.add_argument("--task", default=None, help="task of config/tasks.yaml (twin scene and instruction)")
    p.add_argument("--instruction", default=None, help="instruction of the episodes (default: the task's)")
    p.add_argument("--operator", default="", help="operator name stored with every episode")
    p.add_argument("--seed", type=int, default=0, help="twin: seed of the first episode's scene")
    p.add_argument("--size", type=parse_size, default=(480, 640), help="twin image size HxW (default 480x640)")
    p.add_argument("--episodes", type=int, default=None, help="stop after this many saved episodes")
    p.add_argument("--max-seconds", type=float, default=None, help="stop after this long")
    p.add_argument("--config", default="teleop.yaml", help="teleop settings (default: config/teleop.yaml)")
    p.add_argument("--no-stdin", action="store_true", help="do not read episode commands from the terminal")
    p.set_defaults(func=cmd_teleop)
    sub = p.add_subparsers(dest="teleop_command", metavar="SUBCOMMAND")
    s = sub.add_parser("send-scripted", help="drive a teleop process with a task's scripted expert",
                       description=SEND_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--task", required=True, help="task with a scripted expert, e.g. lift_box_high")
    s.add_argument("--to", required=True, help="zmq://HOST:PORT of the teleop process")
    s.add_argument("--episodes", type=int, default=1, help="number of episodes (default 1)")
    s.add_argument("--seed", type=int, default=0, help="seed of the teleop twin's first episode (default 0)")
    s.add_argument("--rate-hz", type=float, default=60.0, help="messages per second (default 60)")
    s.add_argument("--mark", choices=("success", "failure"), default=None,
                   help="press the mark button before stop (default: no mark; the twin judges)")
    s.set_defaults(func=cmd_send_scripted)


def _stdin_commands(app: object) -> None:
    from teleop.app import TeleopApp

    assert isinstance(app, TeleopApp)
    for line in sys.stdin:
        word, _, rest = line.strip().partition(" ")
        if word.lower() == "instruction":
            app.runner.session.command(f"instruction:{rest}")
        elif word:
            app.runner.session.command(word.lower())


def cmd_teleop(args: argparse.Namespace) -> int:
    from teleop.app import TeleopApp, TeleopSettings

    if args.rig == "sim":
        ensure_headless_gl()
    settings = TeleopSettings(rig=args.rig, vr=args.vr, out=args.out, task=args.task, instruction=args.instruction,
                              operator=args.operator, seed=args.seed, render_size=args.size, episodes=args.episodes,
                              max_seconds=args.max_seconds, config=args.config)
    try:
        app = TeleopApp(settings)
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"teleop: {exc}", file=sys.stderr)
        return 2
    if not args.no_stdin and sys.stdin is not None and sys.stdin.isatty():
        threading.Thread(target=_stdin_commands, args=(app,), daemon=True).start()
    print(f"teleop: {args.rig} rig, input {args.vr}, recording to {args.out or '(nothing)'}; Ctrl-C to end",
          flush=True)
    try:
        app.run()
    finally:
        app.close()
    log = app.runner.episodes.log
    print(f"teleop: {len(log.saved)} episode(s) saved, {log.discarded} discarded; input {app.runner.session.status()}")
    if args.out is not None:
        print(f"inspect: a2world data info {args.out}")
    return 0


def cmd_send_scripted(args: argparse.Namespace) -> int:
    ensure_headless_gl()
    from teleop.config import load_teleop_config
    from teleop.protocol import restamp
    from teleop.scripted import controller_stream, default_mappings, plan_episode
    from teleop.transport import ZmqSender, send_paced

    logging.getLogger("rig").setLevel(logging.WARNING)
    cfg = load_teleop_config()
    mappings = default_mappings(cfg.retarget)
    sender = ZmqSender(args.to)
    seq = 0
    try:
        for k in range(args.episodes):
            plan = plan_episode(args.task, args.seed + k)
            print(f"[{k + 1}/{args.episodes}] seed {args.seed + k}: expert plan {len(plan.targets)} steps "
                  f"({'success' if plan.expert_success else 'failure'} on the private twin); streaming", flush=True)
            messages = list(controller_stream(plan, mappings, rate_hz=args.rate_hz, mark=args.mark, start_seq=seq))
            seq += len(messages)
            send_paced(sender, messages, restamp)
    finally:
        sender.close()
    print(f"sent {seq} messages to {args.to}")
    return 0
