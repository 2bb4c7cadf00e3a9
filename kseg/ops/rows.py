"""Run a per-ROI head only on the rows in use: ``leading_rows`` / ``pad_rows``.

The padded ROI tensors of Mask R-CNN put the rows that matter first (sampled
positive ROIs in training, kept detections at inference) and pad the rest.
A head that is costly per row (the mask head: ~1 GFLOP per ROI) need only see
``max(count)`` rows of the batch; its output is zero-padded back to the static
size. On TensorFlow outside XLA the fast path slices to that run-time row
count; the ``keras.ops`` fallback (JAX, PyTorch, XLA) keeps every row, which
gives the same values on the rows in use (heads without trainable BatchNorm;
with batch statistics the fast path computes them over the rows in use only).

Shape shorthand::

    x      [batch, N, ...]   rows in use first
    count  [batch]           int rows in use per image
"""

from keras import ops

from kseg.ops import _tf_fast

__all__ = ["leading_rows", "pad_rows"]


def leading_rows(x, count, use_fast_ops=None):
    """``x[:, :max(count)]`` on the fast path (at least one row), else ``x``.

    Args:
        x: ``[batch, N, ...]`` with the rows in use first.
        count: ``[batch]`` int rows in use per image.
        use_fast_ops: None (auto), True or False; see ``kseg.ops._tf_fast``.

    Returns:
        ``[batch, n, ...]``: ``n = clip(max(count), 1, N)`` on the fast path, ``N`` otherwise.
    """
    if _tf_fast.should_use(use_fast_ops, xla_supported=False):
        return _tf_fast.leading_rows(x, count)
    return x


def pad_rows(x, total, use_fast_ops=None):
    """Zero-pads ``x`` ``[batch, n, ...]`` to ``[batch, total, ...]``.

    Args:
        x: ``[batch, n, ...]`` with ``n <= total``.
        total: python int, the static row count.
        use_fast_ops: None (auto), True or False; see ``kseg.ops._tf_fast``.
    """
    if _tf_fast.should_use(use_fast_ops, xla_supported=False):
        return _tf_fast.pad_rows(x, int(total))
    rows = x.shape[1]
    if rows == total:
        return x
    pad = [[0, 0], [0, int(total) - int(rows)]] + [[0, 0]] * (len(x.shape) - 2)
    return ops.pad(x, pad)
