"""Semantic segmentation losses: cross-entropy, Dice, focal, Lovasz hinge, and their sums.

    loss = make_loss("ce+dice", num_classes=2, activation="sigmoid")
    model.compile(optimizer="adam", loss=loss)

Every function takes the model output as it is (`activation` says what it is) and
returns one value per image [B]; Keras averages over the batch.

Shape shorthand:
    y_true [B, H, W] (or [B, H, W, 1]) int class indices; pixels equal to `ignore_index`
        count nowhere.
    y_pred [B, H, W, K] softmax probabilities or logits, or [B, H, W, 1] for a binary
        model (sigmoid probability or logit of class 1).
    class_weights: [K'] per-class weights (K' = 2 for a 1-channel binary model).
"""

import keras
from keras import ops

EPSILON = 1e-7
TERMS = ("ce", "dice", "focal", "lovasz_hinge")


def _log_probs(y_pred, activation):
    """Per-class log-probabilities [B, H, W, K'] (K' = 2 for a 1-channel output)."""
    y_pred = ops.cast(y_pred, "float32")
    if y_pred.shape[-1] == 1:
        if activation == "logits":
            return ops.concatenate([ops.log_sigmoid(-y_pred), ops.log_sigmoid(y_pred)], axis=-1)
        p = ops.clip(y_pred, EPSILON, 1.0 - EPSILON)
        return ops.concatenate([ops.log(1.0 - p), ops.log(p)], axis=-1)
    if activation == "logits":
        return ops.log_softmax(y_pred, axis=-1)
    return ops.log(ops.clip(y_pred, EPSILON, 1.0))


def _targets(y_true, num_classes, ignore_index):
    """(one-hot [B, H, W, K] float, valid [B, H, W] float) from class indices."""
    y_true = ops.cast(y_true, "int32")
    if len(y_true.shape) == 4:
        y_true = ops.squeeze(y_true, axis=-1)
    valid = ops.ones_like(y_true, dtype="float32")
    if ignore_index is not None:
        valid = ops.cast(ops.not_equal(y_true, ignore_index), "float32")
    labels = ops.where(ops.cast(valid, "bool"), y_true, ops.zeros_like(y_true))
    return ops.one_hot(labels, num_classes, dtype="float32"), valid


def _pixel_weights(onehot, class_weights):
    if class_weights is None:
        return 1.0
    weights = ops.convert_to_tensor(list(class_weights), dtype="float32")
    return ops.sum(onehot * weights, axis=-1)


def _pixel_mean(values, valid):
    """Mean of values [B, H, W] over the valid pixels of each image -> [B]."""
    total = ops.sum(values * valid, axis=(1, 2))
    return total / ops.maximum(ops.sum(valid, axis=(1, 2)), 1.0)


def _prepared(y_true, y_pred, activation, ignore_index):
    """(log-probabilities [B, H, W, K'], one-hot targets [B, H, W, K'], valid [B, H, W]):
    computed once and shared by the terms of a sum such as "ce+dice"."""
    log_probs = _log_probs(y_pred, activation)
    onehot, valid = _targets(y_true, log_probs.shape[-1], ignore_index)
    return log_probs, onehot, valid


def _ce_term(log_probs, onehot, valid, class_weights=None):
    nll = -ops.sum(onehot * log_probs, axis=-1)
    return _pixel_mean(nll * _pixel_weights(onehot, class_weights), valid)


def _focal_term(log_probs, onehot, valid, class_weights=None, gamma=2.0):
    log_pt = ops.sum(onehot * log_probs, axis=-1)
    modulator = ops.power(1.0 - ops.exp(log_pt), gamma)
    return _pixel_mean(-modulator * log_pt * _pixel_weights(onehot, class_weights), valid)


