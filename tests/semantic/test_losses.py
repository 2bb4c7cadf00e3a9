"""Segmentation losses against hand-computed values."""

import keras
import numpy as np
import pytest

from kseg.semantic.losses import (
    SegmentationLoss,
    cross_entropy,
    dice_loss,
    focal_loss,
    loss_from_config,
    lovasz_hinge,
    make_loss,
)

Y_TRUE = np.array([[[0, 1], [1, 2]]], np.int32)                     # [1, 2, 2]
PROBS = np.array([[[[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]],
                   [[0.3, 0.3, 0.4], [0.2, 0.2, 0.6]]]], np.float32)  # [1, 2, 2, 3]
P_TRUE = np.array([0.7, 0.8, 0.3, 0.6])


def _np(x):
    return keras.ops.convert_to_numpy(x)


def test_cross_entropy_by_hand():
    np.testing.assert_allclose(_np(cross_entropy(Y_TRUE, PROBS)), [-np.log(P_TRUE).mean()],
                               rtol=1e-5)


def test_class_weights_and_ignore_index():
    weights = [1.0, 2.0, 0.5]
    expected = -(np.log(0.7) + 2 * np.log(0.8) + 2 * np.log(0.3) + 0.5 * np.log(0.6)) / 4
    np.testing.assert_allclose(_np(cross_entropy(Y_TRUE, PROBS, class_weights=weights)),
                               [expected], rtol=1e-5)
    ignored = -(np.log(0.7) + np.log(0.6)) / 2  # class 1 pixels ignored
    np.testing.assert_allclose(_np(cross_entropy(Y_TRUE, PROBS, ignore_index=1)), [ignored],
                               rtol=1e-5)
    y_255 = np.where(Y_TRUE == 1, 255, Y_TRUE)  # an ignore label outside the classes
    np.testing.assert_allclose(_np(cross_entropy(y_255, PROBS, ignore_index=255)), [ignored],
                               rtol=1e-5)


def test_logits_sigmoid_and_softmax_agree():
    logits = np.log(PROBS)
    np.testing.assert_allclose(_np(cross_entropy(Y_TRUE, logits, "logits")),
                               _np(cross_entropy(Y_TRUE, PROBS)), rtol=1e-5)
    y = np.array([[[0, 1], [1, 0]]], np.int32)
    p = np.array([[[[0.2], [0.9]], [[0.6], [0.4]]]], np.float32)
    two = np.concatenate([1 - p, p], axis=-1)
    for fn in (cross_entropy, focal_loss):
        np.testing.assert_allclose(_np(fn(y, p, "sigmoid")), _np(fn(y, two, "softmax")),
                                   rtol=1e-5)
        np.testing.assert_allclose(_np(fn(y, np.log(p / (1 - p)), "logits")),
                                   _np(fn(y, p, "sigmoid")), rtol=1e-4)


def test_dice_by_hand():
    onehot = np.eye(3)[Y_TRUE[0]].reshape(4, 3)
    probs = PROBS[0].reshape(4, 3)
    dice = (2 * (probs * onehot).sum(0) + 1) / (probs.sum(0) + onehot.sum(0) + 1)
    np.testing.assert_allclose(_np(dice_loss(Y_TRUE, PROBS)), [1 - dice.mean()], rtol=1e-5)
    # Binary 1-channel: foreground Dice only.
    y = np.array([[[0, 1], [1, 0]]], np.int32)
    p = np.array([[[[0.2], [0.9]], [[0.6], [0.4]]]], np.float32)
    expected = 1 - (2 * 1.5 + 1) / (2.1 + 2 + 1)
    np.testing.assert_allclose(_np(dice_loss(y, p, "sigmoid")), [expected], rtol=1e-5)


def test_dice_over_the_batch_or_per_image():
    y = np.array([[[0, 1]], [[0, 0]]], np.int32)                    # [2, 1, 2]
    p = np.array([[[[0.2], [0.9]]], [[[0.6], [0.4]]]], np.float32)  # [2, 1, 2, 1]
    batch = 1 - (2 * 0.9 + 1) / (2.1 + 1 + 1)
    np.testing.assert_allclose(_np(dice_loss(y, p, "sigmoid")), [batch, batch], rtol=1e-5)
    per_image = [1 - (2 * 0.9 + 1) / (1.1 + 1 + 1), 1 - 1 / (1.0 + 1)]
    np.testing.assert_allclose(_np(dice_loss(y, p, "sigmoid", per_image=True)), per_image,
                               rtol=1e-5)


def test_focal_reduces_to_cross_entropy_at_gamma_zero():
    np.testing.assert_allclose(_np(focal_loss(Y_TRUE, PROBS, gamma=0.0)),
                               _np(cross_entropy(Y_TRUE, PROBS)), rtol=1e-5)
    expected = -((1 - P_TRUE) ** 2 * np.log(P_TRUE)).mean()
    np.testing.assert_allclose(_np(focal_loss(Y_TRUE, PROBS, gamma=2.0)), [expected], rtol=1e-5)


