"""Ground truth of one image for Mask R-CNN: load, validate, mold, augment (Matterport's
`load_image_gt`).

    image, image_meta, class_ids, boxes, masks = load_image_gt(dataset, config, image_id)

Shape shorthand: S: molded image side (config.IMAGE_SHAPE[:2]); N: instances of the image;
META: config.IMAGE_META_SIZE; (h, w): config.MINI_MASK_SHAPE with USE_MINI_MASK, else S.
`kseg.data.pipelines.maskrcnn_pipeline` re-exports these names (Matterport ports import them there).
"""

import numpy as np

from kseg.data.dataset import DataError
from kseg.data.image_io import ImageReadError
from kseg.data.pipelines.molding import (
    compose_image_meta,
    extract_bboxes,
    minimize_mask,
    resize_image,
    resize_mask,
)

ON_ERROR = ("raise", "skip")
# Errors that make a sample unusable; on_error="skip" skips them.
SAMPLE_ERRORS = (DataError, ImageReadError)


def load_image_gt(dataset, config, image_id, augmentation=None, rng=None, on_error="raise",
                  augment=False, use_mini_mask=None):
    """Load one image with its instances, molded to the config's input size.

    Matterport semantics: resize (IMAGE_RESIZE_MODE, IMAGE_MIN_DIM, IMAGE_MAX_DIM,
    IMAGE_MIN_SCALE), resize the masks the same way, augment (see
    `kseg.data.pipelines.augment.apply_augmentation`), drop instances whose mask became empty,
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
    molded = load_molded(dataset, config, image_id, rng)
    return finish_image_gt(dataset, config, image_id, molded, augmentation, rng, augment,
                           use_mini_mask)


def load_molded(dataset, config, image_id, rng=None):
    """The first half of `load_image_gt`: read, check, resize (no augmentation).

    Returns:
        image [S, S, 3] uint8, masks [S, S, N] bool, class_ids [N] int32, molding [8]
        float64: original (height, width, channels), window (y1, x1, y2, x2), scale.
    """
    image = dataset.load_image(image_id)
    masks, class_ids = dataset.load_mask(image_id)
    masks, class_ids = check_instances(dataset, config, image_id, image, masks, class_ids)
    original_shape = image.shape
    image, window, scale, padding, crop = resize_image(
        image, min_dim=config.IMAGE_MIN_DIM, max_dim=config.IMAGE_MAX_DIM,
        min_scale=config.IMAGE_MIN_SCALE, mode=config.IMAGE_RESIZE_MODE, rng=rng)
    masks = _resize_masks(masks, scale, padding, crop)
    molding = np.array([*original_shape, *window, scale], np.float64)
    return image, masks, class_ids, molding


def finish_image_gt(dataset, config, image_id, molded, augmentation=None, rng=None,
                    augment=False, use_mini_mask=None):
    """The second half of `load_image_gt` on a `load_molded` output: augment, drop the
    instances that vanished, boxes, mini masks, image meta (Returns: as `load_image_gt`)."""
    image, masks, class_ids, molding = molded
    if augment and (rng or np.random.default_rng()).integers(0, 2):  # Matterport's flip
        image, masks = np.fliplr(image).copy(), np.fliplr(masks).copy()
    if augmentation is not None:
        image, masks = _augment(augmentation, image, masks, rng)
    keep = masks.any(axis=(0, 1))  # instances that survived resizing and augmentation
    masks, class_ids, boxes = masks[..., keep], class_ids[keep], extract_bboxes(masks[..., keep])
    if config.USE_MINI_MASK if use_mini_mask is None else use_mini_mask:
        masks = minimize_mask(boxes, masks, config.MINI_MASK_SHAPE)
    original_shape = tuple(int(v) for v in molding[:3])
    window = tuple(int(v) for v in molding[3:7])
    meta = compose_image_meta(image_id, original_shape, image.shape, window, float(molding[7]),
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
    from kseg.data.pipelines.augment import apply_augmentation

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


def _check_on_error(on_error):
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error={on_error!r}; expected one of {', '.join(ON_ERROR)}.")