def _dice_term(log_probs, onehot, valid, class_weights=None, smooth=1.0, per_image=False,
               binary=False):
    probs = ops.exp(log_probs)
    valid = ops.expand_dims(valid, -1)
    axes = (1, 2) if per_image else (0, 1, 2)
    intersection = ops.sum(probs * onehot * valid, axis=axes)
    denominator = ops.sum((probs + onehot) * valid, axis=axes)
    dice = (2.0 * intersection + smooth) / (denominator + smooth)  # [B, K] or [K]
    if binary:
        loss = 1.0 - dice[..., 1]
    elif class_weights is None:
        loss = 1.0 - ops.mean(dice, axis=-1)
    else:
        weights = ops.convert_to_tensor(list(class_weights), dtype="float32")
        loss = 1.0 - ops.sum(dice * weights, axis=-1) / ops.sum(weights)
    return loss if per_image else loss * ops.ones_like(valid[:, 0, 0, 0])


def _lovasz_hinge_term(log_probs, onehot, valid, per_image=False):
    """Lovasz hinge (Berman et al. 2018) of the foreground class of a 2-class output [B]:
    the Lovasz extension of the Jaccard loss 1 - IoU applied to the hinge errors
    max(0, 1 - logit * sign), a convex surrogate of 1 - IoU; over the whole batch
    (repeated per image, like the batch Dice) or over each image."""
    if log_probs.shape[-1] != 2:
        raise ValueError(f"the lovasz_hinge loss needs a binary output (1 sigmoid channel or "
                         f"2 classes); got {log_probs.shape[-1]} classes")
    rows = (ops.shape(valid)[0], -1) if per_image else (1, -1)
    logits = ops.reshape(log_probs[..., 1] - log_probs[..., 0], rows)
    labels = ops.reshape(onehot[..., 1], ops.shape(logits))
    mask = ops.reshape(valid, ops.shape(logits))
    errors = 1.0 - logits * (2.0 * labels - 1.0)
    # Ignored pixels sort last with label 0: they change no earlier Jaccard step and add 0.
    errors = ops.where(mask > 0, errors, -1e4)
    labels = labels * mask
    count = errors.shape[-1] if errors.shape[-1] is not None else ops.shape(errors)[-1]
    sorted_errors, order = ops.top_k(errors, k=count, sorted=True)  # descending
    sorted_labels = ops.take_along_axis(labels, order, axis=-1)
    positives = ops.sum(sorted_labels, axis=-1, keepdims=True)
    intersection = positives - ops.cumsum(sorted_labels, axis=-1)
    union = positives + ops.cumsum(1.0 - sorted_labels, axis=-1)
    jaccard = 1.0 - intersection / ops.maximum(union, 1.0)
    gradient = ops.concatenate([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], axis=-1)
    loss = ops.sum(ops.relu(sorted_errors) * ops.stop_gradient(gradient), axis=-1)
    return loss if per_image else loss * ops.ones_like(valid[:, 0, 0])


def cross_entropy(y_true, y_pred, activation="softmax", class_weights=None, ignore_index=None):
    """Pixel-mean (class-weighted) cross-entropy per image [B]."""
    return _ce_term(*_prepared(y_true, y_pred, activation, ignore_index), class_weights)


def focal_loss(y_true, y_pred, activation="softmax", gamma=2.0, class_weights=None,
               ignore_index=None):
    """Focal loss (Lin et al.) per image [B]: -w_c (1 - p_t)^gamma log p_t, pixel mean."""
    return _focal_term(*_prepared(y_true, y_pred, activation, ignore_index), class_weights,
                       gamma)


def dice_loss(y_true, y_pred, activation="softmax", class_weights=None, ignore_index=None,
              smooth=1.0, per_image=False):
    """Soft Dice loss 1 - (2 sum(p t) + s) / (sum p + sum t + s), one value per image [B].

    Sums run over the whole batch (as segmentation_models' default; stable when a class
    covers few pixels) and the batch value is repeated per image, or over each image
    with `per_image=True`. Multi-class outputs: (class-weighted) mean over all classes. A
    1-channel binary output: the foreground class only (background Dice would swamp a
    small foreground).
    """
    return _dice_term(*_prepared(y_true, y_pred, activation, ignore_index), class_weights,
                      smooth, per_image, binary=y_pred.shape[-1] == 1)


