"""Mask R-CNN input pipeline: load_image_gt, batches, MaskRCNNSequence, tf.data."""

import json
import warnings

import keras
import numpy as np
import pytest

from kseg.data.dataset import DataError, Dataset
from kseg.data.generated.shapes import ShapesDataset
from kseg.data.pipelines.maskrcnn_pipeline import (
    INPUT_NAMES,
    MaskRCNNSequence,
    batch_spec,
    build_batch,
    load_image_gt,
    make_tf_dataset,
)
from kseg.data.pipelines.molding import expand_mask, extract_bboxes, parse_image_meta
from kseg.models.mask_rcnn.config import MaskRCNNConfig
from kseg.models.mask_rcnn.rpn_targets import RpnTargetLayer
from kseg.ops.anchors import config_anchors


class TinyConfig(MaskRCNNConfig):
    NAME = "tiny"
    NUM_CLASSES = 4
    IMAGE_MIN_DIM = 64
    IMAGE_MAX_DIM = 64
    IMAGES_PER_GPU = 2
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    RPN_TRAIN_ANCHORS_PER_IMAGE = 32
    MINI_MASK_SHAPE = (28, 28)
    MAX_GT_INSTANCES = 5
    TRAIN_ROIS_PER_IMAGE = 32
    POST_NMS_ROIS_TRAINING = 100
    PRE_NMS_LIMIT = 200


def shapes(count=6, seed=1):
    return ShapesDataset(count=count, height=80, width=100, seed=seed)


def iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def test_load_image_gt_on_shapes():
    dataset = shapes()
    full = TinyConfig(USE_MINI_MASK=False)
    mini = TinyConfig()
    for image_id in range(3):
        image, meta, class_ids, boxes, masks = load_image_gt(dataset, full, image_id)
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        assert class_ids.dtype == np.int32 and boxes.dtype == np.int32
        assert masks.shape == (64, 64, len(class_ids)) and masks.dtype == bool
        np.testing.assert_array_equal(boxes, extract_bboxes(masks))
        _, orig_ids = dataset.load_mask(image_id)
        assert set(class_ids) <= set(orig_ids) and len(class_ids) >= 1
        parsed = parse_image_meta(meta[None])
        assert parsed["image_id"][0] == image_id
        assert parsed["original_image_shape"][0].tolist() == [80, 100, 3]
        assert parsed["image_shape"][0].tolist() == [64, 64, 3]
        assert parsed["window"][0].tolist() == [6, 0, 57, 64]  # 80x100 -> 51x64, padded
        assert parsed["scale"][0] == pytest.approx(0.64)
        assert parsed["active_class_ids"][0].tolist() == [1, 1, 1, 1]
        image2, _, ids2, boxes2, mini_masks = load_image_gt(dataset, mini, image_id)
        np.testing.assert_array_equal(image2, image)
        np.testing.assert_array_equal(boxes2, boxes)
        assert mini_masks.shape == (28, 28, len(ids2))
        expanded = expand_mask(boxes2, mini_masks, image.shape)
        for i in range(len(ids2)):
            assert iou(expanded[..., i], masks[..., i]) > 0.85


def check_batch(inputs, config):
    spec = batch_spec(config)
    assert set(inputs) == set(INPUT_NAMES)
    for name, (shape, dtype) in spec.items():
        assert inputs[name].shape == shape, name
        assert inputs[name].dtype == dtype, name


def rpn_targets(inputs, config):
    """The training model's RPN targets for a batch: rpn_match [B, A, 1], rpn_bbox [B, R, 4]."""
    layer = RpnTargetLayer(config.RPN_TRAIN_ANCHORS_PER_IMAGE, config.RPN_BBOX_STD_DEV, seed=0)
    anchors = config_anchors(config, inputs["input_image"].shape[1:3])
    rpn_match, rpn_bbox = layer(anchors, inputs["input_gt_class_ids"], inputs["input_gt_boxes"])
    return keras.ops.convert_to_numpy(rpn_match), keras.ops.convert_to_numpy(rpn_bbox)


