"""TensorFlow-only fast paths for ``kseg.ops`` (C++ kernels).

TensorFlow is imported lazily inside the functions, so importing this module
is free on every backend. Callers select a fast path through
:func:`should_use`; each one has a ``keras.ops`` fallback in the public
module that gives the same numbers (tested in ``tests/ops``).

Shape shorthand::

    [B, H, W, C]        images / feature map
    [R, (y1, x1, y2, x2)]  normalized crop boxes
    [batch, N, (y1, x1, y2, x2)]  NMS candidates, [batch, N] scores
    [batch, K]          padded NMS indices (K = max_output_size)

``KSEG_DISABLE_FAST_OPS=1`` in the environment turns every fast path off
unless a call passes ``use_fast_ops=True`` explicitly.
"""

import os

import keras

ENV_DISABLE = "KSEG_DISABLE_FAST_OPS"


def in_xla_context():
    """True while tracing a ``tf.function(jit_compile=True)`` (TF only)."""
    try:
        import tensorflow as tf
        from tensorflow.python.ops import control_flow_util
    except ImportError:  # pragma: no cover - TF always present on TF backend
        return False
    if tf.executing_eagerly():
        return False
    graph = tf.compat.v1.get_default_graph()
    return bool(control_flow_util.GraphOrParentsInXlaContext(graph))


def should_use(use_fast_ops=None, xla_supported=True):
    """Decides whether to take the TensorFlow fast path.

    Args:
        use_fast_ops: None (auto: on for the TF backend unless env
            ``KSEG_DISABLE_FAST_OPS`` is set to a non-empty value other than
            ``0``), True (force on; ValueError on other backends), False.
        xla_supported: False when the TF kernel has no XLA lowering; the
            fast path is then skipped while compiling with XLA.

    Returns:
        bool.
    """
    if use_fast_ops is False:
        return False
    if keras.backend.backend() != "tensorflow":
        if use_fast_ops:
            raise ValueError("use_fast_ops=True needs the tensorflow backend")
        return False
    if use_fast_ops is None and os.environ.get(ENV_DISABLE, "") not in (
            "", "0"):
        return False
    return xla_supported or not in_xla_context()


def crop_and_resize(images, boxes, box_indices, crop_size):
    """``tf.image.crop_and_resize`` (bilinear, extrapolation 0).

    Args:
        images: ``[B, H, W, C]`` float.
        boxes: ``[R, (y1, x1, y2, x2)]`` normalized.
        box_indices: ``[R]`` int image index of each box.
        crop_size: ``(crop_h, crop_w)`` python ints.

    Returns:
        ``[R, crop_h, crop_w, C]`` in ``images``' dtype.
    """
    import tensorflow as tf

    images = tf.convert_to_tensor(images)
    crops = tf.image.crop_and_resize(
        images, tf.cast(boxes, tf.float32), tf.cast(box_indices, tf.int32),
        crop_size, method="bilinear", extrapolation_value=0.0)
    return tf.cast(crops, images.dtype) if images.dtype.is_floating else crops


def non_max_suppression(boxes, scores, max_output_size, iou_threshold,
                        score_threshold):
    """Per-image ``NonMaxSuppressionV4`` (padded) mapped over the batch.

    Args:
        boxes: ``[batch, N, (y1, x1, y2, x2)]``.
        scores: ``[batch, N]``.
        max_output_size: python int ``K``.
        iou_threshold: python float.
        score_threshold: python float.

    Returns:
        ``([batch, K] int32 indices padded with 0, [batch] int32 counts)``.
    """
    import tensorflow as tf

    def one_image(args):
        idx, count = tf.raw_ops.NonMaxSuppressionV4(
            boxes=args[0], scores=args[1], max_output_size=max_output_size,
            iou_threshold=iou_threshold, score_threshold=score_threshold,
            pad_to_max_output_size=True)
        return idx, count

    boxes = tf.cast(boxes, tf.float32)
    scores = tf.cast(scores, tf.float32)
    return tf.map_fn(one_image, (boxes, scores),
                     fn_output_signature=(tf.int32, tf.int32))