def lovasz_hinge(y_true, y_pred, activation="sigmoid", ignore_index=None, per_image=False):
    """Lovasz hinge loss (Berman et al., "The Lovasz-Softmax loss", 2018), one value per
    image [B], for a binary model (1 sigmoid channel, or 2-class softmax / logits): a
    piecewise-linear convex surrogate of 1 - IoU of the foreground class, optimised
    directly. Over the whole batch (the value repeated per image; the IoU of all pixels
    pooled, as the evaluation counts it) or over each image with `per_image=True`. With
    hinge errors of exactly 0 (right with margin 1) or 1 (logit 0) it equals 1 - IoU."""
    return _lovasz_hinge_term(*_prepared(y_true, y_pred, activation, ignore_index), per_image)


@keras.saving.register_keras_serializable(package="kseg")
class SegmentationLoss(keras.losses.Loss):
    """Sum of loss terms ("ce", "dice", "focal", "lovasz_hinge"), e.g. "ce+dice".

    Args:
        terms: "+"-separated term names.
        activation: what the model outputs: "softmax", "sigmoid" or "logits".
        class_weights: None or per-class weights (CE / focal pixel weights, Dice class
            weights).
        ignore_index: class index that counts nowhere, or None.
        gamma: focal-loss focusing parameter.
        smooth: Dice smoothing constant.
        dice_per_image: Dice over each image instead of over the batch.
    """

    def __init__(self, terms="ce", activation="softmax", class_weights=None, ignore_index=None,
                 gamma=2.0, smooth=1.0, dice_per_image=False, name=None,
                 reduction="sum_over_batch_size", dtype=None):
        self.terms = parse_terms(terms)
        super().__init__(name=name or "_".join(self.terms), reduction=reduction, dtype=dtype)
        self.activation = activation
        self.class_weights = None if class_weights is None else [float(w) for w in class_weights]
        self.ignore_index = None if ignore_index is None else int(ignore_index)
        self.gamma = float(gamma)
        self.smooth = float(smooth)
        self.dice_per_image = bool(dice_per_image)

    def call(self, y_true, y_pred):
        prepared = _prepared(y_true, y_pred, self.activation, self.ignore_index)
        values = []
        for term in self.terms:
            if term == "ce":
                values.append(_ce_term(*prepared, self.class_weights))
            elif term == "focal":
                values.append(_focal_term(*prepared, self.class_weights, self.gamma))
            elif term == "lovasz_hinge":
                values.append(_lovasz_hinge_term(*prepared))
            else:
                values.append(_dice_term(*prepared, self.class_weights, self.smooth,
                                         self.dice_per_image, binary=y_pred.shape[-1] == 1))
        return sum(values[1:], values[0])

    def get_config(self):
        config = super().get_config()
        config.update(terms="+".join(self.terms), activation=self.activation,
                      class_weights=self.class_weights, ignore_index=self.ignore_index,
                      gamma=self.gamma, smooth=self.smooth, dice_per_image=self.dice_per_image)
        return config


def parse_terms(spec):
    """"ce+dice" -> ("ce", "dice"); ValueError naming the allowed terms otherwise."""
    terms = tuple(part.strip().lower() for part in str(spec).split("+"))
    bad = [term for term in terms if term not in TERMS]
    if bad or not terms:
        raise ValueError(f"unknown loss term(s) {bad} in {spec!r}; use {', '.join(TERMS)} "
                         f"or sums like 'ce+dice'")
    return terms


def make_loss(spec="ce", activation="softmax", class_weights=None, ignore_index=None,
              gamma=2.0, smooth=1.0):
    """A `SegmentationLoss` for `spec` ("ce", "dice", "focal", "lovasz_hinge", "ce+dice")."""
    return SegmentationLoss(spec, activation=activation, class_weights=class_weights,
                            ignore_index=ignore_index, gamma=gamma, smooth=smooth)


def loss_from_config(config):
    """`make_loss` with a SemanticConfig's LOSS, OUTPUT_ACTIVATION, CLASS_WEIGHTS,
    IGNORE_INDEX and FOCAL_GAMMA."""
    return make_loss(config.LOSS, activation=config.OUTPUT_ACTIVATION,
                     class_weights=config.CLASS_WEIGHTS, ignore_index=config.IGNORE_INDEX,
                     gamma=getattr(config, "FOCAL_GAMMA", 2.0))
