"""Mask R-CNN training input: ground truth per image, and batches of it.

    seq = MaskRCNNSequence(dataset, config, augmentation=aug, seed=0)
    model.fit(seq, epochs=10)   # each batch is a dict of the model's input arrays

`load_image_gt` loads and molds one image with its instances (Matterport
semantics), `build_batch` turns images into the training model's inputs: images,
metas and the padded ground truth (the RPN and head targets are computed inside the
model, so there is no `y`, and no anchor matching here), `MaskRCNNSequence`
is a `keras.utils.PyDataset` of such batches, and `make_tf_dataset` wraps it in a
`tf.data.Dataset`.

Shape shorthand:
    B: config.BATCH_SIZE; S: molded image side (config.IMAGE_SHAPE[:2]);
    G: config.MAX_GT_INSTANCES;
    N: instances of one image; META: config.IMAGE_META_SIZE;
    (h, w): config.MINI_MASK_SHAPE with USE_MINI_MASK, else S.
"""

import math
import warnings

import keras
import numpy as np

from kseg.data.dataset import DataError
from kseg.data.image_io import ImageReadError
from kseg.data.molding import (
    compose_image_meta,
    extract_bboxes,
    minimize_mask,
    mold_image,
    resize_image,
    resize_mask,
)

INPUT_NAMES = ("input_image", "input_image_meta", "input_gt_class_ids", "input_gt_boxes",
               "input_gt_masks")
ON_ERROR = ("raise", "skip")
# Errors that make a sample unusable; on_error="skip" skips them.
SAMPLE_ERRORS = (DataError, ImageReadError)


# === One image ===
def load_image_gt(dataset, config, image_id, augmentation=None, rng=None, on_error="raise",
                  augment=False, use_mini_mask=None):
    """Load one image with its instances, molded to the config's input size.

    Matterport semantics: resize (IMAGE_RESIZE_MODE, IMAGE_MIN_DIM, IMAGE_MAX_DIM,
    IMAGE_MIN_SCALE), resize the masks the same way, augment (see
    `kseg.data.augment.apply_augmentation`), drop instances whose mask became empty,
    boxes from the masks, mini masks with USE_MINI_MASK. Images without instances
    are valid (N = 0).

    Args:
        augmentation: None, Keras layers, an imgaug-style augmenter or albumentations.
        rng: `np.random.Generator` for "crop" mode and augmentation.
        on_error: "raise" raises `DataError` for a bad sample (mask size != image size,
            masks / class_ids count mismatch, class id out of range, unreadable image);
            "skip" returns None instead.
        augment, use_mini_mask: Matterport's keywords: flip left-right with probability 1/2;
            None: config.USE_MINI_MASK, False: full-size masks (Matterport's eval loop).

    Returns:
        image [S, S, 3] uint8, image_meta [META] float32, class_ids [N] int32,
        boxes [N, (y1, x1, y2, x2)] int32 pixels of the molded image,
        masks [h, w, N] bool (mini masks) or [S, S, N] bool.
    """
    _check_on_error(on_error)
    try:
        return _load_image_gt(dataset, config, image_id, augmentation, rng, augment, use_mini_mask)
    except SAMPLE_ERRORS:
        if on_error == "raise":
            raise
        return None


