"""The mask loss from logits: Matterport's value where probabilities are not saturated,
finite and exact where they are; the class-channel gather gives take_along_axis's numbers;
the training model's "mrcnn_mask" layer outputs each ROI's true-class logits with the
inference model's weights."""

import keras
import numpy as np
import pytest
from helpers import TinyConfig
from keras import ops

from kseg.data import ShapesDataset
from kseg.data.pipelines.maskrcnn_pipeline import build_batch
from kseg.models.mask_rcnn import losses
from kseg.models.mask_rcnn.heads import TrueClassMaskLogits
from kseg.models.mask_rcnn.model import MaskRCNN
from kseg.models.mask_rcnn.training import five_losses

TF_ONLY = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                             reason="gradients taken with tf.GradientTape")


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z.astype(np.float64)))


def _case(seed=0, scale=3.0):
    """target [1, 3, 4, 4], class ids [1, 4] (ROI 2 negative, the 4th id beyond M), logits."""
    rng = np.random.default_rng(seed)
    target = (rng.random((1, 3, 4, 4)) > 0.5).astype(np.float32)
    class_ids = np.array([[2, 1, 0, 3]], np.int32)
    logits = rng.normal(0, scale, (1, 3, 4, 4, 3)).astype(np.float32)
    return target, class_ids, logits


def _matterport_by_hand(target, class_ids, probs):
    """Matterport's mrcnn_mask_loss_graph in plain NumPy (float64): the positive ROIs'
    true-class masks, probabilities clipped at 1e-7, BCE averaged over their pixels."""
    values = []
    for image in range(target.shape[0]):
        for roi in range(target.shape[1]):
            c = class_ids[image, roi]
            if c > 0:
                p = np.clip(probs[image, roi, :, :, c], 1e-7, 1 - 1e-7)
                t = target[image, roi]
                values.append(-(t * np.log(p) + (1 - t) * np.log(1 - p)))
    return float(np.mean(values))


def test_mask_loss_from_logits_equals_matterport_where_not_saturated():
    target, class_ids, logits = _case()
    expected = _matterport_by_hand(target, class_ids, _sigmoid(logits))
    from_logits = float(_np(losses.mrcnn_mask_loss(target, class_ids, logits, from_logits=True)))
    from_probs = float(_np(losses.mrcnn_mask_loss(
        target, class_ids, _sigmoid(logits).astype(np.float32))))
    assert expected > 0.1  # a real loss, not a degenerate 0
    assert from_logits == pytest.approx(expected, rel=1e-5)
    assert from_probs == pytest.approx(expected, rel=1e-5)


@TF_ONLY
def test_saturated_logits_give_exact_loss_and_gradient_where_probabilities_clip():
    import tensorflow as tf

    # one positive ROI, 2x2 mask: logits +30 on background pixels, -30 on foreground
    # pixels (confidently wrong), and +30 on a foreground pixel (confidently right)
    target = np.array([[[[0, 0], [1, 1]]]], np.float32)
    z = np.array([[[30, 30], [-30, 30]]], np.float32)
    logits = np.zeros((1, 1, 2, 2, 2), np.float32)
    logits[0, 0, :, :, 1] = z
    class_ids = np.array([[1]], np.int32)
    # BCE from logits: max(z, 0) - z t + ln(1 + e^-|z|): 30, 30, 30, ~0 (9.4e-14)
    expected = (30 + 30 + 30 + np.log1p(np.exp(-30.0))) / 4
    # d/dz = (sigmoid(z) - t) / 4 pixels: 1/4, 1/4, -1/4, ~0 on the true channel only
    expected_grad = np.zeros_like(logits)
    expected_grad[0, 0, :, :, 1] = (_sigmoid(z) - target[0, 0]) / 4

    def loss_and_grad(pred, from_logits):
        pred = tf.constant(pred)
        with tf.GradientTape() as tape:
            tape.watch(pred)
            loss = losses.mrcnn_mask_loss(target, class_ids, pred, from_logits=from_logits)
        return float(loss), tape.gradient(loss, pred).numpy()

    loss, grad = loss_and_grad(logits, True)
    assert np.isfinite(loss) and loss == pytest.approx(expected, rel=1e-6)
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad, expected_grad, atol=1e-7)
    # the probability version: sigmoid(+-30) is 1.0 / 9e-14 in float32; clipped at 1e-7,
    # each wrong pixel costs -ln(1e-7) ~ 16 instead of 30, and no gradient flows
    prob_loss, prob_grad = loss_and_grad(_sigmoid(logits).astype(np.float32), False)
    assert prob_loss < 17 and prob_loss == pytest.approx(3 * 15.94 / 4, rel=1e-2)
    assert not prob_grad[0, 0, :, :, 1].any()


