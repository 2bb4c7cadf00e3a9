"""Mask R-CNN training input: ground truth per image, and batches of it.

    seq = MaskRCNNSequence(dataset, config, augmentation=aug, seed=0)
    model.fit(seq, epochs=10)   # each batch is a dict of the model's input arrays

`load_image_gt` (in `kseg.data.pipelines.ground_truth`, re-exported here) loads and molds one
image with its instances (Matterport semantics), `build_batch` turns images into the
training model's inputs: images, metas and the padded ground truth (the RPN and head
targets are computed inside the model, so there is no `y`, and no anchor matching
here), `MaskRCNNSequence`
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
from kseg.data.pipelines.ground_truth import (  # noqa: F401  (re-exported: Matterport's load_image_gt)
    ON_ERROR,
    SAMPLE_ERRORS,
    _active_class_ids,
    _augment,
    _check_on_error,
    _load_image_gt,
    _resize_masks,
    check_instances,
    finish_image_gt,
    load_image_gt,
    load_molded,
)
from kseg.data.pipelines.molding import mold_image

# `MaskRCNNSequence.molded_sample` flattened: image id, image, masks, class ids, molding.
MOLDED_DTYPES = (np.int64, np.uint8, np.bool_, np.int32, np.float64)
INPUT_NAMES = ("input_image", "input_image_meta", "input_gt_class_ids", "input_gt_boxes",
               "input_gt_masks")


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

    def epoch_image_ids(self, epoch):
        """[len(self) * BATCH_SIZE] image ids of every position of `epoch` (the tf.data
        path's order)."""
        self.set_epoch(epoch)
        return [self._image_id(p) for p in range(len(self) * self.config.BATCH_SIZE)]

    def set_epoch(self, epoch):
        """Move to `epoch` (its order), as `on_epoch_end` does one epoch at a time."""
        if epoch != self.epoch:
            self.epoch, self._orders = int(epoch), {}

    def image_inputs(self, image_id, rng):
        """One image's model inputs {name: array without the batch axis}, drawing from
        `rng` (bad samples replaced as `on_error` says)."""
        return _sample_inputs(self._load(image_id, rng), self.config, rng)

    def molded_sample(self, image_id, rng):
        """(image id, `load_molded` output): the first, parallel stage of the tf.data path
        with an augmenter (a bad sample replaced as `on_error` says)."""
        return self._load(image_id, rng, lambda i, r: (i, load_molded(self.dataset,
                                                                        self.config, i, r)))

    def finished_inputs(self, image_id, molded, rng):
        """`image_inputs` from a `molded_sample`: augment (in call order), then as there."""
        source = self.dataset.image_info[image_id]["source"]
        augmentation = None if source in self.no_augmentation_sources else self.augmentation
        sample = finish_image_gt(self.dataset, self.config, image_id, molded, augmentation, rng)
        return _sample_inputs(sample, self.config, rng)

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

    def _load(self, image_id, rng, load=None):
        """The `load_image_gt` output, replacing bad samples if skipping
        (`load(image_id, rng)` instead of `_load_one` when given)."""
        for _ in range(100):
            if image_id not in self.bad_image_ids:
                try:
                    return (load or self._load_one)(image_id, rng)
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
                    steps_per_epoch=None, cache=False, on_error="raise", prefetch=True,
                    parallel=None, input_context=None, no_augmentation_sources=None,
                    pipeline=False):
    """A `tf.data.Dataset` of Mask R-CNN training batches (input dicts as `assemble_batch`).

    One iteration is one epoch, in the order of `MaskRCNNSequence` with the same arguments
    (same images per batch); each image is loaded in a parallel `map` with a random
    generator seeded from (seed, epoch, position), so seeded runs repeat bitwise whatever
    the parallelism (see `kseg.data.pipelines.tf_pipeline`). Needs TensorFlow.

    Args:
        as `MaskRCNNSequence`, and:
        parallel: per-image calls in flight: None (AUTOTUNE) or an int. With an augmenter
            (its own random state must advance in order) images are read and resized in
            parallel, then augmented one at a time in order (`parallel` calls if given).
        input_context: a `tf.distribute.InputContext` (`distribute_datasets_from_function`):
            this pipeline's share of every global batch, in per-replica batches.
        prefetch: add `prefetch(tf.data.AUTOTUNE)`.
        pipeline: return the `TFPipeline` (its `.tf_dataset`, `batch_image_ids`, `reraise`).
    """
    from kseg.data.pipelines.tf_pipeline import AUTOTUNE, TFPipeline

    sequence = MaskRCNNSequence(dataset, config, shuffle=shuffle, augmentation=augmentation,
                                seed=seed, steps_per_epoch=steps_per_epoch, cache=cache,
                                on_error=on_error,
                                no_augmentation_sources=no_augmentation_sources)
    spec = batch_spec(config)
    auto = AUTOTUNE if parallel is None else parallel
    stages = {}
    if augmentation is not None:  # load in parallel, augment in order (stateful augmenters)
        def prepare(image_id, rng, position, epoch):
            return sequence.molded_sample(image_id, rng)

        stages = dict(prepare=(prepare, MOLDED_DTYPES),
                      finish_parallel=1 if parallel is None else parallel)

    def load(image_id, rng, position, epoch, prepared=None):
        if prepared is None:
            row = sequence.image_inputs(image_id, rng)
        else:
            row = sequence.finished_inputs(int(prepared[0]), tuple(prepared[1:]), rng)
        if set(row) != set(spec):
            raise ValueError(f"per-image inputs {sorted(row)} differ from batch_spec "
                             f"{sorted(spec)}")
        return [row[name] for name in spec]

    result = TFPipeline(sequence, load, spec, config.BATCH_SIZE, parallel=auto,
                        input_context=input_context, prefetch=prefetch, **stages)
    return result if pipeline else result.tf_dataset
