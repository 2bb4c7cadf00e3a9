"""kseg.models.optimizers: one factory; weight decay applied once, to what Matterport decays."""

import keras
import numpy as np
import pytest

from kseg.config import UNetConfig
from kseg.models.mask_rcnn.config import MaskRCNNConfig
from kseg.models.optimizers import (
    SGD,
    Adam,
    AdamW,
    ScaledClipping,
    loss_weight_decay,
    make_optimizer,
)


def _one_step(optimizer, lr):
    """One update with zero gradients: only decay can move the variables."""
    kernel = keras.Variable(np.full((2, 2), 2.0, "float32"), name="kernel")
    bias = keras.Variable(np.full((2,), 2.0, "float32"), name="bias")
    gamma = keras.Variable(np.full((2,), 2.0, "float32"), name="gamma")
    beta = keras.Variable(np.full((2,), 2.0, "float32"), name="beta")
    variables = [kernel, bias, gamma, beta]
    optimizer.apply_gradients([(keras.ops.zeros_like(v), v) for v in variables])
    return [np.asarray(v.numpy()).ravel()[0] for v in variables]


def test_adamw_decays_once_in_the_optimizer_not_batchnorm():
    config = MaskRCNNConfig(NUM_CLASSES=2, OPTIMIZER="adamw", WEIGHT_DECAY=0.1)
    assert loss_weight_decay(config) == 0.0  # no L2 term in the loss as well
    kernel, bias, gamma, beta = _one_step(make_optimizer(config, 0.5, l2_in_loss=True), 0.5)
    assert kernel == pytest.approx(2.0 * (1 - 0.5 * 0.1)) and bias == pytest.approx(1.9)
    assert gamma == 2.0 and beta == 2.0


def test_sgd_and_adam_leave_decay_to_the_mask_rcnn_loss():
    for name in ("sgd", "adam"):
        config = MaskRCNNConfig(NUM_CLASSES=2, OPTIMIZER=name, WEIGHT_DECAY=0.1)
        assert loss_weight_decay(config) == 0.1
        assert _one_step(make_optimizer(config, 0.5, l2_in_loss=True), 0.5) == [2.0] * 4


def test_semantic_models_decay_in_the_optimizer():
    config = UNetConfig(NUM_CLASSES=2, OPTIMIZER="sgd", WEIGHT_DECAY=0.1, LEARNING_RATE=0.5)
    optimizer = make_optimizer(config)
    assert isinstance(optimizer, keras.optimizers.SGD) and optimizer.clipnorm is None
    kernel, bias, gamma, beta = _one_step(optimizer, 0.5)
    assert kernel == pytest.approx(1.9) and bias == pytest.approx(1.9) and gamma == 2.0
    assert make_optimizer(UNetConfig(NUM_CLASSES=2)).weight_decay is None  # WEIGHT_DECAY 0


def test_kseg_train_and_mask_rcnn_share_the_factory():
    import kseg.semantic.train

    config = UNetConfig(NUM_CLASSES=2, OPTIMIZER="adamw", WEIGHT_DECAY=0.1, LEARNING_RATE=0.5)
    kernel, bias, gamma, beta = _one_step(kseg.semantic.train.make_optimizer(config), 0.5)
    assert kernel == pytest.approx(1.9) and gamma == 2.0 and beta == 2.0
    config = MaskRCNNConfig(NUM_CLASSES=2)
    optimizer = make_optimizer(config, 0.01, 0.5, l2_in_loss=True)
    assert isinstance(optimizer, keras.optimizers.SGD) and optimizer.clipnorm == 5.0
    assert float(optimizer.momentum) == 0.5


def _clipped_by_keras_and_kseg(gradients, clipnorm=5.0):
    """One SGD step (lr 1, no momentum) of each optimizer: the clipped gradients."""
    out = []
    for optimizer in (keras.optimizers.SGD(1.0, clipnorm=clipnorm),
                      SGD(1.0, clipnorm=clipnorm)):
        variables = [keras.Variable(np.zeros_like(g)) for g in gradients]
        optimizer.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in gradients],
                                      variables))
        out.append([-np.asarray(v.numpy()) for v in variables])
    return out


