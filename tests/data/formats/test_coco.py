"""COCO loading: polygons, compressed / uncompressed RLE, crowd, class filters."""

import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from kseg.data import DataError, ImageReadError, load_coco


def uncompressed_rle(mask):
    """Column-major run lengths starting with zeros, as COCO stores crowd masks."""
    flat = mask.flatten(order="F").astype(np.uint8)
    counts, current, run = [], 0, 0
    for v in flat:
        if v != current:
            counts.append(run)
            current, run = v, 0
        run += 1
    counts.append(run)
    return {"size": list(mask.shape), "counts": counts}


@pytest.fixture
def coco_dir(tmp_path):
    h, w = 20, 30
    for name in ("a.png", "b.png", "c.png"):
        Image.new("RGB", (w, h), (50, 60, 70)).save(tmp_path / name)
    block = np.zeros([h, w], np.uint8)
    block[5:10, 20:28] = 1
    compressed = mask_utils.encode(np.asfortranarray(block))
    compressed["counts"] = compressed["counts"].decode("ascii")
    crowd = np.zeros([h, w], np.uint8)
    crowd[12:18, 2:12] = 1
    data = {
        "images": [{"id": 1, "file_name": "a.png", "height": h, "width": w},
                   {"id": 2, "file_name": "b.png", "height": h, "width": w},
                   {"id": 3, "file_name": "c.png", "height": h, "width": w}],
        "categories": [{"id": 1, "name": "person"}, {"id": 5, "name": "car"}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 25,
             "bbox": [2, 2, 5, 5], "segmentation": [[2, 2, 7, 2, 7, 7, 2, 7]]},
            {"id": 11, "image_id": 1, "category_id": 5, "iscrowd": 0, "area": 40,
             "bbox": [20, 5, 8, 5], "segmentation": compressed},
            {"id": 12, "image_id": 1, "category_id": 1, "iscrowd": 1, "area": 60,
             "bbox": [2, 12, 10, 6], "segmentation": uncompressed_rle(crowd)},
            {"id": 13, "image_id": 2, "category_id": 5, "iscrowd": 0, "area": 9,
             "bbox": [0, 0, 3, 3], "segmentation": [[0, 0, 3, 0, 3, 3, 0, 3]]},
        ],
    }
    (tmp_path / "instances.json").write_text(json.dumps(data))
    return tmp_path


def test_load_coco_masks_and_crowd(coco_dir):
    ds, coco = load_coco(coco_dir / "instances.json", coco_dir, return_coco=True)
    assert ds.class_names == ["BG", "person", "car"] and ds.num_images == 2  # c.png: no anns
    assert len(coco.getImgIds()) == 3
    info = ds.image_info[0]
    assert info["id"] == 1 and [a["iscrowd"] for a in info["annotations"]] == [0, 0, 1]
    masks, class_ids = ds.load_mask(0)
    assert masks.shape == (20, 30, 3) and masks.dtype == bool
    np.testing.assert_array_equal(class_ids, [1, 2, -1])  # crowd: negative class id
    assert masks[5:10, 20:28, 1].all() and masks[:, :, 1].sum() == 40
    assert masks[12:18, 2:12, 2].all() and masks[:, :, 2].sum() == 60
    assert masks[2:7, 2:7, 0].all()
    class_map = ds.load_semantic_mask(0)
    assert class_map[15, 5] == 0 and class_map[6, 25] == 2 and class_map[4, 4] == 1
    assert ds.load_image(0).shape == (20, 30, 3)


def test_class_filter(coco_dir):
    ds = load_coco(str(coco_dir / "instances.json"), str(coco_dir), class_ids=[5])
    assert ds.class_names == ["BG", "car"] and ds.num_images == 2
    np.testing.assert_array_equal(ds.load_mask(0)[1], [1])


def test_coco_errors_name_the_file(coco_dir, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [')
    with pytest.raises(DataError, match=r"bad\.json.*line 1"):
        load_coco(bad, tmp_path)
    bad.write_text('{"images": []}')
    with pytest.raises(DataError, match=r"bad\.json.*'annotations'"):
        load_coco(bad, tmp_path)
    ds = load_coco(coco_dir / "instances.json", coco_dir)
    (coco_dir / "a.png").unlink()
    with pytest.raises(ImageReadError, match=r"a\.png"):
        ds.load_image(0)
