"""Molding images for the network and back: resizing, padding, image meta, masks.

Matterport's `utils.resize_image` / `resize_mask` / `minimize_mask` / `expand_mask`
/ `extract_bboxes` / `compose_image_meta` semantics, in NumPy (used by the input
pipeline and by `detect`).

Shape shorthand:
    window: (y1, x1, y2, x2) of the real image inside the molded image, pixels.
    masks: [H, W, N] bool; boxes: [N, (y1, x1, y2, x2)], y2/x2 exclusive.
"""

import functools

import numpy as np
import skimage.transform


def resize(image, output_shape, order=1, preserve_range=True, anti_aliasing=False):
    """`skimage.transform.resize` keeping the dtype range (uint8 stays 0..255)."""
    out = skimage.transform.resize(
        image, output_shape, order=order, mode="constant", cval=0, clip=True,
        preserve_range=preserve_range, anti_aliasing=anti_aliasing)
    return out


def resize_image(image, min_dim=None, max_dim=None, min_scale=None, mode="square", rng=None):
    """Resize and pad an image as the config's IMAGE_RESIZE_MODE says.

    Pixel-for-pixel Matterport's `utils.resize_image` (skimage bilinear resize with
    preserve_range, cast back to the input dtype, i.e. truncated), so weights trained
    with its molding see the same inputs. "crop" draws its offset from `rng`.

    Returns:
        image [h, w, 3] uint8, window (y1, x1, y2, x2), scale, padding
        [(top, bottom), (left, right), (0, 0)], crop (y, x, h, w) or None.
    """
    image_dtype = image.dtype
    h, w = image.shape[:2]
    window = (0, 0, h, w)
    scale = 1.0
    padding = [(0, 0), (0, 0), (0, 0)]
    crop = None
    if mode == "none":
        return image, window, scale, padding, crop
    if min_dim:
        scale = max(1.0, min_dim / min(h, w))
    if min_scale and scale < min_scale:
        scale = min_scale
    if max_dim and mode == "square":
        image_max = max(h, w)
        if round(image_max * scale) > max_dim:
            scale = max_dim / image_max
    if scale != 1:  # Matterport's arithmetic: the float result is truncated, not rounded
        new_shape = (round(h * scale), round(w * scale))
        image = resize(image, new_shape).astype(image_dtype)
    h, w = image.shape[:2]
    if mode == "square":
        top = (max_dim - h) // 2
        left = (max_dim - w) // 2
        padding = [(top, max_dim - h - top), (left, max_dim - w - left), (0, 0)]
        image = np.pad(image, padding, mode="constant", constant_values=0)
        window = (top, left, h + top, w + left)
    elif mode == "pad64":
        padding = [_pad64(h), _pad64(w), (0, 0)]
        image = np.pad(image, padding, mode="constant", constant_values=0)
        window = (padding[0][0], padding[1][0], h + padding[0][0], w + padding[1][0])
    elif mode == "crop":
        rng = rng if rng is not None else np.random.default_rng()
        y = int(rng.integers(0, h - min_dim + 1))
        x = int(rng.integers(0, w - min_dim + 1))
        crop = (y, x, min_dim, min_dim)
        image = image[y:y + min_dim, x:x + min_dim]
        window = (0, 0, min_dim, min_dim)
    else:
        raise ValueError(f"IMAGE_RESIZE_MODE {mode!r} is not one of square, pad64, crop, none")
    return image.astype(image_dtype), window, scale, padding, crop


