"""`a2world demo train`: the recipe runner (config/demo.yaml), a shortened run of the real recipe, and the
embedded checkpoints that ship with the repository (they load, and their config matches the code)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from a2world_ros.cli.main import main
from a2world_ros.demo_pipeline import DemoRecipe, DemoStep, load_recipe, run_recipe
from rig.config import ConfigError

EMBEDDED = Path(__file__).resolve().parents[1] / "checkpoints" / "embedded"


def test_recipes_parse():
    for profile in ("full", "quick"):
        recipe = load_recipe(profile)
        assert recipe.steps and "policy" in recipe.export
    with pytest.raises(ConfigError, match="no profile 'nope'"):
        load_recipe("nope")


def test_runner_skips_finished_steps_and_reports_failures(tmp_path):
    calls: list[list[str]] = []

    def cli(argv):
        calls.append(list(argv))
        Path(argv[-1]).mkdir(parents=True, exist_ok=True)
        (Path(argv[-1]) / "w.txt").write_text("x")
        return 0

    recipe = DemoRecipe("t", (DemoStep("make", ("x", "{work}/made"), creates="{work}/made"),), {"thing": "{work}/made"})
    summary = run_recipe(recipe, tmp_path / "out", tmp_path / "work", cli, log=lambda _: None)
    assert calls == [["x", str(tmp_path / "work" / "made")]]
    assert (tmp_path / "out" / "thing" / "w.txt").is_file()
    assert json.loads((tmp_path / "out" / "demo_train.json").read_text())["profile"] == "t"
    assert summary["steps"][0]["seconds"] >= 0
    run_recipe(recipe, tmp_path / "out", tmp_path / "work", cli, log=lambda _: None)
    assert len(calls) == 1  # second run: the step's output exists, skipped
    failing = DemoRecipe("t", (DemoStep("fail", ("y",)),), {})
    with pytest.raises(RuntimeError, match="demo step 'fail' failed"):
        run_recipe(failing, tmp_path / "out", tmp_path / "work", lambda argv: 3, log=lambda _: None)


@pytest.mark.slow
def test_export_takes_the_latest_checkpoint_and_relinks_its_vae(tmp_path):
    import yaml

    work = tmp_path / "work"
    (work / "vae" / "checkpoints" / "step_1").mkdir(parents=True)
    (work / "vae" / "vae.safetensors").write_bytes(b"v")
    ckpts = work / "wm" / "checkpoints"
    for step in ("step_0000010", "step_0000020"):
        (ckpts / step / "train_state").mkdir(parents=True)
        (ckpts / step / "model.safetensors").write_bytes(step.encode())
        (ckpts / step / "train_state" / "optimizer.pt").write_bytes(b"o")
        meta = {"metadata": {"training": {"vae": {"weights": str((work / "vae" / "vae.safetensors").resolve())}}}}
        (ckpts / step / "config.yaml").write_text(yaml.safe_dump(meta))
    (ckpts / "latest.txt").write_text("step_0000020\n")
    recipe = DemoRecipe("t", (DemoStep("noop", ("x",), creates="{work}"),),
                        {"vae": "{work}/vae", "worldmodel": "{work}/wm/checkpoints"})
    run_recipe(recipe, tmp_path / "out", work, lambda argv: 0, log=lambda _: None)
    wm = tmp_path / "out" / "worldmodel"
    assert (wm / "model.safetensors").read_bytes() == b"step_0000020"
    assert not (wm / "train_state").exists() and not (tmp_path / "out" / "vae" / "checkpoints").exists()
    weights = yaml.safe_load((wm / "config.yaml").read_text())["metadata"]["training"]["vae"]["weights"]
    assert weights == "../vae/vae.safetensors" and (wm / weights).read_bytes() == b"v"


def test_quick_recipe_regenerates_loadable_checkpoints(tmp_path, capsys):
    pytest.importorskip("mujoco")
    from policy.checkpoint import load_policy

    out = tmp_path / "embedded"
    assert main(["demo", "train", "--profile", "quick", "--out", str(out), "--work", str(tmp_path / "work")]) == 0
    loaded = load_policy(out / "policy")
    assert loaded.meta["step"] == 3
    assert not list((out / "policy").glob("*.pt"))  # optimizer state stays in the scratch folder
    from worldmodel.predict import WorldModelPredictor

    predictor = WorldModelPredictor.from_checkpoint(out / "worldmodel")  # finds the exported VAE beside it
    assert predictor.resolution == (96, 128) and (out / "vae" / "vae.safetensors").is_file()
    assert not (out / "worldmodel" / "train_state").exists()


@pytest.mark.skipif(not (EMBEDDED / "policy").is_dir(), reason="no embedded policy checkpoint shipped")
def test_shipped_policy_loads_and_its_config_matches_the_code():
    from policy.checkpoint import load_policy, read_meta
    from policy.config import PolicyConfig

    meta = read_meta(EMBEDDED / "policy")
    config = PolicyConfig.from_dict(meta["config"], source="embedded policy")  # every key known, types right
    # keys added to the code after the checkpoint was written load with their defaults (which are what the
    # checkpoint was trained with: action_reads_position false; latent_cache does not touch the weights)
    added = {"policy": {"action_reads_position": False},
             "train": {"latent_cache": "auto", "early_seconds": 0.0, "early_weight": 1.0}}
    expected = {k: dict(v) if isinstance(v, dict) else v for k, v in meta["config"].items()}
    for section, keys in added.items():
        for key, value in keys.items():
            expected[section].setdefault(key, value)
    assert config.to_dict() == expected
    loaded = load_policy(EMBEDDED / "policy")  # strict: every tensor fits the config
    assert loaded.meta["final"] is True


def test_embedded_checkpoints_stay_small():
    if not EMBEDDED.is_dir():
        pytest.skip("no embedded checkpoints shipped")
    total = sum(f.stat().st_size for f in EMBEDDED.rglob("*") if f.is_file())
    assert total <= 30 * 2**20, f"checkpoints/embedded holds {total / 2**20:.1f} MiB, the limit is 30 MiB"


def test_main_job_report_reads_run_policy_and_worldmodel_eval(tmp_path):
    from a2world_ros.demo_pipeline import main_job_report

    episodes = [{"seed": s, "success": s % 2 == 0, "progress": 1.0 if s % 2 == 0 else 0.3} for s in range(4)]
    (tmp_path / "p.json").write_text(json.dumps(episodes))
    mean = lambda v: {"all": {"horizon_mean": {"psnr": v}}}  # noqa: E731
    (tmp_path / "w.json").write_text(json.dumps({"clips": 6, "verdict": {"beats_copy_last_psnr": True},
                                                 "methods": {"model": mean(24.5), "copy_last": mean(22.0),
                                                             "shuffled": mean(23.0)}}))
    report = main_job_report(tmp_path / "p.json", tmp_path / "w.json", {"policy_rollouts": 12.0})
    assert report["policy"]["success_rate"] == 0.5 and report["policy"]["seeds"] == [0, 1, 2, 3]
    assert report["worldmodel"]["psnr_db"] == 24.5 and report["worldmodel"]["copy_last_frame_psnr_db"] == 22.0
    assert "2/4 successful (50 %)" in report["summary"] and "vs copy-last-frame 22.00 dB" in report["summary"]
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="not a `worldmodel eval` report"):
        main_job_report(tmp_path / "p.json", tmp_path / "bad.json", {})
