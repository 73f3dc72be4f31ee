"""`a2world eval`: evaluate policies inside the world model (and on the twin for comparison).

`--in-world-model` runs each policy closed loop inside the world model from the twin's start scenes
(seeds --seed ... --seed + N - 1): the world model's predicted frames are the policy's observations
(worldmodel/wm_eval/closed_loop.py), the success classifier judges the final frames. With `--twin`, the
same policies also run on the twin from the same seeds (success from the simulator), and the agreement
of the two rankings is reported (Spearman, Pearson). `--train-classifier` trains the success classifier
on twin episodes and reports its held-out accuracy.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HELP = """\
Examples:
  a2world eval --train-classifier --data ~/data/lift_train --heldout ~/data/lift_heldout --out ~/ckpt/success_lift
  a2world eval --in-world-model --policy ~/ckpt/pol_early ~/ckpt/pol_final --world-model ~/ckpt/wm_tiny \\
      --task lift_box_high --episodes 20 --classifier ~/ckpt/success_lift --twin --json eval.json
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="evaluate policies inside the world model (vs the twin)",
                              description=__doc__ + "\n" + HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--in-world-model", action="store_true", help="closed-loop evaluation inside the world model")
    mode.add_argument("--train-classifier", action="store_true", help="train the success classifier")
    p.add_argument("--policy", nargs="+", default=[], help="policy checkpoint directories or tcp://HOST:PORT")
    p.add_argument("--world-model", default=None, help="world-model checkpoint")
    p.add_argument("--task", default="lift_box_high", help="twin task (default lift_box_high)")
    p.add_argument("--episodes", type=int, default=10, help="episodes per policy (default 10)")
    p.add_argument("--seed", type=int, default=1000, help="seed of the first episode (default 1000)")
    p.add_argument("--seconds", type=float, default=None, help="episode length (default: the task's limit)")
    p.add_argument("--classifier", default=None, help="success classifier folder (--train-classifier --out)")
    p.add_argument("--twin", action="store_true", help="also run every policy on the twin and compare")
    p.add_argument("--steps", type=int, default=None, help="world-model sampler steps")
    p.add_argument("--size", default="96x128", help="twin camera size HxW for the start scenes (default 96x128)")
    p.add_argument("--data", nargs="+", default=[], help="classifier training datasets (LeRobot v3)")
    p.add_argument("--heldout", default=None, help="classifier held-out dataset")
    p.add_argument("--heldout-episodes", type=int, default=0,
                   help="without --heldout: hold out the last N episodes of the last --data dataset")
    p.add_argument("--camera", default="front", help="classifier camera (default front)")
    p.add_argument("--classifier-steps", type=int, default=300, help="classifier training steps")
    p.add_argument("--out", type=Path, default=None, help="classifier output folder")
    p.add_argument("--threads", default="auto", help="torch threads (worldmodel/threads.py)")
    p.add_argument("--json", type=Path, default=None, help="write the results as JSON")
    p.set_defaults(func=cmd_eval)


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def cmd_eval(args: argparse.Namespace) -> int:
    from worldmodel.threads import configure_torch_threads

    configure_torch_threads(args.threads, source="--threads")
    return _train_classifier(args) if args.train_classifier else _in_world_model(args)


def _train_classifier(args: argparse.Namespace) -> int:
    from worldmodel.wm_eval.classifier import ClassifierConfig, dataset_episodes, final_frames, train_classifier

    if not args.data or args.out is None:
        return _error("--train-classifier needs --data ROOT [ROOT ...] and --out DIR (and --heldout ROOT)")
    config = ClassifierConfig(camera=args.camera, steps=args.classifier_steps)
    frames, labels = [], []
    try:
        heldout = final_frames(args.heldout, config) if args.heldout else None
        for i, root in enumerate(args.data):
            episodes = None
            if heldout is None and args.heldout_episodes and i == len(args.data) - 1:
                n = dataset_episodes(root)
                if not 0 < args.heldout_episodes < n:
                    return _error(f"--heldout-episodes {args.heldout_episodes}: {root} has {n} episodes")
                episodes = list(range(n - args.heldout_episodes))
                heldout = final_frames(root, config, list(range(n - args.heldout_episodes, n)))
            f, y = final_frames(root, config, episodes)
            frames += f
            labels += y
        classifier = train_classifier((frames, labels), heldout, config)
    except (ValueError, OSError) as exc:
        return _error(str(exc))
    classifier.save(args.out)
    held = "n/a" if heldout is None else f"{classifier.heldout_accuracy:.3f} on {len(heldout[1])} held-out clips " \
        f"({sum(heldout[1])} successful final frames, the rest failures)"
    print(f"success classifier: {len(labels)} training clips ({sum(labels)} successes); held-out accuracy {held}; "
          f"saved to {args.out}")
    return 0


