"""samples/road/road.py: config, CamVid / KITTI / generated data, training lowers the loss."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sample_module import load_sample

road = load_sample("road")


def test_config_defaults_are_valid():
    config = road.RoadConfig()
    assert config.NUM_CLASSES == 2 and config.FCN_VARIANT == "fcn8s"
    assert config.IMAGE_SHAPE.tolist() == [256, 256, 3]


def test_camvid_split_is_by_drive(camvid_dir):
    train, val = road.load_road_datasets(camvid_dir)
    assert (len(train.image_ids), len(val.image_ids)) == (367, 101)
    train_drives = {Path(info["path"]).name.split("_")[0] for info in train.image_info}
    val_drives = {Path(info["path"]).name.split("_")[0] for info in val.image_info}
    assert val_drives == set(road.VAL_DRIVES) == {"0006R0"}
    assert train_drives == {"0001TP", "0016E5"}  # CamVid train and val, the held-out drive not
    again = road.load_road_datasets(camvid_dir)[1]
    assert [info["path"] for info in again.image_info] == [info["path"] for info in val.image_info]
    other = road.load_road_datasets(camvid_dir, val_groups=["0001TP"])
    assert (len(other[0].image_ids), len(other[1].image_ids)) == (406, 62)


def _write_kitti(root, count=5):
    (root / "training" / "image_2").mkdir(parents=True)
    (root / "training" / "gt_image_2").mkdir()
    for i in range(count):
        image = np.full((24, 40, 3), 40 * i, np.uint8)
        gt = np.zeros((24, 40, 3), np.uint8)
        gt[:, :, 0] = 255                      # red: non-road
        gt[12:, :] = (255, 0, 255)             # magenta: road
        Image.fromarray(image).save(root / "training" / "image_2" / f"um_{i:06d}.png")
        Image.fromarray(gt).save(root / "training" / "gt_image_2" / f"um_road_{i:06d}.png")


def test_kitti_layout(tmp_path):
    _write_kitti(tmp_path)
    train, val = road.load_road_datasets(tmp_path, fmt="kitti")
    assert (len(train.image_ids), len(val.image_ids)) == (4, 1)
    class_map = train.load_semantic_mask(0)
    assert class_map[12:].all() and not class_map[:12].any()


def test_generated_stand_in():
    train, val = road.load_road_datasets(None)
    assert (len(train.image_ids), len(val.image_ids)) == (160, 40)
    assert train.class_names == ["BG", "road"]


def test_few_steps_on_camvid_lower_the_loss(camvid_dir):
    from kseg.data.pipelines.semantic_pipeline import SemanticSequence
    from kseg.models.fcn import build_fcn
    from kseg.semantic.train import compile_semantic

    config = road.RoadConfig(IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=64, ENCODER_WIDTH=0.125,
                             FCN_FC_FILTERS=32, FCN_DROPOUT=0.0, IMAGES_PER_GPU=2)
    train, _ = road.load_road_datasets(camvid_dir)
    images, class_maps = SemanticSequence(train, config, shuffle=False)[0]
    model = compile_semantic(build_fcn(config), config)
    losses = [model.train_on_batch(images, class_maps, return_dict=True)["loss"]
              for _ in range(15)]
    assert np.mean(losses[-3:]) < 0.8 * losses[0], losses


def test_cli_train_then_evaluate_on_generated_scenes(tmp_path):
    road.main(["train", "--epochs", "1", "--steps", "2", "--image-size", "64",
               "--logs", str(tmp_path)])
    out = tmp_path / "results.json"
    results = road.main(["evaluate", "--logs", str(tmp_path), "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["class_names"] == ["BG", "road"] and saved["num_images"] == 40
    assert saved["mean_iou"] == pytest.approx(results["mean_iou"])
    assert 0.0 <= saved["maxf"] <= 1.0
    priors = road.main(["prior"])
    assert set(priors) == {"mean_mask", "all_foreground"}
    assert priors["all_foreground"]["iou"]["BG"] == 0.0