def _pad64(length):
    total = (64 - length % 64) % 64
    return (total // 2, total - total // 2)


def resize_mask(mask, scale, padding, crop=None, order=0):
    """Resize masks [H, W, N] (or a class map [H, W]) with the scale and padding of the image."""
    squeeze = mask.ndim == 2
    if squeeze:
        mask = mask[..., None]
    dtype = mask.dtype
    if scale != 1:
        h, w = mask.shape[:2]
        new_shape = (round(h * scale), round(w * scale), mask.shape[2])
        if mask.shape[2] == 0:
            mask = np.zeros(new_shape, dtype)
        elif np.issubdtype(dtype, np.bool_):
            mask = resize(mask.astype(np.float32), new_shape, order=1) >= 0.5
        else:
            mask = resize(mask, new_shape, order=order).round().astype(dtype)
    if crop is not None:
        y, x, h, w = crop
        mask = mask[y:y + h, x:x + w]
    else:
        mask = np.pad(mask, padding[:2] + [(0, 0)], mode="constant", constant_values=0)
    return mask[..., 0] if squeeze else mask


def extract_bboxes(mask):
    """Boxes [N, (y1, x1, y2, x2)] int32 of masks [H, W, N]; y2, x2 exclusive; empty -> 0s."""
    boxes = np.zeros([mask.shape[-1], 4], dtype=np.int32)
    for i in range(mask.shape[-1]):
        rows = np.where(np.any(mask[:, :, i], axis=1))[0]
        cols = np.where(np.any(mask[:, :, i], axis=0))[0]
        if rows.size:
            boxes[i] = [rows[0], cols[0], rows[-1] + 1, cols[-1] + 1]
    return boxes


def minimize_mask(bbox, mask, mini_shape):
    """Crop each mask [H, W, N] to its box and resize to mini_shape -> [h, w, N] bool."""
    mini = np.zeros(tuple(mini_shape) + (mask.shape[-1],), dtype=bool)
    for i in range(mask.shape[-1]):
        y1, x1, y2, x2 = bbox[i][:4]
        crop = mask[y1:y2, x1:x2, i].astype(np.float32)
        if crop.size == 0:
            continue
        mini[:, :, i] = resize(crop, mini_shape, order=1) >= 0.5
    return mini


def expand_mask(bbox, mini_mask, image_shape):
    """Inverse of `minimize_mask`: mini masks [h, w, N] -> full masks [H, W, N] bool."""
    mask = np.zeros(tuple(image_shape[:2]) + (mini_mask.shape[-1],), dtype=bool)
    for i in range(mask.shape[-1]):
        y1, x1, y2, x2 = bbox[i][:4]
        if y2 <= y1 or x2 <= x1:
            continue
        m = resize(mini_mask[:, :, i].astype(np.float32), (y2 - y1, x2 - x1), order=1)
        mask[y1:y2, x1:x2, i] = m >= 0.5
    return mask


def unmold_mask(mask, bbox, image_shape, threshold=0.5, out=None):
    """A predicted mask [mh, mw] float in box `bbox` -> full-image bool mask [H, W].

    `out`: an all-False bool [H, W] array to paste into (returned), else a new one.

    The mask is resized as Matterport's (`skimage.transform.resize`, order 1, constant
    mode, clipped to the mask's range), computed as `Wy @ mask @ Wx.T` with the same
    interpolation weights (`interpolation_weights`): identical pixels, ~10x faster.
    """
    y1, x1, y2, x2 = (int(v) for v in bbox)
    full = np.zeros(image_shape[:2], dtype=bool) if out is None else out
    if y2 <= y1 or x2 <= x1:
        return full
    mask = np.asarray(mask, np.float32)
    m = interpolation_weights(mask.shape[0], y2 - y1) @ mask.astype(np.float64) \
        @ interpolation_weights(mask.shape[1], x2 - x1).T
    m = np.clip(m, mask.min(), mask.max()).astype(np.float32)
    ys, xs = slice(max(y1, 0), min(y2, image_shape[0])), slice(max(x1, 0), min(x2, image_shape[1]))
    full[ys, xs] = (m >= threshold)[ys.start - y1:ys.stop - y1, xs.start - x1:xs.stop - x1]
    return full


def norm_boxes(boxes, shape):
    """Pixel boxes [N, (y1, x1, y2, x2)] (y2, x2 exclusive) -> normalized float32 boxes in
    an image of `shape` (H, W): (y1 / (H - 1), x1 / (W - 1), (y2 - 1) / (H - 1), ...).
    Matterport's `utils.norm_boxes`."""
    h, w = shape[:2]
    scale = np.array([h - 1, w - 1, h - 1, w - 1])
    shift = np.array([0, 0, 1, 1])
    return np.divide(np.asarray(boxes) - shift, scale).astype(np.float32)


def denorm_boxes(boxes, shape):
    """Inverse of `norm_boxes`: normalized boxes -> int32 pixels, rounded half to even
    (Matterport's `utils.denorm_boxes`)."""
    h, w = shape[:2]
    scale = np.array([h - 1, w - 1, h - 1, w - 1])
    shift = np.array([0, 0, 1, 1])
    return np.around(np.multiply(boxes, scale) + shift).astype(np.int32)


@functools.lru_cache(maxsize=4096)
def interpolation_weights(source, target):
    """[target, source] weights of `resize`'s order-1 interpolation along one axis.

    scikit-image samples source coordinate `(i + 0.5) * source / target - 0.5` for
    output pixel `i` (pixel edges aligned) and reads 0 outside the input ("constant").
    """
    coords = (np.arange(target) + 0.5) * (source / target) - 0.5
    low = np.floor(coords).astype(np.int64)
    frac = coords - low
    weights = np.zeros((target, source))
    rows = np.arange(target)
    for index, weight in ((low, 1.0 - frac), (low + 1, frac)):
        inside = (index >= 0) & (index < source)
        np.add.at(weights, (rows[inside], index[inside]), weight[inside])
    weights.setflags(write=False)
    return weights


def mold_image(images, config):
    """uint8 RGB -> float32 with the config's MEAN_PIXEL subtracted."""
    return images.astype(np.float32) - config.MEAN_PIXEL


def unmold_image(normalized_images, config):
    return (normalized_images + config.MEAN_PIXEL).clip(0, 255).astype(np.uint8)


def compose_image_meta(image_id, original_image_shape, image_shape, window, scale,
                       active_class_ids):
    """Pack image attributes into one float32 vector (Matterport's layout)."""
    return np.array(
        [image_id] + list(original_image_shape) + list(image_shape) + list(window)
        + [scale] + list(active_class_ids), dtype=np.float32)


def parse_image_meta(meta):
    """Unpack `compose_image_meta` vectors [batch, meta_size] into a dict of arrays."""
    meta = np.asarray(meta)
    return {
        "image_id": meta[:, 0].astype(np.int32),
        "original_image_shape": meta[:, 1:4].astype(np.int32),
        "image_shape": meta[:, 4:7].astype(np.int32),
        "window": meta[:, 7:11].astype(np.int32),
        "scale": meta[:, 11].astype(np.float32),
        "active_class_ids": meta[:, 12:].astype(np.int32),
    }
