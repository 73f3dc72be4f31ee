"""`a2world demo train`: regenerate the embedded checkpoints (`checkpoints/embedded/`) from scratch on the twin.

The recipe is data, not code: `config/demo.yaml` lists, per profile (`full` = what ships, `quick` = the
slow-marked test), the `a2world` commands to run in order (collect, train-vae, worldmodel train, policy
train, ...) and which of their outputs to copy into the embedded folder. Placeholders in the arguments:
`{work}` (scratch folder for data and runs), `{out}` (the embedded folder being written). A step whose
`creates` path exists is skipped, so an interrupted run resumes where it stopped. Each step runs in this
process through the CLI's own `main`, and its wall time is recorded in `{out}/demo_train.json`.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rig.config import ConfigError, load_yaml

CONFIG = "demo.yaml"


@dataclass(frozen=True)
class DemoStep:
    """One `a2world` command of the recipe."""

    name: str
    argv: tuple[str, ...]
    creates: str | None = None


@dataclass(frozen=True)
class DemoRecipe:
    """The steps of one profile and the outputs copied into the embedded folder (`name: source path`)."""

    profile: str
    steps: tuple[DemoStep, ...]
    export: dict[str, str]


def load_recipe(profile: str, config: str = CONFIG) -> DemoRecipe:
    """Read `profile` of config/demo.yaml; errors name the file, the profile and the field."""
    data = load_yaml(config)
    where = f"{config}: {profile}"
    section = data.get(profile)
    if not isinstance(section, Mapping):
        raise ConfigError(f"{config}: no profile {profile!r} (profiles: {sorted(data)})")
    steps = []
    for i, raw in enumerate(section.get("steps") or []):
        if not (isinstance(raw, Mapping) and isinstance(raw.get("name"), str) and isinstance(raw.get("argv"), list)):
            raise ConfigError(f"{where}: steps[{i}] needs `name` (string) and `argv` (list of arguments)")
        steps.append(DemoStep(raw["name"], tuple(str(a) for a in raw["argv"]), raw.get("creates")))
    if not steps:
        raise ConfigError(f"{where}: no steps")
    export = section.get("export") or {}
    if not isinstance(export, Mapping) or not all(isinstance(v, str) for v in export.values()):
        raise ConfigError(f"{where}: export must map an embedded folder name to a source path")
    return DemoRecipe(profile, tuple(steps), {str(k): v for k, v in export.items()})


def _fill(text: str, values: Mapping[str, str]) -> str:
    try:
        return text.format(**values)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(f"{CONFIG}: cannot fill {text!r} ({exc}); placeholders are {sorted(values)}") from None


def run_recipe(recipe: DemoRecipe, out: Path, work: Path, cli: Callable[[Sequence[str]], int],
               log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every step (skipping those whose output exists), then copy the exports into `out`."""
    values = {"work": str(work), "out": str(out)}
    work.mkdir(parents=True, exist_ok=True)
    timings: list[dict[str, Any]] = []
    for step in recipe.steps:
        argv = [_fill(a, values) for a in step.argv]
        creates = Path(_fill(step.creates, values)) if step.creates else None
        if creates is not None and creates.exists():
            log(f"== {step.name}: {creates} exists, skipped")
            timings.append({"step": step.name, "skipped": True})
            continue
        log(f"== {step.name}: a2world {' '.join(argv)}")
        t0 = time.perf_counter()
        rc = cli(argv)
        seconds = time.perf_counter() - t0
        timings.append({"step": step.name, "seconds": round(seconds, 1), "argv": argv})
        if rc != 0:
            raise RuntimeError(f"demo step {step.name!r} failed (exit {rc}): a2world {' '.join(argv)}")
        log(f"== {step.name}: done in {seconds:.0f} s")
    out.mkdir(parents=True, exist_ok=True)
    copied: dict[Path, Path] = {}  # exported source folder -> its copy in `out`
    for name, source in recipe.export.items():
        src, dst = _export_source(Path(_fill(source, values))), out / name
        if not src.exists():
            raise RuntimeError(f"demo export {name!r}: {src} does not exist after the steps")
        if dst.exists():
            shutil.rmtree(dst) if dst.is_dir() else dst.unlink()
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns(*EXPORT_IGNORE))
            copied[src.resolve()] = dst
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
        log(f"== exported {name}: {src} -> {dst}")
    for dst in copied.values():
        if (link := relink_vae(dst, copied)) is not None:
            log(f"== {dst.name}: VAE weights now {link}")
    summary = {"profile": recipe.profile, "steps": timings, "exports": sorted(recipe.export)}
    (out / "demo_train.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


EXPORT_IGNORE = ("*.pt", "*.tmp", "checkpoints", "train_state", "metrics.jsonl", "latent_cache")
"""What an export leaves behind: optimizer/resume state and training logs (the checkpoint is the weights)."""


def _export_source(src: Path) -> Path:
    """A run's `checkpoints` folder stands for its newest complete checkpoint (named in latest.txt)."""
    latest = src / "latest.txt"
    return src / latest.read_text().strip() if src.is_dir() and latest.is_file() else src


def relink_vae(folder: Path, copied: Mapping[Path, Path]) -> str | None:
    """Point an exported world-model checkpoint at the exported copy of its VAE (a path relative to the
    checkpoint, e.g. `../vae/vae.safetensors`), so the embedded folder works wherever the clone is.

    Returns the new path, or None when `folder` is no world-model checkpoint or its VAE was not exported.
    """
    import yaml

    config = folder / "config.yaml"
    if not config.is_file():
        return None
    info = yaml.safe_load(config.read_text())
    vae = ((info or {}).get("metadata") or {}).get("training", {}).get("vae") if isinstance(info, dict) else None
    if not isinstance(vae, dict) or not vae.get("weights"):
        return None
    weights = Path(vae["weights"]).expanduser().resolve()
    for src, dst in copied.items():
        if weights.parent == src and (dst / weights.name).is_file():
            vae["weights"] = os.path.relpath(dst / weights.name, folder)
            config.write_text(yaml.safe_dump(info, sort_keys=False))
            return str(vae["weights"])
    return None


def main_job_report(policy_json: Path, worldmodel_json: Path | None, timings: Mapping[str, float]) -> dict[str, Any]:
    """The main job's results: policy success over its episodes, world-model PSNR vs copy-last-frame."""
    episodes = json.loads(policy_json.read_text())
    if not isinstance(episodes, list) or not episodes:
        raise ValueError(f"{policy_json}: expected the non-empty episode list of `a2world run policy --json`")
    wins = sum(bool(e["success"]) for e in episodes)
    report: dict[str, Any] = {
        "policy": {"episodes": len(episodes), "successes": wins, "success_rate": wins / len(episodes),
                   "mean_progress": sum(float(e["progress"]) for e in episodes) / len(episodes),
                   "seeds": [int(e["seed"]) for e in episodes], "source": str(policy_json)},
        "timings_s": dict(timings),
    }
    line = f"policy: {wins}/{len(episodes)} successful ({100.0 * wins / len(episodes):.0f} %)"
    if worldmodel_json is not None:
        wm = json.loads(worldmodel_json.read_text())
        try:  # the report of `a2world worldmodel eval` (worldmodel/evaluate.py): mean over the horizon, all views
            psnr = {m: float(wm["methods"][m]["all"]["horizon_mean"]["psnr"])
                    for m in ("model", "copy_last", "shuffled")}
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{worldmodel_json}: not a `worldmodel eval` report "
                             f"({type(exc).__name__}: {exc})") from None
        report["worldmodel"] = {"psnr_db": psnr["model"], "copy_last_frame_psnr_db": psnr["copy_last"],
                                "shuffled_actions_psnr_db": psnr["shuffled"], "clips": wm.get("clips"),
                                "verdict": wm.get("verdict"), "source": str(worldmodel_json)}
        line += (f"; world model held-out PSNR {psnr['model']:.2f} dB vs copy-last-frame {psnr['copy_last']:.2f} dB "
                 f"(shuffled actions {psnr['shuffled']:.2f} dB)")
    report["summary"] = line
    return report
