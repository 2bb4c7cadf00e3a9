"""Run folders describe themselves: config.json written and read back, checkpoints found,
the model kind told from old and new config.json files."""

import json
import os
from pathlib import Path

import pytest

from kseg.config import ConfigError, FCNConfig, UNetConfig
from kseg.models.mask_rcnn.presets import ShapesConfig
from kseg.models.runs import (
    load_inference_model,
    load_run_config,
    read_overrides,
    resolve_checkpoint,
)
from kseg.utils.runs import (
    find_checkpoint,
    last_checkpoint_in,
    model_kind,
    read_run_config,
    write_run_config,
)

RUNS = Path(__file__).resolve().parents[1] / "fixtures" / "runs_v0_1"


def test_config_json_names_model_preset_and_classes_and_reads_back(tmp_path):
    config = ShapesConfig(STEPS_PER_EPOCH=3)
    path = write_run_config(config, tmp_path / "run", ["BG", "square", "circle", "triangle"])
    saved = json.loads(Path(path).read_text())
    assert saved["MODEL"] == "maskrcnn"
    assert saved["PRESET"] == "kseg.models.mask_rcnn.presets.ShapesConfig"
    assert saved["CLASS_NAMES"] == ["BG", "square", "circle", "triangle"]
    rebuilt = load_run_config(tmp_path / "run")
    assert rebuilt.STEPS_PER_EPOCH == 3 and rebuilt.BACKBONE == "resnet_tiny"
    assert rebuilt.to_dict() == {**config.to_dict(), "CLASS_NAMES": saved["CLASS_NAMES"]}
    semantic = UNetConfig(NUM_CLASSES=2, CLASS_NAMES=["BG", "smoke"])
    write_run_config(semantic, tmp_path / "unet", ["BG", "ignored"])
    assert read_run_config(tmp_path / "unet")["CLASS_NAMES"] == ["BG", "smoke"]
    assert isinstance(load_run_config(tmp_path / "unet"), UNetConfig)


def test_model_kind_of_config_json_without_model():
    for kind in ("maskrcnn", "fcn", "unet"):
        values = read_run_config(next((RUNS / kind).iterdir()))
        assert "MODEL" not in values and model_kind(values) == kind
    assert model_kind(FCNConfig(NUM_CLASSES=2)) == "fcn"


def _touch(path, mtime):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    os.utime(path, (mtime, mtime))
    return path


def test_checkpoints_by_name_by_age_and_in_a_run_folder(tmp_path):
    old = _touch(tmp_path / "shapes20260101T0000" / "mask_rcnn_shapes_0009.h5", 1000)
    new = _touch(tmp_path / "unet20260102T0000" / "kseg_unet_0002.weights.h5", 2000)
    _touch(tmp_path / "unet20260102T0000" / "kseg_unet_0010.weights.h5", 1500)
    assert find_checkpoint(tmp_path, kind="maskrcnn") == str(old)
    assert find_checkpoint(tmp_path) == str(new)  # newest file of any model
    assert find_checkpoint(tmp_path, "unet").endswith("kseg_unet_0010.weights.h5")
    assert last_checkpoint_in(new.parent).endswith("kseg_unet_0010.weights.h5")
    assert resolve_checkpoint(str(new.parent)).endswith("kseg_unet_0010.weights.h5")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        last_checkpoint_in(tmp_path)
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        resolve_checkpoint(str(tmp_path / "nope.h5"))


def test_a_run_of_another_model_is_refused_by_name():
    with pytest.raises(ConfigError, match="trained a fcn model, not a unet model"):
        load_inference_model(RUNS / "fcn" / "fcn20260101T0000", kind="unet")


def test_overrides_from_json_text_or_file(tmp_path):
    assert read_overrides('{"IMAGES_PER_GPU": 1}') == {"IMAGES_PER_GPU": 1}
    (tmp_path / "c.json").write_text('{"NUM_CLASSES": 3}')
    assert read_overrides(str(tmp_path / "c.json")) == {"NUM_CLASSES": 3}
    with pytest.raises(ConfigError, match="invalid JSON"):
        read_overrides("{oops")
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(ConfigError, match="expected a JSON object"):
        read_overrides(str(tmp_path / "list.json"))
