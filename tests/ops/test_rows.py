"""Tests for leading_rows / pad_rows: the TF fast path against the keras.ops fallback."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from kseg.ops import leading_rows, pad_rows

TF_ONLY = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                             reason="the fast path is TensorFlow's")


def _head(weights):
    """A per-row conv head [batch, n, 5, 5, 3] -> [batch, n, 5, 5, 4]."""
    def run(x):
        shape = ops.shape(x)
        flat = ops.reshape(x, (-1, 5, 5, 3))
        out = ops.relu(ops.conv(flat, weights, padding="same"))
        return ops.reshape(out, (shape[0], shape[1], 5, 5, 4))
    return run


@TF_ONLY
@pytest.mark.parametrize("counts", [[3, 1], [0, 0], [6, 2]])
def test_fast_path_runs_on_rows_in_use_and_matches_the_fallback(counts):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 5, 5, 3)).astype("float32")
    head = _head(rng.normal(size=(3, 3, 3, 4)).astype("float32"))
    count = np.array(counts, "int32")

    @tf.function  # graph mode, as in a training step: the row count is a run-time value
    def fast(x, count):
        rows = leading_rows(x, count, use_fast_ops=True)
        return pad_rows(head(rows), 6, use_fast_ops=True), tf.shape(rows)[1]

    out, used = fast(x, count)
    reference = pad_rows(head(leading_rows(x, count, use_fast_ops=False)), 6,
                         use_fast_ops=False)
    used = int(used)
    assert used == max(1, max(counts))  # the head saw only these rows
    assert out.shape == (2, 6, 5, 5, 4)
    np.testing.assert_allclose(np.asarray(out)[:, :used], np.asarray(reference)[:, :used],
                               rtol=1e-5, atol=1e-5)
    assert not np.asarray(out)[:, used:].any()  # rows past the count are zero padding


def test_fallback_keeps_every_row_and_pads_statically():
    x = np.arange(2 * 3 * 2, dtype="float32").reshape(2, 3, 2)
    assert leading_rows(x, np.array([1, 0]), use_fast_ops=False) is x
    padded = np.asarray(pad_rows(ops.convert_to_tensor(x), 5, use_fast_ops=False))
    assert padded.shape == (2, 5, 2)
    np.testing.assert_array_equal(padded[:, :3], x)
    assert not padded[:, 3:].any()
