"""Molding inside a TensorFlow graph: `kseg.data.pipelines.molding.resize_image` in `tf` ops.

Used by the exported SavedModels so a server can feed raw uint8 images of any size.
The arithmetic mirrors the NumPy version: the scale is computed in float64 with
Python's round-half-to-even (`tf.round`), the image is resized as skimage's
`resize(order=1, mode="constant", clip=True)` (`resize_bilinear`), truncated to
integers (as the NumPy cast to uint8), and padded with zeros: centred to IMAGE_MAX_DIM square ("square"), or to
a multiple of 64 ("pad64"), or not at all ("none").

Shape shorthand:
    images [B, H, W, 3] uint8 (one size per batch); molded [B, h, w, 3] float32 0..255.
    window [4] int32 (y1, x1, y2, x2): the resized image inside the molded one.
"""

import tensorflow as tf

SUPPORTED_MODES = ("square", "pad64", "none")


def check_resize_mode(config):
    """Raise ValueError for an IMAGE_RESIZE_MODE the in-graph molding cannot do."""
    mode = config.IMAGE_RESIZE_MODE
    if mode == "crop":
        return "pad64"
    if mode not in SUPPORTED_MODES:
        raise ValueError(f"cannot export IMAGE_RESIZE_MODE={mode!r}; expected one of "
                         f"{', '.join(SUPPORTED_MODES)} (or crop, served as pad64)")
    return mode


def resize_scale(height, width, config, mode):
    """The float64 scale `resize_image` picks for an image of `height` x `width` (scalars)."""
    h = tf.cast(height, tf.float64)
    w = tf.cast(width, tf.float64)
    scale = tf.constant(1.0, tf.float64)
    if mode == "none":
        return scale
    if config.IMAGE_MIN_DIM:
        scale = tf.maximum(scale, float(config.IMAGE_MIN_DIM) / tf.minimum(h, w))
    if config.IMAGE_MIN_SCALE:
        scale = tf.maximum(scale, float(config.IMAGE_MIN_SCALE))
    if config.IMAGE_MAX_DIM and mode == "square":
        image_max = tf.maximum(h, w)
        too_big = tf.round(image_max * scale) > float(config.IMAGE_MAX_DIM)
        scale = tf.where(too_big, float(config.IMAGE_MAX_DIM) / image_max, scale)
    return scale


def _border_weights(length, out_length):
    """[out_length] weight of the real pixels in each bilinear sample along one axis.

    Output index i samples (i + 0.5) * length / out_length - 0.5; a sample c beyond
    the border lies between the edge pixel and a zero: its weight is 1 - distance.
    """
    length = tf.cast(length, tf.float32)
    coords = (tf.cast(tf.range(out_length), tf.float32) + 0.5) * (
        length / tf.cast(out_length, tf.float32)) - 0.5
    outside = tf.maximum(-coords, coords - (length - 1))
    return 1.0 - tf.clip_by_value(outside, 0.0, 1.0)


def resize_bilinear(images, size):
    """skimage's `resize(order=1, mode="constant", cval=0, clip=True)` for a batch.

    `tf.image.resize` (half-pixel centres) repeats the edge where skimage blends
    with zeros, which only matters for samples beyond the border when upscaling: those
    are scaled by the real pixels' weight. The result is clipped to each image's
    [min, max], as skimage does.

    Args:
        images: [B, h, w, C] float32; size: [2] int32 (H, W).
    Returns:
        [B, H, W, C] float32.
    """
    shape = tf.shape(images)
    out = tf.image.resize(images, size)
    weights = (_border_weights(shape[1], size[0])[:, None]
               * _border_weights(shape[2], size[1])[None, :])
    out = out * weights[None, :, :, None]
    low = tf.reduce_min(images, axis=[1, 2, 3], keepdims=True)
    high = tf.reduce_max(images, axis=[1, 2, 3], keepdims=True)
    return tf.clip_by_value(out, low, high)


def _padding(new_h, new_w, config, mode):
    """[(top, bottom), (left, right)] int32 zero padding after resizing."""
    if mode == "square":
        side = int(config.IMAGE_MAX_DIM)
        top, left = (side - new_h) // 2, (side - new_w) // 2
        return [[top, side - new_h - top], [left, side - new_w - left]]
    if mode == "pad64":
        pad_h, pad_w = (64 - new_h % 64) % 64, (64 - new_w % 64) % 64
        return [[pad_h // 2, pad_h - pad_h // 2], [pad_w // 2, pad_w - pad_w // 2]]
    zero = tf.constant(0, tf.int32)
    return [[zero, zero], [zero, zero]]


def mold_images(images, config):
    """Resize and pad a batch as `resize_image` does with the config's IMAGE_RESIZE_MODE.

    Args:
        images: [B, H, W, 3] uint8 (or any real dtype holding 0..255).
        config: a kseg `Config`.
    Returns:
        molded [B, h, w, 3] float32 with integer values 0..255, window [4] int32,
        scale float32 scalar.
    """
    mode = check_resize_mode(config)
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    scale = resize_scale(height, width, config, mode)
    new_h = tf.cast(tf.round(tf.cast(height, tf.float64) * scale), tf.int32)
    new_w = tf.cast(tf.round(tf.cast(width, tf.float64) * scale), tf.int32)
    resized = tf.cast(images, tf.float32)
    resized = tf.cond(
        tf.equal(scale, 1.0), lambda: resized,
        lambda: tf.floor(resize_bilinear(resized, tf.stack([new_h, new_w]))))
    (top, bottom), (left, right) = _padding(new_h, new_w, config, mode)
    molded = tf.pad(resized, [[0, 0], [top, bottom], [left, right], [0, 0]])
    if mode == "square":
        side = int(config.IMAGE_MAX_DIM)
        molded = tf.ensure_shape(molded, [None, side, side, images.shape[-1]])
    window = tf.stack([top, left, top + new_h, left + new_w])
    return molded, window, tf.cast(scale, tf.float32)


def image_meta(images, molded, window, scale, num_classes):
    """`compose_image_meta` for a batch: [B, 12 + num_classes] float32 (image id 0, every
    class active)."""
    batch = tf.shape(images)[0]
    original = tf.cast(tf.shape(images)[1:4], tf.float32)
    molded_shape = tf.cast(tf.shape(molded)[1:4], tf.float32)
    row = tf.concat([[0.0], original, molded_shape, tf.cast(window, tf.float32), [scale],
                     tf.ones([num_classes], tf.float32)], axis=0)
    return tf.tile(row[None], [batch, 1])


def decode_images(image_bytes, channels=3):
    """Encoded JPEG / PNG / BMP / GIF strings (scalar or [B]) -> [B, H, W, channels] uint8.

    All images of one call must decode to the same size.
    """
    flat = tf.reshape(image_bytes, [-1])
    return tf.map_fn(
        lambda data: tf.io.decode_image(data, channels=channels, expand_animations=False),
        flat, fn_output_signature=tf.TensorSpec([None, None, channels], tf.uint8))