def roi_align(feature_maps, boxes, levels, pool_size):
    """Matterport-style pyramid RoIAlign: per-level ``crop_and_resize``.

    Gathers the RoIs of each level with ``tf.where`` (dynamic intermediate
    shapes, hence not used under XLA), crops them with the C++ kernel and
    permutes the crops back into RoI order (every RoI has one level), so the
    output shape is static.

    Args:
        feature_maps: list P2..P5 of ``[batch, h_i, w_i, C]``.
        boxes: ``[batch, num_rois, (y1, x1, y2, x2)]`` normalized.
        levels: ``[batch, num_rois]`` int32 level of each RoI, 2..5.
        pool_size: ``(pool_h, pool_w)`` python ints.

    Returns:
        ``[batch, num_rois, pool_h, pool_w, C]`` in the maps' dtype.
    """
    import tensorflow as tf

    boxes = tf.cast(boxes, tf.float32)
    rois = tf.shape(boxes, out_type=tf.int64)[:2]
    image = tf.broadcast_to(tf.range(rois[0])[:, None], rois)
    crops, where = [], []
    for i, fmap in enumerate(feature_maps):
        ix = tf.where(tf.equal(levels, i + 2))  # [n_i, (image, roi)]
        crops.append(tf.image.crop_and_resize(
            fmap, tf.gather_nd(boxes, ix),
            tf.cast(tf.gather_nd(image, ix), tf.int32), pool_size))
        where.append(ix)
    channels = feature_maps[0].shape[-1]
    where = tf.concat(where, 0)
    order = tf.cast(where[:, 0] * rois[1] + where[:, 1], tf.int32)  # flat RoI of each crop
    pooled = _permute_rows(tf.concat(crops, 0), order)
    pooled = tf.reshape(pooled, tf.concat([rois, [pool_size[0], pool_size[1], channels]], 0))
    pooled.set_shape([*boxes.shape[:2], *pool_size, channels])
    return tf.cast(pooled, feature_maps[0].dtype)


def _permute_rows(x, order):
    """``y[order[j]] = x[j]`` for a permutation ``order`` of x's rows, as one gather both
    ways (its gradient is the inverse gather; ``scatter_nd`` and ``tf.gather``'s
    gradient would each accumulate serially on the CPU).

    Args:
        x: ``[R, ...]``; order: ``[R]`` int32, a permutation of ``0..R-1``.
    """
    import tensorflow as tf

    @tf.custom_gradient
    def permute(x):
        def grad(dy):
            return tf.gather(dy, order)
        return tf.gather(x, tf.math.invert_permutation(order)), grad

    return permute(x)


def conv3x3_by_matmul(x, kernel):
    """A 3x3, stride-1, "same" convolution as one matmul and nine shifted adds.

    ``z = x @ [k_00 | k_01 | ... | k_22]`` ([N*H*W, C] @ [C, 9 K]) computes every tap's
    contribution at once; tap (i, j) of output pixel p is z's row p + (i - 1, j - 1), so
    the output is the sum of nine shifted slices of the zero-padded z. Worth it where C is
    large against K (TF's oneDNN direct convolution runs 2048 -> 512 on 64x64 at ~200
    GFLOP/s, this at ~310). The gradient is the direct convolution's
    (``Conv2DBackpropInput`` / ``Conv2DBackpropFilter``): what TF runs for it anyway.

    Args:
        x: ``[N, H, W, C]``; kernel: ``[3, 3, C, K]``.

    Returns:
        ``[N, H, W, K]``, the convolution to float32 rounding.
    """
    import tensorflow as tf

    @tf.custom_gradient
    def conv(x, kernel):
        shape = tf.shape(x)
        n, h, w = shape[0], shape[1], shape[2]
        channels, filters = kernel.shape[2], kernel.shape[3]
        taps = tf.reshape(tf.transpose(kernel, [2, 0, 1, 3]), [channels, 9 * filters])
        z = tf.reshape(tf.matmul(tf.reshape(x, [-1, channels]), taps), [n, h, w, 9, filters])
        z = tf.pad(z, [[0, 0], [1, 1], [1, 1], [0, 0], [0, 0]])
        y = tf.add_n([z[:, i:i + h, j:j + w, 3 * i + j, :] for i in range(3) for j in range(3)])

        def grad(dy):
            strides = [1, 1, 1, 1]
            dx = tf.raw_ops.Conv2DBackpropInput(input_sizes=shape, filter=kernel,
                                                out_backprop=dy, strides=strides,
                                                padding="SAME")
            dk = tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=tf.shape(kernel),
                                                 out_backprop=dy, strides=strides,
                                                 padding="SAME")
            return dx, dk

        return y, grad

    out = conv(tf.convert_to_tensor(x), tf.convert_to_tensor(kernel))
    out.set_shape([*x.shape[:3], kernel.shape[3]])
    return out


def sum_of_squares(x):
    """``sum(x ** 2)`` of a float tensor in one pass: ``2 * tf.nn.l2_loss(x)`` (the
    ``L2Loss`` kernel; its gradient is one multiply, ``x * dy``)."""
    import tensorflow as tf

    return 2.0 * tf.nn.l2_loss(x)


