"""kseg.models.optimizers: one factory; weight decay applied once, to what Matterport decays."""

import keras
import numpy as np
import pytest

from kseg.config import UNetConfig
from kseg.models.mask_rcnn.config import MaskRCNNConfig
from kseg.models.optimizers import loss_weight_decay, make_optimizer


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
