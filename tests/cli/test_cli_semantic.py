"""kseg.cli.semantic: train / evaluate / predict fcn and unet end to end on tiny settings."""

import argparse
import json

import numpy as np
import pytest
from PIL import Image

from kseg.cli import main as kseg_main
from kseg.cli import semantic
from kseg.data import DataError


def _args(command, model, argv):
    parser = argparse.ArgumentParser()
    semantic.add_arguments(command, parser)
    args = parser.parse_args(argv)
    args.model = model
    return args


def test_detect_format(tmp_path):
    (tmp_path / "kitti" / "training" / "image_2").mkdir(parents=True)
    (tmp_path / "camvid" / "valannot").mkdir(parents=True)
    (tmp_path / "folder" / "images").mkdir(parents=True)
    assert [semantic.detect_format(tmp_path / k) for k in ("kitti", "camvid", "folder")] == \
        ["kitti", "camvid", "folder"]


def _write_folder(root, count=6):
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        image = rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)
        mask = np.zeros((40, 56), np.uint8)
        mask[10:30, 5 + i:25 + i] = 255
        Image.fromarray(image).save(root / "images" / f"{i // 2}_{i % 2}.jpg")
        Image.fromarray(mask).save(root / "labels" / f"{i // 2}_{i % 2}.png")


def test_grouped_split_keeps_groups(tmp_path):
    _write_folder(tmp_path)
    train, val = semantic.grouped_split(semantic._load_folder(_args(
        "train", "unet", ["--dataset", str(tmp_path)])), 0.34, seed=0)
    groups = [{info["id"].split("_")[0] for info in d.image_info} for d in (train, val)]
    assert len(val.image_ids) == 2 and not groups[0] & groups[1]


def test_named_validation_groups_are_printed(tmp_path, capsys):
    _write_folder(tmp_path)
    train, val = semantic.load_semantic_data(_args(
        "train", "unet", ["--dataset", str(tmp_path), "--val-groups", "2,0"]), "unet")
    assert val.groups == {"0": 2, "2": 2} and train.groups == {"1": 2}
    out = capsys.readouterr().out
    assert "train: 2 images, 1 groups: 1 (2)" in out and "val: 4 images, 2 groups" in out


def test_masks_folder_option_and_error(tmp_path):
    _write_folder(tmp_path)
    (tmp_path / "labels").rename(tmp_path / "gt")
    with pytest.raises(DataError, match=r"tried .*labels, .*masks, .*annotations.*--masks"):
        semantic.load_semantic_data(_args("train", "unet", ["--dataset", str(tmp_path)]), "unet")
    train, val = semantic.load_semantic_data(_args(
        "train", "unet", ["--dataset", str(tmp_path), "--masks", str(tmp_path / "gt")]), "unet")
    assert train.num_images + val.num_images == 6
    with pytest.raises(DataError, match="tried .*nowhere"):
        semantic.load_semantic_data(_args(
            "train", "unet", ["--dataset", str(tmp_path), "--masks", str(tmp_path / "nowhere")]),
            "unet")


@pytest.mark.parametrize("model, extra", [
    ("fcn", ["--width", "0.0625", "--fc-filters", "8", "--variant", "fcn16s"]),
    ("unet", ["--base-filters", "4", "--depth", "2", "--loss", "ce+dice",
              "--foreground-prior", "0.05"]),
])
def test_train_evaluate_predict(tmp_path, model, extra):
    data = tmp_path / "data"
    _write_folder(data)
    logs = str(tmp_path / "logs")
    common = ["--dataset", str(data), "--logs", logs]
    assert kseg_main(["train", model] + common + [
        "--epochs", "1", "--steps", "1", "--image-size", "64", "--batch-size", "2"] + extra) == 0
    out = tmp_path / "results.json"
    assert kseg_main(["evaluate", model] + common + ["--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["class_names"] == ["BG", "foreground"] and 0 <= results["mean_iou"] <= 1
    priors = results["priors"]
    assert priors["all_background"]["iou"]["foreground"] == 0.0
    assert priors["all_foreground"]["iou"]["BG"] == 0.0 and "mean_mask" in priors
    pics = tmp_path / "pics"
    pics.mkdir()
    Image.fromarray(np.zeros((33, 47, 3), np.uint8)).save(pics / "a.png")
    Image.fromarray(np.full((70, 20, 3), 99, np.uint8)).save(pics / "b.jpg")
    assert semantic.run("predict", _args("predict", model, [
        "--logs", logs, "--images", str(pics), "--out", str(tmp_path / "pred")])) == 0
    mask = np.asarray(Image.open(tmp_path / "pred" / "b_mask.png"))
    assert mask.shape == (70, 20) and set(np.unique(mask)) <= {0, 255}
    overlay = np.asarray(Image.open(tmp_path / "pred" / "a_overlay.png"))
    assert overlay.shape[0] >= 33 and overlay.shape[1] >= 47


def test_missing_checkpoint_is_explained(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        semantic.run("evaluate", _args("evaluate", "unet", ["--logs", str(tmp_path)]))
    assert kseg_main(["evaluate", "unet", "--logs", str(tmp_path)]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_camvid_trains_on_train_and_val_and_validates_on_a_drive(tmp_path, capsys):
    labels = np.full((4, 6), 3, np.uint8)
    for split, names in (("train", ["0001TP_1", "0001TP_2", "0016E5_1"]), ("val", ["0016E5_9"])):
        (tmp_path / split).mkdir()
        (tmp_path / f"{split}annot").mkdir()
        for name in names:
            Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(tmp_path / split / f"{name}.png")
            Image.fromarray(labels).save(tmp_path / f"{split}annot" / f"{name}.png")
    train, val = semantic.load_semantic_data(_args(
        "train", "fcn", ["--dataset", str(tmp_path), "--val-groups", "0001TP"]), "fcn")
    assert val.groups == {"0001TP": 2} and train.groups == {"0016E5": 2}
    assert "val: 2 images, 1 groups: 0001TP (2)" in capsys.readouterr().out
    train, val = semantic.load_semantic_data(_args(
        "train", "fcn", ["--dataset", str(tmp_path), "--val-fraction", "0.5"]), "fcn")
    assert len(val.groups) == 1 and not set(val.groups) & set(train.groups)