def test_build_batch_shapes_and_values():
    config = TinyConfig()
    dataset = shapes()
    inputs, targets = build_batch(dataset, config, [0, 1], rng=np.random.default_rng(0))
    assert targets is None
    check_batch(inputs, config)
    raw = load_image_gt(dataset, config, 0)
    np.testing.assert_allclose(inputs["input_image"][0],
                               raw[0].astype(np.float32) - config.MEAN_PIXEL)
    n = len(raw[2])
    assert inputs["input_gt_class_ids"][0, :n].tolist() == raw[2].tolist()
    assert not inputs["input_gt_class_ids"][0, n:].any()
    np.testing.assert_array_equal(inputs["input_gt_boxes"][0, :n], raw[3])
    np.testing.assert_array_equal(inputs["input_gt_masks"][0, ..., :n], raw[4])
    rpn_match, _ = rpn_targets(inputs, config)
    assert (rpn_match == 1).sum() > 0
    assert ((rpn_match != 0).sum(axis=(1, 2)) == 32).all()


class ManyShapes(ShapesDataset):
    """Image 0 has 8 separate squares; image 1 has no instances."""

    def load_mask(self, image_id):
        masks = np.zeros([80, 100, 8 if image_id == 0 else 0], bool)
        for i in range(masks.shape[2]):
            masks[8 + (i // 4) * 36: 28 + (i // 4) * 36, 4 + (i % 4) * 24: 20 + (i % 4) * 24, i] = 1
        return masks, np.arange(1, masks.shape[2] + 1, dtype=np.int32) % 3 + 1


def test_more_than_max_gt_is_truncated_and_zero_instances_ok():
    config = TinyConfig()
    dataset = ManyShapes(count=2, height=80, width=100)
    _, _, all_ids, all_boxes, _ = load_image_gt(dataset, config, 0)
    assert len(all_ids) == 8
    inputs, _ = build_batch(dataset, config, [0, 1], rng=np.random.default_rng(0))
    check_batch(inputs, config)
    boxes = inputs["input_gt_boxes"][0]
    assert (inputs["input_gt_class_ids"][0] > 0).sum() == 5
    for box in boxes:  # a subset of the original instances
        assert np.any(np.all(all_boxes == box, axis=1))
    assert inputs["input_gt_masks"][0].any(axis=(0, 1)).all()
    # Image 1: zero instances -> only negatives, padded gt.
    rpn_match, rpn_bbox = rpn_targets(inputs, config)
    assert (rpn_match[1] == 1).sum() == 0
    assert (rpn_match[1] == -1).sum() == 32
    assert not inputs["input_gt_class_ids"][1].any() and not inputs["input_gt_masks"][1].any()
    assert not rpn_bbox[1].any()


def test_sequence_shapes_determinism_and_cache():
    config = TinyConfig()
    dataset = shapes(count=5)
    seq = MaskRCNNSequence(dataset, config, seed=3)
    assert len(seq) == 3  # ceil(5 / 2)
    batch = seq[0]
    check_batch(batch, config)
    again = MaskRCNNSequence(dataset, config, seed=3)
    cached = MaskRCNNSequence(dataset, config, seed=3, cache=True)
    for i in range(len(seq)):
        a, b, c = seq[i], again[i], cached[i]
        for name in INPUT_NAMES:
            np.testing.assert_array_equal(a[name], b[name])
            np.testing.assert_array_equal(a[name], c[name])
    for name in INPUT_NAMES:  # from the cache now
        np.testing.assert_array_equal(cached[1][name], seq[1][name])
    assert len(cached._cache) == 5
    ids = [seq[i]["input_image_meta"][:, 0].tolist() for i in range(3)]
    assert sorted(set(sum(ids, []))) == [0, 1, 2, 3, 4]  # one pass + 1 wrapped image
    seq.on_epoch_end()
    ids2 = [seq[i]["input_image_meta"][:, 0].tolist() for i in range(3)]
    assert ids2 != ids  # reshuffled
    ordered = MaskRCNNSequence(dataset, config, shuffle=False, steps_per_epoch=4)
    assert len(ordered) == 4
    assert ordered[2]["input_image_meta"][:, 0].tolist() == [4, 0]


class BadShapes(ShapesDataset):
    """Image 1 returns masks of the wrong size."""

    def load_mask(self, image_id):
        masks, class_ids = super().load_mask(image_id)
        return (masks[:40] if image_id == 1 else masks), class_ids


def test_bad_sample_raises_or_is_skipped():
    config = TinyConfig()
    dataset = BadShapes(count=4, height=80, width=100, seed=2)
    seq = MaskRCNNSequence(dataset, config, shuffle=False)
    with pytest.raises(DataError, match=r"image 1 \(shapes:1 .*mask size"):
        seq[0]
    skip = MaskRCNNSequence(dataset, config, shuffle=False, on_error="skip", seed=0)
    for i in range(len(skip)):
        assert 1 not in skip[i]["input_image_meta"][:, 0]
    assert [s[0] for s in skip.skipped] == [1]
    assert skip.bad_image_ids == {1}
    with pytest.warns(UserWarning, match=r"skipped 1 bad sample.*shapes:1"):
        skip.on_epoch_end()
    assert skip.skipped == []
    skip[0]  # a known bad id is counted again without reloading
    assert len(skip.skipped) == 1
    assert load_image_gt(dataset, config, 1, on_error="skip") is None


def test_class_id_and_count_errors():
    config = TinyConfig(NUM_CLASSES=2)
    with pytest.raises(DataError, match=r"class id [23] out of range"):
        load_image_gt(shapes(count=20), config, _image_with_class(shapes(count=20), {2, 3}))

    class Mismatch(ShapesDataset):
        def load_mask(self, image_id):
            masks, class_ids = super().load_mask(image_id)
            return masks, np.append(class_ids, 1)

    with pytest.raises(DataError, match="image 0 .* one class id per mask"):
        load_image_gt(Mismatch(count=1), TinyConfig(), 0)


def _image_with_class(dataset, classes):
    return next(i for i in dataset.image_ids if set(dataset.load_mask(i)[1]) & classes)


class DictLoss(keras.layers.Layer):
    def call(self, image, gt_boxes):
        out = keras.ops.mean(image, axis=(1, 2))
        self.add_loss(keras.ops.mean(keras.ops.square(out)) * 1e-6
                      + keras.ops.mean(gt_boxes) * 0.0)
        return out


def test_fit_accepts_the_sequence():
    config = TinyConfig()
    seq = MaskRCNNSequence(shapes(count=4), config, seed=0)
    spec = batch_spec(config)
    inputs = {name: keras.Input(shape[1:], dtype=np.dtype(dtype).name, name=name)
              for name, (shape, dtype) in spec.items()}
    x = keras.layers.Conv2D(2, 3, padding="same")(inputs["input_image"])
    out = DictLoss()(x, inputs["input_gt_boxes"])
    model = keras.Model(inputs, out)
    model.compile(optimizer="sgd")
    history = model.fit(seq, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    assert seq.epoch >= 2  # keras also calls on_epoch_end when it resets


def test_make_tf_dataset():
    config = TinyConfig()
    ds = make_tf_dataset(shapes(count=3), config, seed=0)
    batches = list(ds.as_numpy_iterator())
    assert len(batches) == 2
    check_batch(batches[0], config)


class TinyVia(Dataset):
    """Minimal VIA (Matterport balloon format) reader, used if kseg.data.formats.via is missing."""

    def __init__(self, folder):
        super().__init__()
        from skimage.draw import polygon

        self._polygon = polygon
        self.add_class("via", 1, "damage")
        records = json.loads((folder / "via_region_data.json").read_text())
        for record in records.values():
            regions = record["regions"]
            regions = list(regions.values()) if isinstance(regions, dict) else regions
            if regions:
                self.add_image("via", record["filename"], str(folder / record["filename"]),
                               polygons=[r["shape_attributes"] for r in regions])
        self.prepare()

    def load_mask(self, image_id):
        info = self.image_info[image_id]
        h, w = self.image_size(image_id)
        masks = np.zeros([h, w, len(info["polygons"])], bool)
        for i, p in enumerate(info["polygons"]):
            rr, cc = self._polygon(p["all_points_y"], p["all_points_x"], shape=(h, w))
            masks[rr, cc, i] = True
        return masks, np.ones([masks.shape[2]], np.int32)


def load_car_damage(car_damage_dir):
    try:
        from kseg.data.formats.via import load_via
    except ImportError:
        return TinyVia(car_damage_dir / "train")
    return load_via(car_damage_dir, "train")


def test_load_image_gt_on_car_damage(car_damage_dir):
    dataset = load_car_damage(car_damage_dir)
    config = TinyConfig(NUM_CLASSES=dataset.num_classes, IMAGE_MIN_DIM=256, IMAGE_MAX_DIM=256)
    for image_id in (0, 1):
        image, meta, class_ids, boxes, masks = load_image_gt(dataset, config, image_id)
        assert image.shape == (256, 256, 3)
        assert len(class_ids) >= 1 and (class_ids >= 1).all()
        window = parse_image_meta(meta[None])["window"][0]
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        assert (boxes[:, :2] >= window[:2]).all() and (boxes[:, 2:] <= window[2:]).all()
        assert masks.shape == (28, 28, len(class_ids)) and masks.any(axis=(0, 1)).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inputs, _ = build_batch(dataset, config, [0, 1], rng=np.random.default_rng(0))
    assert (rpn_targets(inputs, config)[0] == 1).sum(axis=(1, 2)).min() >= 1


def flip(image, mask=None, masks=None):
    """albumentations-style horizontal flip."""
    out = {"image": image[:, ::-1]}
    if mask is not None:
        out["mask"] = mask[:, ::-1]
    if masks is not None:
        out["masks"] = [m[:, ::-1] for m in masks]
    return out


def erase(image, mask=None, masks=None):
    """albumentations-style transform that removes every instance."""
    out = {"image": image}
    if mask is not None:
        out["mask"] = np.zeros_like(mask)
    if masks is not None:
        out["masks"] = [np.zeros_like(m) for m in masks]
    return out


def test_augmentation_moves_boxes_and_drops_empty_instances():
    config = TinyConfig(USE_MINI_MASK=False)
    dataset = shapes()
    image, _, ids, boxes, masks = load_image_gt(dataset, config, 0)
    f_image, _, f_ids, f_boxes, f_masks = load_image_gt(dataset, config, 0, augmentation=flip)
    np.testing.assert_array_equal(f_image, image[:, ::-1])
    np.testing.assert_array_equal(f_ids, ids)
    np.testing.assert_array_equal(f_boxes[:, [0, 2]], boxes[:, [0, 2]])
    np.testing.assert_array_equal(f_boxes[:, [1, 3]], 64 - boxes[:, [3, 1]])
    np.testing.assert_array_equal(f_masks, masks[:, ::-1])
    _, _, e_ids, e_boxes, e_masks = load_image_gt(dataset, config, 0, augmentation=erase)
    assert e_ids.shape == (0,) and e_boxes.shape == (0, 4) and e_masks.shape == (64, 64, 0)
    seq = MaskRCNNSequence(dataset, TinyConfig(), augmentation=erase, seed=0)
    assert (rpn_targets(seq[0], TinyConfig())[0] == 1).sum() == 0
    with pytest.raises(ValueError, match="cache=True"):
        MaskRCNNSequence(dataset, TinyConfig(), augmentation=flip, cache=True)


def test_keras_augmentation_in_sequence():
    keras_flip = keras.layers.RandomFlip("horizontal", seed=1)
    config = TinyConfig()
    batch = MaskRCNNSequence(shapes(count=2), config, augmentation=keras_flip, seed=0)[0]
    check_batch(batch, config)
    assert (batch["input_gt_class_ids"] > 0).sum() >= 2


def test_build_batch_ignores_anchors_with_a_warning():
    config = TinyConfig()
    with pytest.warns(DeprecationWarning, match="RPN targets in the graph"):
        inputs, _ = build_batch(shapes(count=2), config, [0, 1], config_anchors(config),
                                rng=np.random.default_rng(0))
    plain, _ = build_batch(shapes(count=2), config, [0, 1], rng=np.random.default_rng(0))
    assert set(inputs) == set(INPUT_NAMES) and not any("rpn" in name for name in inputs)
    for name in INPUT_NAMES:
        np.testing.assert_array_equal(inputs[name], plain[name])