def test_make_loss_sums_terms_and_round_trips():
    loss = make_loss("ce+dice")
    total = float(_np(loss(Y_TRUE, PROBS)))
    parts = float(_np(cross_entropy(Y_TRUE, PROBS))[0] + _np(dice_loss(Y_TRUE, PROBS))[0])
    assert total == pytest.approx(parts, rel=1e-5)
    restored = keras.losses.deserialize(keras.losses.serialize(
        make_loss("focal+dice", activation="sigmoid", class_weights=[1, 3], ignore_index=255)))
    assert isinstance(restored, SegmentationLoss)
    assert restored.terms == ("focal", "dice") and restored.class_weights == [1.0, 3.0]
    assert restored.ignore_index == 255 and restored.activation == "sigmoid"
    with pytest.raises(ValueError, match="unknown loss"):
        make_loss("ce+lovasz")


def test_loss_from_config():
    from kseg.config import UNetConfig

    config = UNetConfig(NUM_CLASSES=2, LOSS="ce+dice", OUTPUT_ACTIVATION="sigmoid",
                        CLASS_WEIGHTS=[1.0, 4.0])
    loss = loss_from_config(config)
    assert loss.terms == ("ce", "dice") and loss.class_weights == [1.0, 4.0]


def _jaccard_case(seed=0, size=(2, 6, 5)):
    """(labels, logits): hinge errors exactly 0 (right, margin 1) or 1 (logit 0, wrong)."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(size) < 0.4).astype(np.int32)
    labels[1] = 0  # an image without foreground
    wrong = rng.random(size) < 0.3
    logits = np.where(wrong, 0.0, 2.0 * labels - 1.0).astype(np.float32)
    return labels, logits, wrong


def test_lovasz_hinge_is_one_minus_iou_on_binary_errors():
    labels, logits, wrong = _jaccard_case()
    predicted = (logits > 0) | (wrong & (labels == 0))  # a logit-0 mistake predicts the wrong class
    expected = []
    for gt, pred in zip(labels.astype(bool), predicted):
        union = (gt | pred).sum()
        expected.append(1.0 - (gt & pred).sum() / union if union else 0.0)
    got = _np(lovasz_hinge(labels, logits[..., None], activation="logits", per_image=True))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert 0.2 < got[0] < 1.0 and got[1] > 0  # the empty image pays for its false positives
    gt, pred = labels.astype(bool), predicted
    pooled = 1.0 - (gt & pred).sum() / (gt | pred).sum()  # the batch value: pixels pooled
    batch = _np(lovasz_hinge(labels, logits[..., None], activation="logits"))
    np.testing.assert_allclose(batch, [pooled, pooled], rtol=1e-5)


def test_lovasz_hinge_ignores_pixels_and_trains():
    labels, logits, _ = _jaccard_case(seed=1)
    base = _np(lovasz_hinge(labels, logits[..., None], activation="logits", per_image=True))
    padded_labels = np.concatenate([labels, np.full((2, 6, 3), 255, np.int32)], axis=2)
    padded_logits = np.concatenate([logits, np.full((2, 6, 3), 5.0, np.float32)], axis=2)
    ignored = _np(lovasz_hinge(padded_labels, padded_logits[..., None], activation="logits",
                               ignore_index=255, per_image=True))
    np.testing.assert_allclose(ignored, base, rtol=1e-5)
    loss = make_loss("ce+lovasz_hinge", activation="sigmoid")
    probs = keras.ops.sigmoid(logits[..., None])
    total = float(_np(loss(labels, probs)))
    parts = _np(cross_entropy(labels, probs, activation="sigmoid")) + _np(
        lovasz_hinge(labels, probs, activation="sigmoid"))
    assert total == pytest.approx(float(parts.mean()), rel=1e-4)
    with pytest.raises(ValueError, match="binary output"):
        lovasz_hinge(Y_TRUE, PROBS, activation="softmax")


def test_lovasz_hinge_gradient_lowers_the_loss():
    tf = pytest.importorskip("tensorflow")
    labels, _, _ = _jaccard_case(seed=2)
    logits = keras.Variable(np.zeros(labels.shape + (1,), np.float32))
    optimizer = keras.optimizers.SGD(20.0)  # per-pixel gradients are ~1 / union size
    losses = []
    for _ in range(10):
        with tf.GradientTape() as tape:
            per_image = lovasz_hinge(labels, logits, activation="logits", per_image=True)
            value = keras.ops.mean(per_image)
        optimizer.apply_gradients([(tape.gradient(value, logits), logits)])
        losses.append(_np(per_image))
    # The image with foreground learns its mask; the empty one (loss = its largest hinge
    # error, so one pixel moves per step) must not get worse.
    assert losses[0][0] == pytest.approx(1.0) and losses[-1][0] < 0.1, losses
    assert losses[-1][1] <= losses[0][1] + 1e-6, losses


def test_lovasz_hinge_compiles_in_a_model_with_an_unknown_batch_size():
    labels, _, _ = _jaccard_case(seed=3, size=(4, 8, 8))
    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same",
                                                    activation="sigmoid")(inputs))
    model.compile(optimizer=keras.optimizers.Adam(0.05),
                  loss=make_loss("ce+lovasz_hinge", activation="sigmoid"))
    images = labels[..., None].astype(np.float32) * 2.0 - 1.0  # the answer is in the input

    class Batches(keras.utils.PyDataset):  # as SemanticSequence: the batch size is unknown
        def __len__(self):
            return 2

        def __getitem__(self, index):
            return images[2 * index:2 * index + 2], labels[2 * index:2 * index + 2]

    history = model.fit(Batches(), epochs=8, verbose=0)
    assert history.history["loss"][-1] < 0.7 * history.history["loss"][0], history.history