def test_true_class_channel_gives_take_along_axis_numbers():
    rng = np.random.default_rng(1)
    pred = rng.normal(size=(2, 5, 3, 4, 7)).astype(np.float32)
    class_ids = rng.integers(0, 7, (2, 5)).astype(np.int32)
    picked = _np(losses.true_class_channel(pred, class_ids))
    reference = np.take_along_axis(pred, class_ids[:, :, None, None, None], axis=4)[..., 0]
    assert picked.shape == (2, 5, 3, 4)
    np.testing.assert_array_equal(picked, reference)


@TF_ONLY
def test_true_class_channel_gradient_is_take_along_axis_gradient():
    import tensorflow as tf

    rng = np.random.default_rng(2)
    pred = tf.constant(rng.normal(size=(2, 4, 3, 3, 5)).astype(np.float32))
    class_ids = rng.integers(0, 5, (2, 4)).astype(np.int32)
    weights = tf.constant(rng.normal(size=(2, 4, 3, 3)).astype(np.float32))

    def grad(pick):
        with tf.GradientTape() as tape:
            tape.watch(pred)
            value = tf.reduce_sum(pick() * weights)
        return tf.convert_to_tensor(tape.gradient(value, pred)).numpy()

    ours = grad(lambda: losses.true_class_channel(pred, class_ids))
    theirs = grad(lambda: ops.take_along_axis(pred, class_ids[:, :, None, None, None],
                                              axis=4)[..., 0])
    np.testing.assert_array_equal(ours, theirs)
    assert np.count_nonzero(ours) == 2 * 4 * 3 * 3  # one channel per ROI pixel


def test_true_class_mask_logits_are_the_full_convolutions_class_channel():
    rng = np.random.default_rng(0)
    conv = keras.layers.Conv2D(5, 1)
    layer = TrueClassMaskLogits(conv)
    features = rng.normal(size=(2, 3, 4, 4, 6)).astype("float32")
    class_ids = np.array([[2, 4, 0, 1], [3, 3, 1, 0]], np.int32)  # [batch, T > R]
    layer([features, class_ids])  # builds the convolution
    conv.bias.assign(rng.normal(size=(5,)).astype("float32"))
    got = _np(layer([features, class_ids]))
    assert got.shape == (2, 3, 4, 4)
    full = _np(conv(features.reshape(-1, 4, 4, 6))).reshape(2, 3, 4, 4, 5)
    for b in range(2):
        for r in range(3):
            np.testing.assert_allclose(got[b, r], full[b, r, ..., class_ids[b, r]],
                                       rtol=1e-5, atol=1e-6)


def test_training_model_outputs_true_class_mask_logits_of_the_inference_weights(tmp_path):
    config = TinyConfig(TRAIN_BN=False)
    keras.utils.set_random_seed(0)
    train = MaskRCNN("training", config, model_dir=str(tmp_path)).keras_model
    infer = MaskRCNN("inference", TinyConfig(IMAGES_PER_GPU=2), str(tmp_path)).keras_model
    assert isinstance(train.get_layer("mrcnn_mask"), TrueClassMaskLogits)
    assert infer.get_layer("mrcnn_mask").layer.activation is keras.activations.sigmoid
    assert [w.shape for w in train.get_layer("mrcnn_mask").weights] == \
        [w.shape for w in infer.get_layer("mrcnn_mask").weights]
    batch, _ = build_batch(ShapesDataset(2, 64, 64, seed=3), config, [0, 1],
                           rng=np.random.default_rng(0))
    batch = {k: ops.convert_to_tensor(v) for k, v in batch.items()}
    out = train(batch, training=False)
    assert "mrcnn_mask" not in out and "mrcnn_mask_logits" not in out
    logits = _np(out["mrcnn_mask_true_logits"])
    assert logits.shape == (2, *_np(out["target_mask"]).shape[1:])
    ids = _np(out["target_class_ids"])[:, :logits.shape[1]]
    assert (ids > 0).any() and (logits[ids > 0] < 0).any() and (logits[ids > 0] > 0).any()
    from_logits = float(_np(five_losses(batch, out)["mrcnn_mask_loss"]))
    # the same loss from per-class probabilities (Matterport's formula, five_losses'
    # fallback for training models saved before): each ROI's class channel holds its mask
    per_class = np.zeros((*logits.shape, config.NUM_CLASSES), np.float32)
    for b, r in np.ndindex(*ids.shape):
        per_class[b, r, ..., ids[b, r]] = _sigmoid(logits[b, r])
    probs = {**{k: v for k, v in out.items() if k != "mrcnn_mask_true_logits"},
             "mrcnn_mask": per_class}
    fallback = float(_np(five_losses(batch, probs)["mrcnn_mask_loss"]))
    by_hand = _matterport_by_hand(_np(out["target_mask"]), ids, per_class)
    assert fallback == pytest.approx(by_hand, rel=1e-5)
    assert from_logits == pytest.approx(by_hand, rel=1e-5)
