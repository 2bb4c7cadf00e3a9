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

GRADIENT_CLIP_NORM clips each gradient to that norm, as Keras' `clipnorm` (and
Matterport's): `g * clip / max(norm, clip)`. Keras' TF optimizer runs `tf.clip_by_norm`,
three passes over every gradient; kseg's `ScaledClipping` computes the norm in one pass
(`kseg.ops.norms`) and multiplies once, and kseg's `SGD` does not multiply at all: the
scale goes into the learning rate of the one-kernel momentum update
(`lr * scale * g`). Over Mask R-CNN's 45M parameters on 2 CPU cores: Keras' clipping
and momentum ~90 + 25 ms a step, kseg's SGD ~35 ms for both (bench/RESULTS.md).
"""

import keras
from keras import ops

from kseg.ops.norms import sum_of_squares
from kseg.ops.updates import adam_update, momentum_update

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


def clip_scale(gradient, clipnorm):
    """The scalar `min(1, clipnorm / norm(gradient))` that clips `gradient` to `clipnorm`:
    exactly 1 where the norm is at most `clipnorm` (clip / clip), in the gradient's dtype."""
    norm = ops.sqrt(ops.cast(sum_of_squares(gradient), "float32"))
    clip = ops.cast(clipnorm, norm.dtype)
    return ops.cast(clip / ops.maximum(norm, clip), gradient.dtype)


class ScaledClipping:
    """Optimizer mixin: `clipnorm` as one scale per gradient, `g * min(1, clip / norm)`.

    The same clipped gradients as Keras' (within a float32 rounding; unclipped ones are
    returned exactly, where Keras' `g * clip / clip` may move the last bit).
    """

    def _clip_by_norm(self, values, axes=None):
        if axes is not None:
            return super()._clip_by_norm(values, axes)
        return values * clip_scale(values, self.clipnorm)


@keras.saving.register_keras_serializable(package="kseg")
class SGD(ScaledClipping, keras.optimizers.SGD):
    """`keras.optimizers.SGD` with its momentum update in one pass over each variable
    where the backend has a kernel (`kseg.ops.updates`), and `clipnorm` applied in that
    update: each gradient's clip scale multiplies the learning rate (`lr * scale`)
    instead of the gradient, which saves a pass over it. The clipping is per gradient,
    so doing it in `update_step` clips the same gradients Keras would (after the sum
    over replicas and the loss-scale division, as Keras); the update is the same within
    float32 rounding."""

    def _clip_gradients(self, grads):
        if self.clipnorm and self.clipnorm > 0:
            return grads  # clipped in update_step
        return super()._clip_gradients(grads)

    def update_step(self, gradient, variable, learning_rate):
        fused = self.momentum != 0 and not self.nesterov
        if self.clipnorm and self.clipnorm > 0:
            scale = clip_scale(gradient, self.clipnorm)
            if fused:
                learning_rate = ops.cast(learning_rate, variable.dtype) * scale
            else:
                gradient = gradient * scale
        if not fused:
            return super().update_step(gradient, variable, learning_rate)
        accum = self.momentums[self._get_variable_index(variable)]
        momentum_update(variable, accum, gradient, learning_rate, self.momentum)


@keras.saving.register_keras_serializable(package="kseg")
class Adam(ScaledClipping, keras.optimizers.Adam):
    """`keras.optimizers.Adam` with `ScaledClipping`, and its update in one pass over each
    variable where the backend has a kernel (`kseg.ops.updates`; not with AMSGrad)."""

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        index = self._get_variable_index(variable)
        adam_update(variable, self._momentums[index], self._velocities[index], gradient,
                    learning_rate, self.beta_1, self.beta_2, self.epsilon,
                    self.iterations + 1)


@keras.saving.register_keras_serializable(package="kseg")
class AdamW(Adam, keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` with kseg's `Adam` update (Keras' AdamW is Adam with
    decoupled weight decay applied before each step)."""


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
        optimizer = SGD(momentum=momentum, **kwargs)
    elif name == "adam":
        optimizer = Adam(**kwargs)
    else:
        optimizer = AdamW(**{**kwargs, "weight_decay": decay})
    if decay:
        optimizer.exclude_from_weight_decay(var_names=list(NOT_DECAYED))
    return optimizer


__all__ = ["NOT_DECAYED", "Adam", "AdamW", "SGD", "ScaledClipping", "clip_scale", "is_decayed",
           "loss_weight_decay", "make_optimizer"]
