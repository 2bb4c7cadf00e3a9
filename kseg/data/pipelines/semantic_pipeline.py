"""Semantic segmentation input: batches of (images, class maps) for FCN and U-Net.

    seq = SemanticSequence(dataset, config, shuffle=True, augmentation=aug)
    model.fit(seq, epochs=10)
    ds = make_tf_dataset(dataset, config, shuffle=True)   # tf.data, TF backend only

Each sample is loaded (`load_image`, `load_semantic_mask`), resized as
`config.IMAGE_RESIZE_MODE` says (class maps with nearest neighbour, order=0),
augmented, and batched. Pixels outside the image window (padding) get label 0,
or `config.IGNORE_INDEX` when it is set.

Shapes: images [B, S, S, 3] float32 raw 0..255 (the model normalizes), class
maps [B, S, S] int32; B = config.BATCH_SIZE, S from the config (for "none" and
"pad64" modes, each batch is padded to its largest image).
"""

import math
import warnings

import keras
import numpy as np

from kseg.data.dataset import DataError
from kseg.data.image_io import ImageReadError
from kseg.data.pipelines.augment import (
    apply_augmentation,
    apply_batch_augmentation,
    is_keras_augmentation,
)
from kseg.data.pipelines.molding import resize_image, resize_mask

SAMPLE_ERRORS = (DataError, ImageReadError, OSError)


def load_semantic_sample(dataset, config, image_id, augmentation=None, rng=None):
    """One molded sample: image [S, S, 3] uint8, class map [S, S] int32.

    Raises `DataError` naming the image id and file when the sample cannot be used.
    """
    try:
        image = dataset.load_image(image_id)
        class_map = np.asarray(dataset.load_semantic_mask(image_id)).astype(np.int32)
        dataset.check_sample(image_id, image, class_map=class_map)
        _check_labels(dataset, config, image_id, class_map)
    except DataError:
        raise
    except SAMPLE_ERRORS as e:
        raise DataError(f"image {image_id} ({dataset.image_reference(image_id)}): {e}") from e
    image, window, scale, padding, crop = resize_image(
        image, min_dim=config.IMAGE_MIN_DIM, max_dim=config.IMAGE_MAX_DIM,
        min_scale=config.IMAGE_MIN_SCALE, mode=config.IMAGE_RESIZE_MODE, rng=rng)
    class_map = resize_mask(class_map, scale, padding, crop)
    ignore = getattr(config, "IGNORE_INDEX", None)
    if ignore is not None and crop is None:
        outside = np.ones(class_map.shape, bool)
        y1, x1, y2, x2 = window
        outside[y1:y2, x1:x2] = False
        class_map[outside] = ignore
    image, _, class_map = apply_augmentation(augmentation, image, class_map=class_map, rng=rng)
    return image, class_map


def _check_labels(dataset, config, image_id, class_map):
    """DataError unless labels are in 0..NUM_CLASSES-1 (or IGNORE_INDEX)."""
    ignore = getattr(config, "IGNORE_INDEX", None)
    values = class_map if ignore is None else class_map[class_map != ignore]
    if values.size and (values.min() < 0 or values.max() >= config.NUM_CLASSES):
        bad = np.unique(values[(values < 0) | (values >= config.NUM_CLASSES)])[:8].tolist()
        raise DataError(f"image {image_id} ({dataset.image_reference(image_id)}): semantic "
                        f"mask has labels {bad}; expected 0..{config.NUM_CLASSES - 1} "
                        f"(NUM_CLASSES={config.NUM_CLASSES}) or IGNORE_INDEX={ignore}.")


def stack_batch(images, class_maps, fill_label=0):
    """Pad samples to the batch's largest size -> ([B, H, W, 3] float32, [B, H, W] int32)."""
    height = max(i.shape[0] for i in images)
    width = max(i.shape[1] for i in images)
    batch_images = np.zeros([len(images), height, width, images[0].shape[2]], np.float32)
    batch_maps = np.full([len(images), height, width], fill_label, np.int32)
    for b, (image, class_map) in enumerate(zip(images, class_maps)):
        batch_images[b, :image.shape[0], :image.shape[1]] = image
        batch_maps[b, :class_map.shape[0], :class_map.shape[1]] = class_map
    return batch_images, batch_maps