def _load_image_gt(dataset, config, image_id, augmentation, rng, augment, use_mini_mask):
    image = dataset.load_image(image_id)
    masks, class_ids = dataset.load_mask(image_id)
    masks, class_ids = check_instances(dataset, config, image_id, image, masks, class_ids)
    original_shape = image.shape
    image, window, scale, padding, crop = resize_image(
        image, min_dim=config.IMAGE_MIN_DIM, max_dim=config.IMAGE_MAX_DIM,
        min_scale=config.IMAGE_MIN_SCALE, mode=config.IMAGE_RESIZE_MODE, rng=rng)
    masks = _resize_masks(masks, scale, padding, crop)
    if augment and (rng or np.random.default_rng()).integers(0, 2):  # Matterport's flip
        image, masks = np.fliplr(image).copy(), np.fliplr(masks).copy()
    if augmentation is not None:
        image, masks = _augment(augmentation, image, masks, rng)
    keep = masks.any(axis=(0, 1))  # instances that survived resizing and augmentation
    masks, class_ids, boxes = masks[..., keep], class_ids[keep], extract_bboxes(masks[..., keep])
    if config.USE_MINI_MASK if use_mini_mask is None else use_mini_mask:
        masks = minimize_mask(boxes, masks, config.MINI_MASK_SHAPE)
    meta = compose_image_meta(image_id, original_shape, image.shape, window, scale,
                              _active_class_ids(dataset, config, image_id))
    return image, meta, class_ids, boxes, masks


def check_instances(dataset, config, image_id, image, masks, class_ids):
    """Validate `load_mask` output; returns masks [H, W, N] bool, class_ids [N] int32.

    Raises `DataError` naming the image id and `dataset.image_reference(image_id)`.
    Class ids must be in 1..NUM_CLASSES-1 (negative: crowd, as in COCO).
    """
    ref = f"image {image_id} ({dataset.image_reference(image_id)})"
    if image.ndim != 3 or image.shape[2] != config.IMAGE_CHANNEL_COUNT:
        raise DataError(f"{ref}: image shape {image.shape}; expected [H, W, "
                        f"{config.IMAGE_CHANNEL_COUNT}] (IMAGE_CHANNEL_COUNT).")
    masks = np.asarray(masks)
    class_ids = np.asarray(class_ids).reshape(-1).astype(np.int32)
    if masks.ndim != 3:
        raise DataError(f"{ref}: load_mask returned masks of shape {masks.shape}; "
                        f"expected [H, W, N].")
    dataset.check_sample(image_id, image, masks=masks)
    if masks.shape[2] != len(class_ids):
        raise DataError(f"{ref}: load_mask returned {masks.shape[2]} masks but "
                        f"{len(class_ids)} class ids; expected one class id per mask.")
    bad = (class_ids == 0) | (np.abs(class_ids) >= config.NUM_CLASSES)
    if bad.any():
        raise DataError(f"{ref}: class id {int(class_ids[bad][0])} out of range; expected "
                        f"1..{config.NUM_CLASSES - 1} (NUM_CLASSES={config.NUM_CLASSES}; "
                        f"negative ids mark crowd regions).")
    return masks.astype(bool, copy=False), class_ids


def _resize_masks(masks, scale, padding, crop):
    """`resize_mask`, also for zero instances ([H, W, 0] -> [h, w, 0])."""
    if masks.shape[2] == 0:
        return resize_mask(np.zeros(masks.shape[:2] + (1,), bool), scale, padding, crop)[..., :0]
    return resize_mask(masks, scale, padding, crop)


def _augment(augmentation, image, masks, rng):
    """Augment the molded image and its masks together; the shape must not change."""
    from kseg.data.augment import apply_augmentation

    shape = image.shape
    image, masks, _ = apply_augmentation(augmentation, image, masks=masks, rng=rng)
    image = np.asarray(image)
    if image.shape != shape or masks.shape[:2] != shape[:2]:
        raise ValueError(f"augmentation changed the image shape from {shape} to {image.shape}; "
                         f"Mask R-CNN needs shape-preserving augmentations (resizing is done "
                         f"by IMAGE_RESIZE_MODE).")
    return image.astype(np.uint8, copy=False), np.asarray(masks).astype(bool, copy=False)


def _active_class_ids(dataset, config, image_id):
    """[NUM_CLASSES] int32: 1 for the classes of the image's source (all if unknown)."""
    active = np.zeros([config.NUM_CLASSES], dtype=np.int32)
    source = dataset.image_info[image_id].get("source")
    ids = getattr(dataset, "source_class_ids", {}).get(source)
    if ids is None:
        active[:] = 1
    else:
        active[[i for i in ids if i < config.NUM_CLASSES]] = 1
    return active


