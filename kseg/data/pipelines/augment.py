"""Augmenting an image together with its masks, whatever the augmenter's library.

    aug = default_augmentation("semantic", seed=0)        # a keras.Sequential
    image, masks, class_map = apply_augmentation(aug, image, masks, class_map)
    images, class_maps = apply_batch_augmentation(aug, images, class_maps)  # Keras only

`apply_augmentation` accepts:
  * None (no change);
  * a Keras layer, a list of layers or a `keras.Sequential` of Keras 3 image
    augmentation layers: called eagerly on `{"images", "segmentation_masks"}`,
    so geometric layers move masks with nearest interpolation and color layers
    leave them alone;
  * an imgaug-style augmenter (has `to_deterministic` and `augment_image`):
    the same deterministic augmenter runs on the image and the masks, with
    hooks that keep color operations off the masks (Matterport's
    `load_image_gt` does this; imgaug itself is never imported);
  * an albumentations-style callable: `aug(image=..., mask=...)` or
    `aug(image=..., masks=[...])` returning a dict.

Shapes: image [H, W, 3] uint8, masks [H, W, N] (bool or int), class_map [H, W]
int. Outputs keep dtypes and shapes; an augmenter that changes the image or
mask shape raises `ValueError` naming it.
"""

import numpy as np

# imgaug augmenters Matterport lets touch the masks (geometric ones).
MASK_AUGMENTERS = ("Sequential", "SomeOf", "OneOf", "Sometimes", "Fliplr", "Flipud",
                   "CropAndPad", "Affine", "PiecewiseAffine")


def default_augmentation(kind="semantic", seed=None):
    """A `keras.Sequential` of flip, small rotation (semantic only), zoom, brightness, contrast.

    Args:
        kind: "semantic" or "instance" (no rotation: boxes stay tight).
        seed: int for reproducible draws, or None.
    """
    import keras

    if kind not in ("semantic", "instance"):
        raise ValueError(f"kind={kind!r}: expected 'semantic' or 'instance'.")
    layers = keras.layers

    def s(k):
        return None if seed is None else seed + k

    stack = [layers.RandomFlip("horizontal", seed=s(0))]
    if kind == "semantic":
        stack.append(layers.RandomRotation(0.03, fill_mode="constant", seed=s(1)))
    stack += [
        layers.RandomZoom((-0.15, 0.15), fill_mode="constant", seed=s(2)),
        layers.RandomBrightness(0.15, value_range=(0, 255), seed=s(3)),
        layers.RandomContrast(0.2, value_range=(0, 255), seed=s(4)),
    ]
    return keras.Sequential(stack, name=f"{kind}_augmentation")


def apply_augmentation(augmentation, image, masks=None, class_map=None, rng=None):
    """Augment an image and its masks with the same random transformation.

    Args:
        augmentation: None, Keras layer(s), imgaug-style or albumentations-style augmenter.
        image: [H, W, C] uint8 (or float).
        masks: [H, W, N] bool/int instance masks, or None.
        class_map: [H, W] int class map, or None.
        rng: `np.random.Generator`; reseeds an imgaug-style augmenter that has `reseed`.
    Returns:
        (image, masks, class_map) with the input dtypes and shapes (None stays None).
    """
    if augmentation is None:
        return image, masks, class_map
    stacked, n = _stack_masks(image, masks, class_map)
    if _is_keras(augmentation):
        out_image, out_stacked = _apply_keras(augmentation, image, stacked)
    elif hasattr(augmentation, "to_deterministic") and hasattr(augmentation, "augment_image"):
        out_image, out_stacked = _apply_imgaug(augmentation, image, stacked, rng)
    elif callable(augmentation):
        out_image, out_stacked = _apply_albumentations(augmentation, image, stacked)
    else:
        raise TypeError(f"augmentation {_name(augmentation)}: expected None, Keras layers, an "
                        f"imgaug-style augmenter or an albumentations-style callable.")
    _check_shapes(augmentation, image, out_image, stacked, out_stacked)
    return _unstack(image, out_image, masks, class_map, out_stacked, n)


def apply_batch_augmentation(augmentation, images, class_maps):
    """Augment a batch at once with Keras layers (one call, per-image random draws).

    Args:
        augmentation: Keras layer(s) (see `apply_augmentation`); anything else raises
            `TypeError` (augment those per sample).
        images: [B, H, W, C] float32 (0..255); class_maps: [B, H, W] int.
    Returns:
        images [B, H, W, C] float32, class maps [B, H, W] with the input dtype.
    """
    if augmentation is None:
        return images, class_maps
    if not _is_keras(augmentation):
        raise TypeError(f"augmentation {_name(augmentation)}: batch augmentation needs "
                        f"Keras layers; apply other augmenters per sample.")
    maps = np.asarray(class_maps)
    out_images, out_maps = _apply_keras(augmentation, np.asarray(images), maps[..., None])
    _check_shapes(augmentation, np.asarray(images), out_images, maps[..., None], out_maps)
    return np.asarray(out_images, np.float32), _like(out_maps[..., 0], maps.dtype)