class SemanticSequence(keras.utils.PyDataset):
    """A `keras.utils.PyDataset` of (images [B, S, S, 3] float32, class maps [B, S, S] int32).

    Args:
        dataset: a prepared `kseg.data.Dataset` with `load_semantic_mask`.
        config: a `kseg.SemanticConfig` (IMAGE_RESIZE_MODE, IMAGE_MIN_DIM, IMAGE_MAX_DIM,
            BATCH_SIZE, SEED, IGNORE_INDEX).
        shuffle: reshuffle the order every epoch (seeded by SEED and the epoch).
        augmentation: see `kseg.data.pipelines.augment.apply_augmentation`. Keras layers run once
            on the whole batch (`apply_batch_augmentation`: per-image draws, one eager
            call instead of B); other augmenters run per sample.
        on_error: "raise" (DataError naming image id and file) or "skip" (replace the
            sample with the next good one, count it, warn once per epoch).
        workers, use_multiprocessing, max_queue_size: passed to `PyDataset`.
    """

    def __init__(self, dataset, config, shuffle=True, augmentation=None, on_error="raise",
                 workers=1, use_multiprocessing=False, max_queue_size=10):
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing,
                         max_queue_size=max_queue_size)
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error={on_error!r}: expected 'raise' or 'skip'.")
        if len(dataset.image_ids) == 0:
            raise DataError(f"{dataset!r} has no images; expected at least one.")
        self.dataset, self.config = dataset, config
        self.shuffle, self.augmentation, self.on_error = shuffle, augmentation, on_error
        self.batch_size = int(config.BATCH_SIZE)
        self.seed = getattr(config, "SEED", None)
        self.epoch = 0
        self.skipped = []  # image references skipped in the current epoch
        self._bad = set()
        self._warned_epoch = -1
        self.positions = None  # positions per epoch of the tf.data path (None: one pass)
        self.order = self._order(0)

    def _order(self, epoch):
        ids = np.asarray(self.dataset.image_ids)
        if not self.shuffle:
            return ids
        seed = None if self.seed is None else [int(self.seed), epoch]
        return np.random.default_rng(seed).permutation(ids)

    def __len__(self):
        return math.ceil(len(self.order) / self.batch_size)

    def batch_image_ids(self, index):
        """Image ids batch `index` of this epoch draws (before any skipped sample)."""
        start = index * self.batch_size
        return [int(i) for i in self.order[start:start + self.batch_size]]

    def epoch_image_ids(self, epoch):
        """Image ids of every position of `epoch` (the tf.data path's order): `positions`
        of them when set (wrapping around), else one pass."""
        self.set_epoch(epoch)
        total = self.positions or len(self.order)
        return [int(self.order[p % len(self.order)]) for p in range(total)]

    def set_epoch(self, epoch):
        """Move to `epoch` (its order), as `on_epoch_end` does one epoch at a time."""
        if epoch != self.epoch:
            self.epoch, self.order, self.skipped = int(epoch), self._order(epoch), []

    def sample_at(self, image_id, position, rng, augmentation):
        """The sample of `image_id` at `position` of this epoch; a bad one (on_error="skip")
        is replaced by the next good image of the order."""
        for offset in range(len(self.order)):
            sample = self._sample(image_id, rng, augmentation)
            if sample is not None:
                return sample
            image_id = int(self.order[(position + offset + 1) % len(self.order)])
        raise DataError(f"every sample of {self.dataset!r} failed; first skipped: "
                        f"{self.skipped[:3]}")

    def _rng(self, index):
        seed = None if self.seed is None else [int(self.seed), self.epoch, int(index), 1]
        return np.random.default_rng(seed)

    def __getitem__(self, index):
        """Batch `index`: (images [B, S, S, 3] float32, class maps [B, S, S] int32)."""
        if index >= len(self):
            raise IndexError(f"batch {index} out of range ({len(self)} batches)")
        rng = self._rng(index)
        batched = is_keras_augmentation(self.augmentation)
        start = index * self.batch_size
        want = min(self.batch_size, len(self.order) - start)
        images, maps = [], []
        for offset in range(len(self.order)):
            if len(images) == want:
                break
            sample = self._sample(int(self.order[(start + offset) % len(self.order)]), rng,
                                  None if batched else self.augmentation)
            if sample is not None:
                images.append(sample[0])
                maps.append(sample[1])
        if not images:
            raise DataError(f"every sample of {self.dataset!r} failed; first skipped: "
                            f"{self.skipped[:3]}")
        if index == len(self) - 1:
            self._warn_skipped()
        fill = getattr(self.config, "IGNORE_INDEX", None)
        batch = stack_batch(images, maps, 0 if fill is None else fill)
        return apply_batch_augmentation(self.augmentation, *batch) if batched else batch

    def _sample(self, image_id, rng, augmentation):
        if image_id in self._bad:
            return None
        try:
            return load_semantic_sample(self.dataset, self.config, image_id, augmentation, rng)
        except DataError:
            if self.on_error == "raise":
                raise
            self._bad.add(image_id)
            self.skipped.append(self.dataset.image_reference(image_id))
            return None

    def _warn_skipped(self):
        if self.skipped and self._warned_epoch != self.epoch:
            self._warned_epoch = self.epoch
            warnings.warn(f"epoch {self.epoch}: skipped {len(self.skipped)} bad sample(s) "
                          f"(on_error='skip'), first: {self.skipped[:3]}", stacklevel=2)

    def on_epoch_end(self):
        """Warn about skipped samples (once), then reshuffle for the next epoch."""
        self._warn_skipped()
        self.epoch += 1
        self.skipped = []
        self.order = self._order(self.epoch)