# === Batches ===
def build_batch(dataset, config, image_ids, anchors=None, augmentation=None, rng=None):
    """Training inputs of the Mask R-CNN model for `image_ids`.

    Args:
        anchors: ignored (the model computes the RPN targets from its own anchors);
            kept for callers that pass it, with a DeprecationWarning.
        rng: `np.random.Generator` for augmentation and the MAX_GT_INSTANCES subset.

    Returns:
        (inputs, None), inputs as in `assemble_batch`.
    """
    if anchors is not None:
        warnings.warn("build_batch(anchors=...) is ignored: the Mask R-CNN training model "
                      "computes its RPN targets in the graph.", DeprecationWarning,
                      stacklevel=2)
    rng = np.random.default_rng() if rng is None else rng
    samples = [load_image_gt(dataset, config, i, augmentation, rng) for i in image_ids]
    return assemble_batch(samples, config, rng), None


def assemble_batch(samples, config, rng=None):
    """Stack `load_image_gt` outputs into the model's input dict.

    When an image has more than MAX_GT_INSTANCES instances, a random subset of
    MAX_GT_INSTANCES is kept (in their original order); the model's RPN targets
    use that subset.

    Args:
        samples: list of `load_image_gt` outputs (B of them).

    Returns:
        dict: input_image [B, S, S, 3] float32 (mold_image), input_image_meta
        [B, META] float32, input_gt_class_ids [B, G] int32 (0-padded), input_gt_boxes
        [B, G, 4] float32 pixels (0-padded), input_gt_masks [B, h, w, G] bool.
    """
    rng = np.random.default_rng() if rng is None else rng
    rows = [_sample_inputs(s, config, rng) for s in samples]
    shapes = {row["input_image"].shape for row in rows}
    if len(shapes) > 1:
        raise ValueError(f"images of different molded shapes {sorted(shapes)} in one batch; "
                         f"use IMAGE_RESIZE_MODE='square' or IMAGES_PER_GPU=1.")
    return {name: np.stack([row[name] for row in rows]) for name in INPUT_NAMES}


def _sample_inputs(sample, config, rng):
    """One image's model inputs (unbatched) from a `load_image_gt` output."""
    image, meta, class_ids, boxes, masks = sample
    limit = config.MAX_GT_INSTANCES
    if len(class_ids) > limit:
        keep = np.sort(rng.choice(len(class_ids), size=limit, replace=False))
        class_ids, boxes, masks = class_ids[keep], boxes[keep], masks[..., keep]
    n = len(class_ids)
    gt_class_ids = np.zeros([limit], np.int32)
    gt_class_ids[:n] = class_ids
    gt_boxes = np.zeros([limit, 4], np.float32)
    gt_boxes[:n] = boxes
    gt_masks = np.zeros(masks.shape[:2] + (limit,), bool)
    gt_masks[..., :n] = masks
    return {"input_image": mold_image(image, config), "input_image_meta": meta,
            "input_gt_class_ids": gt_class_ids, "input_gt_boxes": gt_boxes,
            "input_gt_masks": gt_masks}


def batch_spec(config):
    """{input name: (shape, numpy dtype)} of a batch; None marks a variable size
    ("pad64" / "none" modes have variable image sizes)."""
    fixed = config.IMAGE_RESIZE_MODE in ("square", "crop")
    side = tuple(int(v) for v in config.IMAGE_SHAPE[:2]) if fixed else (None, None)
    mask_hw = tuple(config.MINI_MASK_SHAPE) if config.USE_MINI_MASK else side
    b, g = config.BATCH_SIZE, config.MAX_GT_INSTANCES
    return {
        "input_image": ((b, *side, config.IMAGE_CHANNEL_COUNT), np.float32),
        "input_image_meta": ((b, config.IMAGE_META_SIZE), np.float32),
        "input_gt_class_ids": ((b, g), np.int32),
        "input_gt_boxes": ((b, g, 4), np.float32),
        "input_gt_masks": ((b, *mask_hw, g), np.bool_),
    }


