"""kseg's one optimizer factory (FCN, U-Net and Mask R-CNN).

    optimizer = make_optimizer(config)                        # FCN / U-Net
    optimizer = make_optimizer(config, 1e-3, 0.9, l2_in_loss=True)   # Mask R-CNN

Weight decay (WEIGHT_DECAY) is applied once, to the variables Matterport decays: every
trainable variable except BatchNorm's gamma and beta (biases included).
- AdamW: decoupled decay inside the optimizer.
- SGD / Adam with `l2_in_loss=True` (Mask R-CNN, Matterport's recipe): no decay in the
  optimizer; the model adds `WEIGHT_DECAY * sum(w ** 2) / size(w)` over those variables
  to its loss (`loss_weight_decay` says how much).
- SGD / Adam otherwise (FCN / U-Net): Keras' decoupled decay in the optimizer.
"""

import keras

OPTIMIZERS = ("sgd", "adam", "adamw")
# Substrings of the variable names that are never decayed (BatchNorm scale and offset).
NOT_DECAYED = ("gamma", "beta")


def is_decayed(variable):
    """True for the variables weight decay applies to (not BatchNorm gamma / beta)."""
    name = getattr(variable, "path", None) or variable.name
    return not any(part in name for part in NOT_DECAYED)


def loss_weight_decay(config, l2_in_loss=True):
    """The L2 coefficient a model adds to its loss: WEIGHT_DECAY, or 0 when the optimizer
    decays (AdamW, or `l2_in_loss=False`)."""
    if not l2_in_loss or config.OPTIMIZER == "adamw":
        return 0.0
    return float(config.WEIGHT_DECAY or 0.0)


def make_optimizer(config, learning_rate=None, momentum=None, l2_in_loss=False):
    """A Keras optimizer for OPTIMIZER ("sgd" with LEARNING_MOMENTUM, "adam", "adamw"),
    LEARNING_RATE, GRADIENT_CLIP_NORM and WEIGHT_DECAY (see the module docstring).

    Args:
        learning_rate, momentum: override LEARNING_RATE / LEARNING_MOMENTUM.
        l2_in_loss: the model adds the L2 term to its loss for SGD / Adam, so the
            optimizer must not decay as well.
    """
    name = config.OPTIMIZER
    if name not in OPTIMIZERS:
        raise ValueError(f"OPTIMIZER = {name!r}; expected one of {', '.join(OPTIMIZERS)}")
    lr = config.LEARNING_RATE if learning_rate is None else learning_rate
    decay = float(config.WEIGHT_DECAY or 0.0)
    if l2_in_loss and name != "adamw":
        decay = 0.0
    kwargs = {"learning_rate": lr, "weight_decay": decay or None}
    if config.GRADIENT_CLIP_NORM:
        kwargs["clipnorm"] = float(config.GRADIENT_CLIP_NORM)
    if name == "sgd":
        momentum = config.LEARNING_MOMENTUM if momentum is None else momentum
        optimizer = keras.optimizers.SGD(momentum=momentum, **kwargs)
    elif name == "adam":
        optimizer = keras.optimizers.Adam(**kwargs)
    else:
        optimizer = keras.optimizers.AdamW(**{**kwargs, "weight_decay": decay})
    if decay:
        optimizer.exclude_from_weight_decay(var_names=list(NOT_DECAYED))
    return optimizer


__all__ = ["NOT_DECAYED", "is_decayed", "loss_weight_decay", "make_optimizer"]
