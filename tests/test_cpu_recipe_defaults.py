"""The cpu profiles are the recipe the study chose (benchmarks/recipe_results.json,
docs/recipe.md), and the own-images route runs from the shipped generic backbone."""

import json
from pathlib import Path

import pytest

import benchmarks.recipe_study as rs
from rol_hashing.cli.main import main
from rol_hashing.data.generated import make_generated_dataset
from rol_hashing.training.config import load_config

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "recipe_results.json"
# Profiles that start from the generic backbone; fashion_* pre-train their own (the
# generic one saw their gallery), generated's stand-in is its own pool.
GENERIC = ("awa2", "cifar10", "folders", "voc2012")
OWN = {"fashion_mnist": "cpu", "fashion_scenes": "cpu", "generated": "cpu"}


def _final_levers() -> tuple[str, ...]:
    result = json.loads(RESULTS.read_text())
    assert "final" in result, "the recipe study has not chosen yet"
    return tuple(result["final_levers"])


@pytest.mark.parametrize(
    "experiment, profile",
    [(e, "cpu") for e in GENERIC] + list(OWN.items()) + [("generated", "demo")],
)
def test_cpu_profiles_are_the_chosen_recipe(experiment, profile):
    levers = _final_levers()
    model, hashing = rs.lever_settings(levers)
    config = load_config(experiment, profile)
    for key, value in model.items():
        assert getattr(config.model, key) == value, (experiment, profile, key)
    for key, value in hashing.items():
        assert getattr(config.hashing, key) == value, (experiment, profile, key)
    backbone = Path(config.model.backbone_weights or "").name
    if experiment in GENERIC:
        assert "generic" in levers
        assert backbone == rs.generic_name(config)
        assert (REPO / "weights" / backbone).is_file()
        assert (REPO / "weights" / backbone).with_suffix(".json").is_file()
    elif profile == "cpu":
        assert backbone == f"pretrained_{experiment}_cpu.h5"


@pytest.mark.slow
def test_own_images_route_runs_from_the_generic_backbone(tmp_path, capsys, monkeypatch):
    """README "Your own images" without its optional pre-training: the folders profile's
    default backbone (weights/generic_..., at the profile's width) loads and trains."""
    monkeypatch.chdir(tmp_path)
    name = Path(load_config("folders", "cpu").model.backbone_weights).name
    (tmp_path / "weights").mkdir()
    for suffix in (".h5", ".json"):
        target = (REPO / "weights" / name).with_suffix(suffix)
        (tmp_path / "weights" / target.name).symlink_to(target)
    gen = make_generated_dataset(
        tmp_path / "mine", num_images=60, num_seg_images=10, image_size=48, num_classes=3
    )
    argv = ["train-hash", "--config", "folders", "--data-root", str(gen / "classes")]
    argv += ["--method", "ssdh", "--bits", "12", "--profile", "cpu", "--verbose", "0"]
    argv += ["--input-size", "32", "--epochs", "1"]
    assert main(argv) == 0, capsys.readouterr().err
    assert f"weights/{name}" in capsys.readouterr().out
    recorded = (tmp_path / "runs/cpu/folders-ssdh-12b/config.yaml").read_text()
    assert name in recorded and "batch_norm: true" in recorded


def test_profile_weights_are_found_from_another_folder(tmp_path, monkeypatch):
    """The profiles name the shipped backbone as weights/<file>; a command run from a
    user's own folder finds it in the checkout, a file of the same name in the current
    folder wins, and a missing one names both places."""
    from rol_hashing.training.backbone import resolve_backbone_weights

    monkeypatch.chdir(tmp_path)
    shipped = load_config("folders", "cpu").model.backbone_weights
    assert resolve_backbone_weights(shipped, needs_top=False) == REPO / shipped
    own = tmp_path / shipped
    own.parent.mkdir(parents=True)
    own.write_bytes(b"not read here")
    assert resolve_backbone_weights(shipped, needs_top=False) == Path(shipped)
    with pytest.raises(FileNotFoundError) as err:
        resolve_backbone_weights("weights/pretrained_nowhere_cpu.h5", needs_top=False)
    assert "weights/pretrained_nowhere_cpu.h5" in str(err.value)
    assert str(REPO / "weights" / "pretrained_nowhere_cpu.h5") in str(err.value)