def test_scaled_clipping_clips_as_keras_clipnorm():
    rng = np.random.default_rng(0)
    big = rng.normal(size=(30, 40)).astype("float32")          # norm ~35: clipped to 5
    small = (0.01 * rng.normal(size=(7,))).astype("float32")   # norm < 5: unchanged
    (keras_big, keras_small), (kseg_big, kseg_small) = _clipped_by_keras_and_kseg([big, small])
    assert np.linalg.norm(kseg_big) == pytest.approx(5.0, rel=1e-5)
    np.testing.assert_allclose(kseg_big, keras_big, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(kseg_small, small)  # exactly the gradient
    np.testing.assert_allclose(keras_small, small, rtol=1e-6)
    zero = np.zeros((3,), "float32")
    assert np.isfinite(_clipped_by_keras_and_kseg([zero])[1][0]).all()


@pytest.mark.parametrize("name,kwargs", [
    ("SGD", {"momentum": 0.9}),                    # clip scale folded into the learning rate
    ("SGD", {"momentum": 0.9, "nesterov": True}),  # Keras' update on the scaled gradient
    ("Adam", {}),
])
def test_clipnorm_steps_match_keras(name, kwargs):
    """Three clipped steps with momentum: the same variables as Keras' optimizer (one
    gradient over the clip norm, one under it, every step)."""
    rng = np.random.default_rng(2)
    starts = [rng.normal(size=(30, 40)).astype("float32"), rng.normal(size=(7,)).astype("float32")]
    results = []
    for cls in (getattr(keras.optimizers, name), {"SGD": SGD, "Adam": Adam}[name]):
        optimizer = cls(0.1, clipnorm=5.0, **kwargs)
        variables = [keras.Variable(start.copy()) for start in starts]
        for step in range(3):
            step_rng = np.random.default_rng(10 + step)
            gradients = [step_rng.normal(size=(30, 40)).astype("float32"),    # norm ~35
                         0.01 * step_rng.normal(size=(7,)).astype("float32")]  # norm < 5
            optimizer.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in gradients],
                                          variables))
        results.append([np.asarray(v.numpy()) for v in variables])
    (keras_big, keras_small), (kseg_big, kseg_small) = results
    assert np.abs(kseg_big - starts[0]).max() > 0.01  # the variables moved
    np.testing.assert_allclose(kseg_big, keras_big, rtol=1e-5, atol=1e-5)
    # Adam's one-kernel update differs from Keras' formula by float32 rounding
    small_tolerance = 1e-5 if name == "Adam" else 1e-7
    np.testing.assert_allclose(kseg_small, keras_small, rtol=1e-6, atol=small_tolerance)
    # clipped: an unclipped first step of plain SGD would move the big variable by
    # 0.1 * |g| ~ 3.5 in norm; the clipped one moves it by 0.1 * 5 = 0.5
    if name == "SGD" and not kwargs.get("nesterov"):
        first = cls(0.1, clipnorm=5.0, **kwargs)
        variable = keras.Variable(starts[0].copy())
        gradient = np.random.default_rng(10).normal(size=(30, 40)).astype("float32")
        first.apply_gradients([(keras.ops.convert_to_tensor(gradient), variable)])
        moved = np.linalg.norm(np.asarray(variable.numpy()) - starts[0])
        assert moved == pytest.approx(0.5, rel=1e-5)


def test_factory_optimizers_clip_in_one_scale_and_save_by_name():
    config = MaskRCNNConfig(NUM_CLASSES=2)
    optimizer = make_optimizer(config, 0.01, 0.9, l2_in_loss=True)
    assert isinstance(optimizer, SGD) and isinstance(optimizer, ScaledClipping)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(restored) is SGD and restored.clipnorm == 5.0
    for name, cls in (("adam", Adam), ("adamw", AdamW)):
        assert type(make_optimizer(MaskRCNNConfig(NUM_CLASSES=2, OPTIMIZER=name))) is cls


def test_sgd_momentum_matches_keras_sgd():
    rng = np.random.default_rng(1)
    start = rng.normal(size=(6, 4)).astype("float32")
    results = []
    for cls in (keras.optimizers.SGD, SGD):
        optimizer = cls(0.1, momentum=0.9)
        variable = keras.Variable(start.copy())
        for step in range(3):
            gradient = np.random.default_rng(step).normal(size=(6, 4)).astype("float32")
            optimizer.apply_gradients([(keras.ops.convert_to_tensor(gradient), variable)])
        results.append(np.asarray(variable.numpy()))
    assert not np.allclose(results[1], start)
    np.testing.assert_allclose(results[1], results[0], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name,kwargs", [("Adam", {}), ("AdamW", {"weight_decay": 0.1}),
                                         ("Adam", {"amsgrad": True})])
def test_adam_and_adamw_match_keras(name, kwargs):
    start = np.random.default_rng(1).normal(size=(6, 4)).astype("float32")
    results = []
    for cls in (getattr(keras.optimizers, name), {"Adam": Adam, "AdamW": AdamW}[name]):
        optimizer = cls(0.01, **kwargs)
        variable = keras.Variable(start.copy())
        for step in range(3):
            gradient = np.random.default_rng(step).normal(size=(6, 4)).astype("float32")
            optimizer.apply_gradients([(keras.ops.convert_to_tensor(gradient), variable)])
        results.append(np.asarray(variable.numpy()))
    assert np.abs(results[1] - start).max() > 0.02
    np.testing.assert_allclose(results[1], results[0], rtol=1e-5, atol=1e-6)
