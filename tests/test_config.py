import math
from pathlib import Path

import pytest

from landmarkflow.config import ConfigError, load_config
from landmarkflow.data.synthetic.params import HARD_FACE_SIZES
from landmarkflow.data.synthetic_default import SynthOptions
from landmarkflow.geometry import CropSpec
from landmarkflow.layouts import get_layout
from tests.fresh_process import imported_after

CONFIGS = sorted(Path("configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_shipped_config_validates(path: Path) -> None:
    config = load_config(path)
    assert config.model.num_points == get_layout(config.data.layout).num_points
    assert len(config.config_hash()) == 16


def test_overrides_reach_nested_fields_and_change_the_hash() -> None:
    base = load_config("configs/hih_synthetic_tiny.yaml")
    changed = load_config("configs/hih_synthetic_tiny.yaml", {"train.epochs": 3, "data.root": "/elsewhere"})
    assert (changed.train.epochs, changed.data.root) == (3, "/elsewhere")
    assert changed.config_hash() != base.config_hash()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path


def test_unknown_key_names_the_file_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: x\nmodel: {name: hih}\ntrain: {epochs: 2, learning_rate: 0.1}\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: invalid config\n  train\.learning_rate: Extra inputs"):
        load_config(path)


def test_wrong_value_and_unknown_model_are_explained(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"train\.batch_size: Input should be greater than or equal to 1"):
        load_config(_write(tmp_path, "name: x\nmodel: {name: hih}\ntrain: {batch_size: 0}\n"))
    with pytest.raises(ConfigError, match=r"unknown model 'resnet'"):
        load_config(_write(tmp_path, "name: x\nmodel: {name: resnet}\n"))


@pytest.mark.parametrize(
    "section,message",
    [
        (
            "augment: {scale_range: [1.2, 0.9]}",
            r"augment\.scale_range: Value error, expected \(low, high\) with 0 < low",
        ),
        ("augment: {scale_range: [-1.0, 0.5]}", r"augment\.scale_range: .* got \[-1\.0, 0\.5\]"),
        ("augment: {saturation_range: [0.0, 1.2]}", None),
        ("eval: {perturb_scale: [0.0, 1.5]}", r"eval\.perturb_scale: .* 0 < low"),
        ("train: {epochs: 0}", r"train\.epochs: Input should be greater than or equal to 1"),
        (
            "train: {milestones: [20, 1]}",
            r"train\.milestones: Value error, expected rising epochs from 1 on, got \[20, 1\]",
        ),
        ("train: {milestones: [0]}", r"train\.milestones: .* from 1 on"),
        ("train: {betas: [0.9, 1.5]}", r"train\.betas\.1: Input should be less than 1"),
    ],
)
def test_ranges_schedules_and_gates_a_user_can_get_wrong(tmp_path: Path, section: str, message: str | None) -> None:
    path = _write(tmp_path, f"name: x\nmodel: {{name: hih}}\n{section}\n")
    if message is None:
        load_config(path)
        return
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_point_count_must_match_layout(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: x\nmodel: {name: hih, num_points: 98}\ndata: {layout: '68'}\n")
    with pytest.raises(ConfigError, match=r"model\.num_points is 98 but data\.layout 68 has 68 points"):
        load_config(path)


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(_write(tmp_path, "name: [unclosed\n"))


def test_a_key_given_twice_is_refused_with_both_lines(tmp_path: Path) -> None:
    """YAML itself would keep the second value and drop the first without a word."""
    text = "name: x\nmodel: {name: hih}\ntrain:\n  epochs: 3\n  batch_size: 8\n  epochs: 4\n"
    path = _write(tmp_path, text)
    with pytest.raises(
        ConfigError, match=r"bad\.yaml: line 6: 'epochs' is given twice in one mapping \(first on line 4\)"
    ):
        load_config(path)
    with pytest.raises(ConfigError, match=r"line 3: 'train' is given twice in one mapping \(first on line 2\)"):
        load_config(_write(tmp_path, "name: x\ntrain: {epochs: 3}\ntrain: {epochs: 4}\n"))
    with pytest.raises(ConfigError, match=r"line 2: 'yes' is given twice in one mapping \(first on line 1\)"):
        load_config(_write(tmp_path, "true: 1\nyes: 2\n"))  # one key to YAML 1.1, named as written
    assert load_config(_write(tmp_path, "name: x\nmodel: {name: hih}\ntrain: {epochs: 3}\n")).train.epochs == 3


def test_keys_merged_in_by_an_anchor_may_be_overridden(tmp_path: Path) -> None:
    """YAML's `<<` brings in an anchored mapping's keys as defaults: overriding one is no duplicate."""
    text = "name: x\nmodel: {name: hih}\nshared: &base {epochs: 3, batch_size: 8}\ntrain: {<<: *base, epochs: 4}\n"
    # parsed, merged and overridden: what is left to refuse is the extra section that held the anchor
    with pytest.raises(ConfigError, match=r"bad\.yaml: invalid config\n  shared: Extra inputs are not permitted$"):
        load_config(_write(tmp_path, text))
    with pytest.raises(ConfigError, match=r"line 1: 'epochs' is given twice in one mapping \(first on line 1\)"):
        load_config(_write(tmp_path, "train: {<<: {batch_size: 8}, epochs: 3, epochs: 4}\n"))


def test_parsing_a_config_imports_no_torch() -> None:
    """A fresh process: the test session itself has long imported torch."""
    code = "import landmarkflow.config\nlandmarkflow.config.load_config('configs/hih_synthetic_tiny.yaml')"
    assert imported_after(code, ["torch"]) == []


def test_a_normaliser_the_layout_lacks_is_refused_before_training(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: x\nmodel: {name: hih}\ndata: {layout: '68', normaliser: box_size}\n")
    with pytest.raises(ConfigError, match=r"data\.normaliser 'box_size' is not a normaliser of layout 68: expected"):
        load_config(path)


@pytest.mark.parametrize("section", ["train:\n", "train: 5\n"])
def test_an_override_into_a_section_that_is_no_mapping_names_it(tmp_path: Path, section: str) -> None:
    """`train --epochs 1` on a config whose `train:` had all its keys commented out."""
    path = _write(tmp_path, f"name: x\nmodel: {{name: hih}}\n{section}")
    with pytest.raises(ConfigError, match=r"bad\.yaml: train must be a mapping to set train\.epochs, got (None|5)"):
        load_config(path, {"train.epochs": 1})


@pytest.mark.parametrize("model", ["hih", "dsat", "lgcn", "rdfn"])
def test_the_default_crop_shrink_limit_is_the_most_a_training_crop_shrinks(model: str) -> None:
    """At that limit the default models train on the crops they would without one, and read a bigger face the way
    they were trained to: from a face no more than that many pixels per crop pixel."""
    config = load_config(f"configs/{model}_synthetic_tiny.yaml")
    largest_face = HARD_FACE_SIZES[1] * SynthOptions.image_size
    widest_crop = largest_face * config.data.box_scale * config.augment.scale_range[1]
    shrink = widest_crop / config.model.input_size
    assert shrink <= config.data.max_crop_shrink < shrink * 1.01


@pytest.mark.parametrize("limit,max_shrink", [(2.5, 2.5), (None, math.inf)])
def test_the_crop_spec_is_the_models_input_size_box_scale_and_limit(limit: float | None, max_shrink: float) -> None:
    config = load_config("configs/rdfn_synthetic_tiny.yaml", {"data.max_crop_shrink": limit, "data.box_scale": 1.4})
    assert config.crop_spec == CropSpec(96, 1.4, max_shrink)


def test_a_crop_shrink_limit_below_one_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"data\.max_crop_shrink"):
        load_config("configs/hih_synthetic_tiny.yaml", {"data.max_crop_shrink": 0.5})