def is_keras_augmentation(augmentation):
    """True for a Keras layer or a non-empty list of them (batchable augmentation)."""
    return _is_keras(augmentation)


def _name(augmentation):
    """The augmenter's name for messages: layer name, function name or class name."""
    if isinstance(augmentation, (list, tuple)):
        return "[" + ", ".join(_name(a) for a in augmentation) + "]"
    name = getattr(augmentation, "name", None) or getattr(augmentation, "__name__", None)
    return str(name or type(augmentation).__name__)


def _is_keras(augmentation):
    import keras

    if isinstance(augmentation, (list, tuple)):
        return bool(augmentation) and all(isinstance(a, keras.layers.Layer) for a in augmentation)
    return isinstance(augmentation, keras.layers.Layer)


def _stack_masks(image, masks, class_map):
    """Masks and class map as one [H, W, N + 1] int32 array (or None), and N."""
    parts = []
    n = 0
    if masks is not None:
        n = masks.shape[-1]
        parts.append(np.asarray(masks).astype(np.int32).reshape(image.shape[:2] + (n,)))
    if class_map is not None:
        parts.append(np.asarray(class_map).astype(np.int32)[..., None])
    return (np.concatenate(parts, axis=-1) if parts else None), n


def _unstack(image, out_image, masks, class_map, stacked, n):
    out_image = _like(out_image, image.dtype)
    out_masks = out_map = None
    if masks is not None:
        out_masks = _like(stacked[..., :n], masks.dtype)
    if class_map is not None:
        out_map = _like(stacked[..., n], class_map.dtype)
    return out_image, out_masks, out_map


def _like(array, dtype):
    array = np.asarray(array)
    if dtype == np.bool_:
        return array > 0.5
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.round(array), info.min, info.max).astype(dtype)
    return array.astype(dtype)


def _apply_keras(augmentation, image, stacked):
    """Eager call on {"images", "segmentation_masks"} -> numpy image and masks."""
    import keras

    layers = augmentation if isinstance(augmentation, (list, tuple)) else [augmentation]
    with_masks = stacked is not None and stacked.shape[-1] > 0
    data = {"images": np.asarray(image, np.float32)}
    if with_masks:
        data["segmentation_masks"] = stacked.astype(np.float32)
    for layer in layers:
        data = layer(dict(data) if with_masks else data["images"], training=True)
        if not isinstance(data, dict):
            data = {"images": data}
    out = keras.ops.convert_to_numpy(data["images"])
    if not with_masks:
        return out, stacked
    return out, keras.ops.convert_to_numpy(data["segmentation_masks"])


class _MaskHooks:
    """imgaug `HooksImages` look-alike: only geometric augmenters touch masks."""

    def is_activated(self, images, augmenter, parents, default=True):
        return type(augmenter).__name__ in MASK_AUGMENTERS

    def is_propagating(self, images, augmenter, parents, default=True):
        return default

    def preprocess(self, images, augmenter, parents):
        return images

    def postprocess(self, images, augmenter, parents):
        return images


def _apply_imgaug(augmentation, image, stacked, rng):
    if rng is not None and hasattr(augmentation, "reseed"):
        augmentation.reseed(int(rng.integers(0, 2**31)))
    det = augmentation.to_deterministic()
    out = det.augment_image(image)
    if stacked is None or stacked.shape[-1] == 0:
        return out, stacked
    dtype = np.uint8 if stacked.max(initial=0) < 256 and stacked.min(initial=0) >= 0 else np.int32
    masks = det.augment_image(stacked.astype(dtype), hooks=_MaskHooks())
    return out, masks


def _apply_albumentations(augmentation, image, stacked):
    if stacked is None or stacked.shape[-1] == 0:
        return augmentation(image=image)["image"], stacked
    if stacked.shape[-1] == 1:
        result = augmentation(image=image, mask=stacked[..., 0])
        return result["image"], np.asarray(result["mask"])[..., None]
    result = augmentation(image=image, masks=[stacked[..., i] for i in range(stacked.shape[-1])])
    out = result["masks"]
    out = np.stack(out, axis=-1) if isinstance(out, (list, tuple)) else np.asarray(out)
    if out.shape[0] == stacked.shape[-1] and out.shape[-1] != stacked.shape[-1]:
        out = np.moveaxis(out, 0, -1)  # albumentations 2 may return [N, H, W]
    return result["image"], out


def _check_shapes(augmentation, image, out_image, stacked, out_stacked):
    out_shape = np.shape(out_image)
    if out_shape != image.shape:
        raise ValueError(f"augmentation {_name(augmentation)} changed the image shape from "
                         f"{image.shape} to {out_shape}; expected shape-preserving augmenters "
                         f"(flips, affine, color), resize or crop after augmenting.")
    if stacked is not None and np.shape(out_stacked) != stacked.shape:
        raise ValueError(f"augmentation {_name(augmentation)} changed the mask shape from "
                         f"{stacked.shape} to {np.shape(out_stacked)}; expected the masks to "
                         f"keep their shape (masks and class map stacked on the last axis).")