def _side(config):
    mode = config.IMAGE_RESIZE_MODE
    if mode == "square":
        return int(config.IMAGE_MAX_DIM)
    if mode == "crop":
        return int(config.IMAGE_MIN_DIM)
    return None


def make_tf_dataset(dataset, config, shuffle=True, augmentation=None, on_error="raise",
                    parallel=None, input_context=None, steps=None, drop_remainder=None,
                    prefetch=True, pipeline=False):
    """A `tf.data.Dataset` of (images, class maps) batches; one iteration is one epoch.

    The order is `SemanticSequence`'s (seeded by config.SEED and the epoch); each sample
    is loaded in a parallel `map` with a random generator seeded from (SEED, epoch,
    position), so seeded runs repeat bitwise whatever the parallelism; Keras augmentation
    layers run on whole batches after it, in order (see `kseg.data.pipelines.tf_pipeline`).

    Args:
        as `SemanticSequence`, and:
        parallel: per-sample calls in flight: None (AUTOTUNE; 1 with a per-sample augmenter
            whose own random state must advance in order) or an int.
        input_context: a `tf.distribute.InputContext`: this pipeline's share of every global
            batch, in per-replica batches.
        steps: batches per epoch (the images wrap around); default ceil(images / B).
        drop_remainder: None: only under an input context or with `steps` (then every
            batch is full, wrapping around the images); False keeps a partial last batch
            as `SemanticSequence` does.
        pipeline: return the `TFPipeline` (its `.tf_dataset`, `batch_image_ids`, `reraise`).

    Element spec: (float32 [B, S, S, C], int32 [B, S, S]); B is None with a partial last
    batch, S is None for the "none" and "pad64" modes (each batch padded to its largest).
    """
    import tensorflow as tf

    from kseg.data.pipelines.tf_pipeline import AUTOTUNE, TFPipeline

    sequence = SemanticSequence(dataset, config, shuffle=shuffle, augmentation=augmentation,
                                on_error=on_error)
    batched = is_keras_augmentation(augmentation)
    if parallel is None:
        parallel = AUTOTUNE if augmentation is None or batched else 1
    if drop_remainder is None:
        drop_remainder = input_context is not None or bool(steps)
    count, size = len(sequence.order), sequence.batch_size
    if drop_remainder:
        sequence.positions = (steps or math.ceil(count / size)) * size

    def load(image_id, rng, position, epoch):
        image, class_map = sequence.sample_at(image_id, position, rng,
                                              None if batched else augmentation)
        return image.astype(np.float32), class_map

    side, fill = _side(config), getattr(config, "IGNORE_INDEX", None)
    channels = int(getattr(config, "IMAGE_CHANNEL_COUNT", 3))
    spec = {"images": ((size, side, side, channels), np.float32),
            "class_maps": ((size, side, side), np.int32)}
    padding = (tf.constant(0, tf.float32), tf.constant(0 if fill is None else fill, tf.int32))
    batch_fn = None
    if batched:
        def batch_fn(images, class_maps):
            return apply_batch_augmentation(augmentation, images, class_maps)
    result = TFPipeline(sequence, load, spec, size, parallel=parallel,
                        input_context=input_context, padding=padding, batch_fn=batch_fn,
                        drop_remainder=drop_remainder, as_tuple=True, prefetch=prefetch)
    return result if pipeline else result.tf_dataset