def _start_scene(rig: Any, seed: int) -> tuple[dict[str, Any], Any]:
    """Images and (2, 8) state of the twin right after reset with `seed`."""
    import numpy as np

    from rig.conventions import ARM_NAMES, COMMAND_DIM

    twin = rig.arms["left"].twin
    twin.reset_state(seed)
    for cam in rig.cameras.values():
        cam.rig.reset_frames()
        break
    images = {name: cam.latest().color for name, cam in rig.cameras.items()}
    state = np.zeros((len(ARM_NAMES), COMMAND_DIM))
    for i, arm in enumerate(ARM_NAMES):
        state[i, :7] = rig.arms[arm].read_state().tcp_pose
        state[i, 7] = rig.grippers[arm].read_state().opening if arm in rig.grippers else 1.0
    return images, state


def _twin_success(spec: str, task: str, seeds: list[int], seconds: float, size: tuple[int, int]) -> list[bool]:
    from a2world_ros.run_policy import PolicyRunner, build_sim_rig, load_graph_config, task_instruction
    from a2world_ros.runtime.policy_loop import open_policy

    config = load_graph_config()
    rig = build_sim_rig(task, seeds[0], "lockstep", size)
    policy = open_policy(spec, config.client_timeout_s)
    rig.connect()
    runner = PolicyRunner(rig, policy, config, task_instruction(task))
    try:
        return [bool(runner.run_episode(i, s, seconds).success) for i, s in enumerate(seeds)]
    finally:
        runner.close()
        rig.disconnect()


def _in_world_model(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from a2world_ros.cli.cmd_sim import ensure_headless_gl, parse_size
    from a2world_ros.run_policy import build_sim_rig, task_instruction
    from a2world_ros.runtime.policy_loop import open_policy
    from rig.config import ConfigError
    from worldmodel.shadow.model import load_predictor
    from worldmodel.wm_eval.classifier import SuccessClassifier
    from worldmodel.wm_eval.closed_loop import rollout_in_world_model
    from worldmodel.wm_eval.stats import rank_agreement, wilson_interval

    if not args.policy or not args.world_model or not args.classifier:
        return _error("--in-world-model needs --policy P [P ...], --world-model C and --classifier DIR")
    if args.episodes < 1:
        return _error(f"--episodes {args.episodes}: expected a positive number")
    ensure_headless_gl()
    try:
        classifier = SuccessClassifier.load(args.classifier)
        predictor = load_predictor(args.world_model, threads=args.threads)
        instruction = task_instruction(args.task)
        rig = build_sim_rig(args.task, args.seed, "lockstep", parse_size(args.size))
        rig.connect()
    except (ConfigError, ValueError, OSError) as exc:
        return _error(str(exc))
    from rig.sim.experts.runner import episode_limit

    seconds = args.seconds or float(episode_limit(rig.arms["left"].twin.task))
    seeds = [args.seed + i for i in range(args.episodes)]
    scenes = [_start_scene(rig, s) for s in seeds]
    rig.disconnect()
    rows = []
    for spec in args.policy:
        try:
            policy = open_policy(spec, 5.0)
        except ConfigError as exc:
            return _error(str(exc))
        wins = []
        for images, state in tqdm(scenes, desc=f"world model: {Path(spec).name}", unit="episode"):
            episode = rollout_in_world_model(policy, predictor, images, state, instruction, seconds,
                                             steps=args.steps)
            wins.append(classifier.episode_success(
                episode.final_frames(classifier.config.camera, classifier.config.frames_per_episode)))
        row = {"policy": spec, "world_model_successes": int(sum(wins)), "episodes": len(wins),
               "world_model_rate": sum(wins) / len(wins), "world_model_ci95": wilson_interval(sum(wins), len(wins))}
        if args.twin:
            twin = _twin_success(spec, args.task, seeds, seconds, parse_size(args.size))
            row.update({"twin_successes": int(sum(twin)), "twin_rate": sum(twin) / len(twin),
                        "twin_ci95": wilson_interval(sum(twin), len(twin))})
        rows.append(row)
        lo, hi = row["world_model_ci95"]
        line = f"{spec}: world model {row['world_model_successes']}/{len(wins)} = {row['world_model_rate']:.2f} " \
               f"[{lo:.2f}, {hi:.2f}]"
        if args.twin:
            tlo, thi = row["twin_ci95"]
            line += f"; twin {row['twin_successes']}/{len(wins)} = {row['twin_rate']:.2f} [{tlo:.2f}, {thi:.2f}]"
        print(line, flush=True)
    result: dict[str, Any] = {"task": args.task, "seeds": seeds, "seconds": seconds, "world_model": args.world_model,
                              "classifier": args.classifier, "classifier_heldout_accuracy":
                                  classifier.heldout_accuracy, "policies": rows}
    print(f"success classifier held-out accuracy: {classifier.heldout_accuracy}")
    if args.twin and len(rows) >= 3:
        result["agreement"] = rank_agreement([r["twin_rate"] for r in rows], [r["world_model_rate"] for r in rows])
        a = result["agreement"]
        print(f"agreement over {a['policies']} policies: Spearman {a['spearman']:.3f} (p {a['spearman_p']:.3f}), "
              f"Pearson {a['pearson']:.3f} (p {a['pearson_p']:.3f})")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    return 0
