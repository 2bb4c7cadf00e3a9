"""KITTI road layout on files the test writes: magenta road ground truth."""

import numpy as np
import pytest
from PIL import Image

from kseg.data import DataError, load_kitti_road
from kseg.data.formats.kitti import gt_name


def make_kitti(root):
    images, gts = root / "training" / "image_2", root / "training" / "gt_image_2"
    images.mkdir(parents=True)
    gts.mkdir(parents=True)
    gt = np.zeros([12, 16, 3], np.uint8)
    gt[..., 0] = 255  # red: non-road
    gt[6:, 4:12] = (255, 0, 255)  # magenta: road
    gt[:2] = 0  # black: don't care
    for name in ("um_000000.png", "uu_000001.png"):
        Image.fromarray(np.full([12, 16, 3], 120, np.uint8)).save(images / name)
        Image.fromarray(gt).save(gts / gt_name(name, "road"))
    Image.fromarray(gt).save(gts / "um_lane_000000.png")
    test_images = root / "testing" / "image_2"
    test_images.mkdir(parents=True)
    Image.fromarray(np.zeros([12, 16, 3], np.uint8)).save(test_images / "um_000009.png")


def test_gt_name():
    assert gt_name("um_000000.png") == "um_road_000000.png"
    assert gt_name("umm_000012.png", "lane") == "umm_lane_000012.png"


def test_load_kitti_road(tmp_path):
    make_kitti(tmp_path)
    ds = load_kitti_road(tmp_path)
    assert ds.class_names == ["BG", "road"] and ds.num_images == 2
    class_map = ds.load_semantic_mask(0)
    assert class_map.dtype == np.int32 and class_map.shape == (12, 16)
    assert class_map.sum() == 6 * 8 and class_map[6:, 4:12].all()
    masks, class_ids = ds.load_mask(0)
    assert masks.shape == (12, 16, 1) and list(class_ids) == [1]
    ignored = load_kitti_road(tmp_path, ignore_index=255).load_semantic_mask(0)
    assert (ignored[:2] == 255).all() and ignored[6:, 4:12].min() == 1


def test_lane_only_when_asked_and_testing_subset(tmp_path):
    make_kitti(tmp_path)
    lanes = load_kitti_road(tmp_path, gt_type="lane")
    assert [i["id"] for i in lanes.image_info] == ["um_000000"]
    test = load_kitti_road(tmp_path, subset="testing")
    assert test.num_images == 1 and test.load_image(0).shape == (12, 16, 3)
    with pytest.raises(DataError, match="no ground truth"):
        test.load_semantic_mask(0)
    with pytest.raises(DataError, match="image_2"):
        load_kitti_road(tmp_path / "missing")
