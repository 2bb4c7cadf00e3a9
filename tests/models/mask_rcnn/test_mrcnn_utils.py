"""Porting from Matterport: `kseg.models.mask_rcnn.utils` holds mrcnn.utils' names, load_image_gt takes
Matterport's keywords, and train's no_augmentation_sources skips augmentation."""

import numpy as np

from kseg.data import ShapesDataset
from kseg.data.dataset import Dataset
from kseg.data.pipelines.maskrcnn_pipeline import MaskRCNNSequence, load_image_gt
from kseg.data.pipelines.molding import resize_image
from kseg.evaluate.matching import compute_ap
from kseg.models.mask_rcnn import utils
from kseg.models.mask_rcnn.config import MaskRCNNConfig

MATTERPORT_UTILS = ["compute_ap", "compute_overlaps_masks", "extract_bboxes", "resize_image",
                    "resize_mask", "minimize_mask", "expand_mask", "unmold_mask", "Dataset",
                    "download_trained_weights"]


def config(**values):
    return MaskRCNNConfig(**{"NUM_CLASSES": 4, "IMAGE_MIN_DIM": 64, "IMAGE_MAX_DIM": 64,
                             "IMAGES_PER_GPU": 2, "MINI_MASK_SHAPE": (14, 14),
                             "RPN_ANCHOR_SCALES": (8, 16, 32, 64, 128), "PRE_NMS_LIMIT": 2000,
                             **values})


def test_matterport_utils_names_are_the_kseg_functions():
    for name in MATTERPORT_UTILS:
        assert callable(getattr(utils, name)), name
    assert utils.resize_image is resize_image and utils.compute_ap is compute_ap
    assert utils.Dataset is Dataset and set(MATTERPORT_UTILS) <= set(utils.__all__)


def test_download_trained_weights_copies_the_verified_file(tmp_path, monkeypatch):
    from kseg import weights

    cached = tmp_path / "cache.h5"
    cached.write_bytes(b"weights")
    monkeypatch.setattr(weights, "get", lambda name: str(cached))
    target = tmp_path / "logs" / "mask_rcnn_coco.h5"
    target.parent.mkdir()
    assert utils.download_trained_weights(str(target), verbose=0) == str(target)
    assert target.read_bytes() == b"weights"


def test_load_image_gt_with_matterport_keywords():
    dataset, cfg = ShapesDataset(2, 64, 64, seed=1), config()
    image, meta, class_ids, boxes, masks = load_image_gt(dataset, cfg, 0, use_mini_mask=False)
    assert masks.shape == (64, 64, len(class_ids)) and masks.any(axis=(0, 1)).all()
    mini = load_image_gt(dataset, cfg, 0)[4]
    assert mini.shape == (14, 14, len(class_ids))
    flips = [load_image_gt(dataset, cfg, 0, rng=np.random.default_rng(s), augment=True,
                           use_mini_mask=False) for s in range(8)]
    flipped = [f for f in flips if not np.array_equal(f[0], image)]
    assert 0 < len(flipped) < 8  # a coin flip per call
    np.testing.assert_array_equal(flipped[0][0], image[:, ::-1])
    np.testing.assert_array_equal(flipped[0][4], masks[:, ::-1])


def _invert(image, mask=None, masks=None):
    return {"image": 255 - image, "mask": mask, "masks": masks}


def test_no_augmentation_sources_are_not_augmented():
    dataset = ShapesDataset(2, 64, 64, seed=1, prepare=False)
    dataset.add_class("real", 1, "square")
    dataset.image_info[1]["source"] = "real"
    dataset.prepare()
    cfg = config(NUM_CLASSES=5)
    plain = [load_image_gt(dataset, cfg, i)[0] for i in (0, 1)]
    seq = MaskRCNNSequence(dataset, cfg, shuffle=False, augmentation=_invert, seed=0,
                           no_augmentation_sources=["real"])
    images = seq[0]["input_image"] + cfg.MEAN_PIXEL
    np.testing.assert_allclose(images[0], 255 - plain[0].astype(np.float32), atol=1e-3)
    np.testing.assert_allclose(images[1], plain[1], atol=1e-3)
