"""samples/coco: train 2 steps and evaluate on a tiny COCO JSON written here.

Three generated shapes images; instances are polygons, plus one crowd region
stored as uncompressed RLE (the COCO crowd format).
"""

import json

import numpy as np
import pytest
from PIL import Image
from sample_module import load_sample
from skimage import measure

TINY = {"BACKBONE_FILTERS": 8, "TOP_DOWN_PYRAMID_SIZE": 16, "RPN_CONV_FILTERS": 16,
        "FPN_CLASSIF_FC_LAYERS_SIZE": 32, "MASK_HEAD_FILTERS": 16, "IMAGES_PER_GPU": 2,
        "RPN_ANCHOR_SCALES": [4, 8, 16, 32, 64], "PRE_NMS_LIMIT": 256,
        "POST_NMS_ROIS_TRAINING": 64, "TRAIN_ROIS_PER_IMAGE": 16,
        "POST_NMS_ROIS_INFERENCE": 32, "DETECTION_MIN_CONFIDENCE": 0.0}




def uncompressed_rle(mask):
    """COCO's uncompressed RLE: run lengths in column-major order, starting with zeros."""
    flat = np.asarray(mask, np.uint8).flatten(order="F")
    changes = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    counts = np.diff(np.concatenate([[0], changes])).tolist()
    return {"size": list(mask.shape), "counts": counts}


def polygon(mask):
    contour = max(measure.find_contours(np.pad(mask, 1).astype(float), 0.5), key=len) - 1
    return [float(v) for yx in contour[::2] for v in (yx[1], yx[0])]


def write_tiny_coco(folder):
    from kseg.data import ShapesDataset

    shapes = ShapesDataset(3, 64, 64, seed=3)
    images, annotations = [], []
    for i in shapes.image_ids:
        Image.fromarray(shapes.load_image(i)).save(folder / f"img{i}.png")
        images.append({"id": int(i) + 1, "file_name": f"img{i}.png", "height": 64, "width": 64})
        masks, class_ids = shapes.load_mask(i)
        for k, class_id in enumerate(class_ids):
            annotations.append({"image_id": int(i) + 1, "category_id": int(class_id), "iscrowd": 0,
                                "segmentation": [polygon(masks[..., k])]})
    crowd = np.zeros([64, 64], bool)
    crowd[2:12, 40:60] = True
    annotations.append({"image_id": 1, "category_id": 1, "iscrowd": 1,
                        "segmentation": uncompressed_rle(crowd)})
    for n, ann in enumerate(annotations, start=1):
        ann.update(id=n, area=100.0, bbox=[0, 0, 1, 1])
    categories = [{"id": c, "name": n} for c, n in enumerate(shapes.class_names) if c > 0]
    path = folder / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": categories}))
    return path


def test_tiny_coco_json_loads_with_crowd(tmp_path):
    from kseg.data import load_coco

    dataset = load_coco(write_tiny_coco(tmp_path), tmp_path)
    assert len(dataset.image_ids) == 3
    masks, class_ids = dataset.load_mask(0)
    assert (class_ids < 0).sum() == 1 and masks[2:12, 40:60, class_ids < 0].all()


@pytest.mark.slow
def test_train_two_steps_then_coco_metrics(tmp_path):
    from kseg.evaluate import COCO_STAT_NAMES

    sample = load_sample("coco")
    annotations = write_tiny_coco(tmp_path)
    common = ["--annotations", str(annotations), "--images", str(tmp_path),
              "--logs", str(tmp_path / "logs"), "--config", json.dumps(TINY),
              "--image-size", "64", "--name", "tiny"]
    histories = sample.main(["train", *common, "--model", "none", "--preset", "small",
                             "--stages", "all:1", "--steps", "2", "--verbose", "0"])
    assert np.isfinite(histories[-1].history["loss"][-1])
    out = tmp_path / "metrics.json"
    result = sample.main(["evaluate", *common, "--model", "last", "--out", str(out)])
    for kind in ("bbox", "segm"):
        assert set(result["coco"][kind]) == set(COCO_STAT_NAMES)
    saved = json.loads(out.read_text())
    assert saved["num_images"] == 3 and "mask_map50" in saved