def _check_on_error(on_error):
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error={on_error!r}; expected one of {', '.join(ON_ERROR)}.")


# === Keras PyDataset ===
class MaskRCNNSequence(keras.utils.PyDataset):
    """Batches of Mask R-CNN training inputs for `model.fit(seq)`.

    `seq[i]` is the input dict of `assemble_batch` (no targets: the training model
    computes its losses itself). Batch i of an epoch uses its own random generator
    seeded from (seed, epoch, i), so batches are reproducible with a seed whatever
    the worker order. Epochs go through the (shuffled) images in order and wrap around
    to fill the last batch or extra steps.

    Args:
        dataset: a prepared `kseg.Dataset` with instance masks.
        config: a `MaskRCNNConfig`.
        shuffle: reshuffle the image order every epoch.
        augmentation: passed to `load_image_gt`, not for sources in no_augmentation_sources.
        seed: base seed; None uses config.SEED, then a random one.
        steps_per_epoch: batches per epoch; default ceil(len(dataset) / BATCH_SIZE).
        cache: keep every image's `load_image_gt` output in memory (needs
            augmentation=None and a resize mode other than "crop"); the model still
            redraws its RPN and ROI sampling every step.
        workers, use_multiprocessing, max_queue_size: `keras.utils.PyDataset` options
            (with multiprocessing, caches and skip counts are per worker process).
        on_error: "raise" (a bad sample raises `DataError` naming the image) or "skip"
            (it is replaced by another random image, counted in `skipped`, and a
            warning with the count and the first file names is given at each epoch end).
    """

    def __init__(self, dataset, config, shuffle=True, augmentation=None, seed=None,
                 steps_per_epoch=None, cache=False, workers=1, use_multiprocessing=False,
                 max_queue_size=10, on_error="raise", no_augmentation_sources=None):
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing,
                         max_queue_size=max_queue_size)
        _check_on_error(on_error)
        _check_sequence_args(dataset, config, augmentation, cache)
        self.dataset, self.config = dataset, config
        self.shuffle, self.augmentation, self.on_error = shuffle, augmentation, on_error
        self.no_augmentation_sources = set(no_augmentation_sources or ())
        self.cache = cache
        self.image_ids = np.asarray(dataset.image_ids)
        self.steps_per_epoch = steps_per_epoch
        seed = config.SEED if seed is None else seed
        self.seed = int(np.random.SeedSequence().entropy if seed is None else seed)
        self.epoch = 0
        self.skipped = []  # (image_id, reference, message) skipped this epoch
        self.bad_image_ids = set()
        self._cache = {}
        self._orders = {}

    def __len__(self):
        if self.steps_per_epoch:
            return int(self.steps_per_epoch)
        return math.ceil(len(self.image_ids) / self.config.BATCH_SIZE)

    def __getitem__(self, index):
        """Batch `index` of the current epoch: the `assemble_batch` dict."""
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range (len {len(self)})")
        rng = np.random.default_rng([self.seed, self.epoch, index])
        batch = self.config.BATCH_SIZE
        ids = [self._image_id(index * batch + k) for k in range(batch)]
        samples = [self._load(image_id, rng) for image_id in ids]
        return assemble_batch(samples, self.config, rng)

    def batch_image_ids(self, index):
        """Image ids batch `index` of this epoch draws (before any bad-sample replacement)."""
        batch = self.config.BATCH_SIZE
        return [self._image_id(index * batch + k) for k in range(batch)]

    def on_epoch_end(self):
        """Warn about skipped samples, then move to the next epoch (new order)."""
        if self.skipped:
            names = ", ".join(ref for _, ref, _ in self.skipped[:3])
            warnings.warn(
                f"MaskRCNNSequence epoch {self.epoch}: skipped {len(self.skipped)} bad "
                f"sample(s) ({len(self.bad_image_ids)} distinct images so far), e.g. {names}. "
                f"First error: {self.skipped[0][2]}", stacklevel=2)
        self.skipped = []
        self.epoch += 1
        self._orders = {}

    def _image_id(self, position):
        """The image id at `position` of this epoch (wrapping into further passes)."""
        n = len(self.image_ids)
        lap, offset = divmod(position, n)
        order = self._orders.get(lap)
        if order is None:
            order = self.image_ids
            if self.shuffle:
                order = np.random.default_rng([self.seed, self.epoch, lap, n]).permutation(order)
            self._orders[lap] = order
        return int(order[offset])

    def _load(self, image_id, rng):
        """The `load_image_gt` output, replacing bad samples if skipping."""
        for _ in range(100):
            if image_id not in self.bad_image_ids:
                try:
                    return self._load_one(image_id, rng)
                except SAMPLE_ERRORS as error:
                    if self.on_error == "raise":
                        raise
                    self.bad_image_ids.add(image_id)
                    message = str(error)
            else:
                message = "known bad sample"
            self.skipped.append((image_id, self.dataset.image_reference(image_id), message))
            image_id = self._replacement(rng)
        raise DataError(f"100 bad samples in a row (last: {self.skipped[-1][1]}); "
                        f"check the dataset.")

    def _replacement(self, rng):
        good = np.setdiff1d(self.image_ids, list(self.bad_image_ids))
        if len(good) == 0:
            raise DataError(f"all {len(self.image_ids)} images are bad samples, e.g. "
                            f"{self.skipped[0][1]}: {self.skipped[0][2]}")
        return int(rng.choice(good))

    def _load_one(self, image_id, rng):
        cached = self._cache.get(image_id)
        if cached is not None:
            return cached
        source = self.dataset.image_info[image_id]["source"]
        augmentation = None if source in self.no_augmentation_sources else self.augmentation
        sample = load_image_gt(self.dataset, self.config, image_id, augmentation, rng)
        if self.cache:
            self._cache[image_id] = sample
        return sample


