"""The `kseg` command line: help, info, one-line errors, and train -> evaluate -> predict."""

import json

import numpy as np
import pytest
from PIL import Image

from kseg.cli import main

# A Mask R-CNN small enough to train 2 steps in seconds (64x64 images).
TINY = {"BACKBONE_FILTERS": 8, "TOP_DOWN_PYRAMID_SIZE": 16, "RPN_CONV_FILTERS": 16,
        "FPN_CLASSIF_FC_LAYERS_SIZE": 32, "MASK_HEAD_FILTERS": 16, "IMAGES_PER_GPU": 2,
        "RPN_ANCHOR_SCALES": [4, 8, 16, 32, 64], "PRE_NMS_LIMIT": 256,
        "POST_NMS_ROIS_TRAINING": 64, "TRAIN_ROIS_PER_IMAGE": 16,
        "POST_NMS_ROIS_INFERENCE": 32}

HELP_COMMANDS = [
    [], ["train"], ["evaluate"], ["predict"],
    ["train", "maskrcnn"], ["evaluate", "maskrcnn"], ["predict", "maskrcnn"],
    ["train", "fcn"], ["evaluate", "fcn"], ["predict", "fcn"],
    ["train", "unet"], ["evaluate", "unet"], ["predict", "unet"],
    ["export"], ["weights"], ["weights", "list"], ["weights", "download"], ["info"],
]


@pytest.mark.parametrize("argv", HELP_COMMANDS, ids=lambda a: " ".join(a) or "kseg")
def test_help_exits_zero(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    assert "usage: kseg" in capsys.readouterr().out


def test_info_runs(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for word in ("kseg", "keras", "backend", "numpy", "devices", "data dir", "weights cache"):
        assert word in out


def _one_line_error(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("kseg: error: "), err
    assert "\n" not in err and "Traceback" not in err
    return err


def test_missing_dataset_is_one_line_exit_2(tmp_path, capsys):
    missing = tmp_path / "no_such_dataset"
    assert main(["train", "maskrcnn", "--dataset", str(missing)]) == 2
    assert str(missing) in _one_line_error(capsys)


def test_missing_weights_and_images_exit_2(tmp_path, capsys):
    weights = tmp_path / "nope.h5"
    assert main(["predict", "maskrcnn", "--weights", str(weights), "--images", str(tmp_path),
                 "--out", str(tmp_path / "out")]) == 2
    assert str(weights) in _one_line_error(capsys)
    assert main(["predict", "maskrcnn", "--logs", str(tmp_path), "--images", str(tmp_path),
                 "--out", str(tmp_path / "out")]) == 2
    assert "no Mask R-CNN checkpoint" in _one_line_error(capsys)


def test_bad_config_is_one_line_exit_2(capsys):
    argv = ["train", "maskrcnn", "--shapes-count", "2"]
    assert main([*argv, "--config", '{"IMAGE_MAX_DIM": 100}']) == 2
    assert "IMAGE_MAX_DIM" in _one_line_error(capsys)
    assert main([*argv, "--config", "{oops"]) == 2
    assert "invalid JSON" in _one_line_error(capsys)


def test_debug_shows_the_exception(tmp_path):
    from kseg.data.dataset import DataError

    with pytest.raises(DataError):
        main(["--debug", "train", "maskrcnn", "--dataset", str(tmp_path / "missing")])


@pytest.fixture(scope="module")
def trained_logs(tmp_path_factory):
    """Train the tiny shapes model 1 epoch x 2 steps with `kseg train maskrcnn`."""
    logs = tmp_path_factory.mktemp("logs")
    code = main(["train", "maskrcnn", "--dataset", "shapes", "--steps", "2", "--epochs", "1",
                 "--image-size", "64", "--shapes-count", "8", "--logs", str(logs),
                 "--config", json.dumps(TINY), "--verbose", "0"])
    assert code == 0
    return logs


@pytest.mark.slow
def test_train_writes_checkpoint_and_config(trained_logs):
    checkpoints = list(trained_logs.glob("shapes*/mask_rcnn_shapes_0001.h5"))
    assert len(checkpoints) == 1
    config = json.loads((checkpoints[0].parent / "config.json").read_text())
    assert config["IMAGE_MAX_DIM"] == 64 and config["BACKBONE_FILTERS"] == 8
    assert config["CLASS_NAMES"] == ["BG", "square", "circle", "triangle"]


@pytest.mark.slow
def test_evaluate_last_writes_json(trained_logs, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert main(["evaluate", "maskrcnn", "--dataset", "shapes", "--weights", "last",
                 "--logs", str(trained_logs), "--limit", "2", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert 0 <= result["mask_map50"] <= 1 and 0 <= result["box_map50"] <= 1
    assert set(result["coco"]) == {"bbox", "segm"} and "AP" in result["coco"]["segm"]
    assert "mask mAP@0.5" in capsys.readouterr().out


@pytest.mark.slow
def test_predict_last_writes_overlays_and_rle(trained_logs, tmp_path):
    from kseg.data import ShapesDataset

    images = tmp_path / "images"
    images.mkdir()
    shapes = ShapesDataset(2, 64, 64, seed=7)
    for i in shapes.image_ids:
        Image.fromarray(shapes.load_image(i)).save(images / f"shape{i}.png")
    out = tmp_path / "out"
    assert main(["predict", "maskrcnn", "--weights", "last", "--logs", str(trained_logs),
                 "--images", str(images), "--out", str(out), "--splash",
                 "--min-confidence", "0"]) == 0
    for stem in ("shape0", "shape1"):
        assert np.asarray(Image.open(out / f"{stem}.png")).ndim == 3
        assert np.asarray(Image.open(out / f"{stem}_splash.png")).shape == (64, 64, 3)
    result = json.loads((out / "detections.json").read_text())
    assert [im["height"] for im in result["images"]] == [64, 64]
    assert [c["name"] for c in result["categories"]] == ["square", "circle", "triangle"]
    for det in result["detections"]:
        assert det["segmentation"]["size"] == [64, 64]
        assert isinstance(det["segmentation"]["counts"], str)