def leading_rows(x, count):
    """``x[:, :max(count)]`` (at least one row): a dynamic row count.

    Args:
        x: ``[batch, N, ...]``.
        count: ``[batch]`` int, rows in use per image (the used rows come first).

    Returns:
        ``[batch, n, ...]`` with ``1 <= n <= N`` known only at run time.
    """
    import tensorflow as tf

    total = tf.shape(x)[1]
    n = tf.clip_by_value(tf.reduce_max(tf.cast(count, tf.int32)), 1, total)
    return x[:, :n]


def pad_rows(x, total):
    """Zero-pads axis 1 of ``x`` ``[batch, n, ...]`` to the static ``total`` rows."""
    import tensorflow as tf

    pad = total - tf.shape(x)[1]
    paddings = tf.concat([[[0, 0], [0, pad]],
                          tf.zeros([len(x.shape) - 2, 2], tf.int32)], axis=0)
    out = tf.pad(x, paddings)
    out.set_shape([x.shape[0], total, *x.shape[2:]])
    return out


def _conv_and_bias(x):
    """``(conv, bias [C])`` when the graph tensor ``x`` is a ``Conv2D`` output plus a
    per-channel bias (a Keras ``Conv2D`` layer with ``use_bias``: ``AddV2`` of the conv and
    the bias reshaped to ``[1, 1, 1, C]``, or ``BiasAdd``), else None (also eagerly)."""
    import tensorflow as tf

    try:
        op = x.op
    except AttributeError:  # an eager tensor
        return None
    if op.type not in ("AddV2", "Add", "BiasAdd") or len(op.inputs) != 2:
        return None
    channels = x.shape[-1]
    for conv, bias in ((op.inputs[0], op.inputs[1]), (op.inputs[1], op.inputs[0])):
        if (conv.op.type == "Conv2D" and conv.op.get_attr("data_format") == b"NHWC"
                and conv.shape == x.shape and channels is not None
                and bias.shape.rank is not None and bias.shape.num_elements() == channels
                and bias.shape[-1] == channels):
            return conv, tf.reshape(bias, [channels])
        if op.type == "BiasAdd":
            break
    return None


def batch_norm(x, gamma, beta, mean, variance, epsilon, training):
    """``FusedBatchNormV3`` over the last axis of an NHWC tensor (one kernel, and one that
    Grappler folds into the preceding convolution at inference).

    Args:
        x: ``[N, H, W, C]``; gamma, beta, mean, variance: ``[C]``.
        epsilon: python float.
        training: python bool: normalise with the batch moments (then returned, the
            variance biased, as ``keras.ops.moments`` gives it) or with mean / variance.

    Not training, a Conv2D output plus bias as ``x`` is normalised as the bare
    convolution with the bias folded into the offset (the same numbers to float32
    rounding), which lets Grappler fuse the convolution, the normalisation and a
    following ReLU into one oneDNN kernel: Matterport's ResNet convolutions all have a
    bias before their frozen BatchNorm (~70 ms of BatchNorm passes in a 512² detection).

    Returns:
        ``(y, batch_mean, batch_variance)``; the moments are None when not training.
    """
    import tensorflow as tf

    dtype = x.dtype
    x = tf.convert_to_tensor(x)
    stats_dtype = tf.float32
    gamma, beta = tf.cast(gamma, stats_dtype), tf.cast(beta, stats_dtype)
    if not training:
        mean, variance = tf.cast(mean, stats_dtype), tf.cast(variance, stats_dtype)
        conv_bias = _conv_and_bias(x)
        if conv_bias is not None:
            # BN(conv + b) = (conv - mean) * s + (beta + b * s), s = gamma / sqrt(var + eps):
            # the bias moves into the offset, so Grappler fuses conv + BN (+ ReLU) into one
            # oneDNN convolution; gradients still reach the bias through the offset.
            x, bias = conv_bias
            beta = beta + tf.cast(bias, stats_dtype) * gamma * tf.math.rsqrt(variance + epsilon)
        y, _, _ = tf.compat.v1.nn.fused_batch_norm(
            x, gamma, beta, mean, variance, epsilon=epsilon, is_training=False)
        return tf.cast(y, dtype), None, None
    y, batch_mean, batch_var = tf.compat.v1.nn.fused_batch_norm(
        x, gamma, beta, epsilon=epsilon, is_training=True)
    count = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), stats_dtype)
    batch_var = batch_var * tf.maximum(count - 1.0, 0.0) / tf.maximum(count, 1.0)  # biased
    return tf.cast(y, dtype), batch_mean, batch_var