def _check_sequence_args(dataset, config, augmentation, cache):
    if len(dataset.image_ids) == 0:
        raise ValueError("the dataset has no images (did you call dataset.prepare()?).")
    num_classes = getattr(dataset, "num_classes", None)
    if num_classes is not None and num_classes > config.NUM_CLASSES:
        raise ValueError(f"the dataset has {num_classes} classes (background included) but "
                         f"config.NUM_CLASSES = {config.NUM_CLASSES}; set NUM_CLASSES = "
                         f"{num_classes}.")
    if cache and (augmentation is not None or config.IMAGE_RESIZE_MODE == "crop"):
        raise ValueError("cache=True stores fixed samples: it needs augmentation=None and "
                         "IMAGE_RESIZE_MODE other than 'crop'.")


# === tf.data ===
def make_tf_dataset(dataset, config, shuffle=True, augmentation=None, seed=None,
                    steps_per_epoch=None, cache=False, on_error="raise", prefetch=True):
    """A `tf.data.Dataset` of the `MaskRCNNSequence` batches (input dicts).

    Each iteration over the dataset is one epoch; the order is reshuffled between
    epochs. Needs TensorFlow (imported here). Arguments as `MaskRCNNSequence`;
    `prefetch` adds `prefetch(tf.data.AUTOTUNE)`.
    """
    import tensorflow as tf

    sequence = MaskRCNNSequence(dataset, config, shuffle=shuffle, augmentation=augmentation,
                                seed=seed, steps_per_epoch=steps_per_epoch, cache=cache,
                                on_error=on_error)

    def generator():
        for index in range(len(sequence)):
            yield sequence[index]
        sequence.on_epoch_end()

    spec = batch_spec(config)
    signature = {name: tf.TensorSpec(shape, tf.as_dtype(dtype), name=name)
                 for name, (shape, dtype) in spec.items()}
    ds = tf.data.Dataset.from_generator(generator, output_signature=signature)
    return ds.prefetch(tf.data.AUTOTUNE) if prefetch else ds
