"""The Keras 3 training model: a functional model whose `compute_loss` adds the five losses.

`model.fit(batches)` takes the pipeline's input dicts directly (images, metas and the
padded ground truth; no targets: the model computes the RPN and head targets itself,
as torchvision, detectron2 and keras-hub do, and outputs them beside its predictions). Each loss is weighted by LOSS_WEIGHTS and
reported as a metric; Matterport's L2 weight decay (`weight_decay * sum(w ** 2) /
size(w)`, BatchNorm gamma/beta excluded) is added to the total. It is 0 with AdamW,
which decays in the optimizer instead (`kseg.models.optimizers`).

Under a tf.distribute strategy each replica's losses are its share of the global-batch
means (their normalizers are summed over replicas), so the summed gradients equal one
device's on the same global batch; weight decay, computed on every replica, is divided
by the replica count. Mixed precision: every output enters the losses as float32.
"""

import keras
from keras import ops

from kseg.distribute import replica_count, symbolic_build_from_local_batch
from kseg.models.mask_rcnn import losses
from kseg.models.optimizers import is_decayed
from kseg.ops.norms import sum_of_squares

LOSS_NAMES = ("rpn_class_loss", "rpn_bbox_loss", "mrcnn_class_loss", "mrcnn_bbox_loss",
              "mrcnn_mask_loss")


def five_losses(x, y_pred, meta_offset=12):
    """The five Matterport losses (unweighted) as a dict of scalars.

    The mask loss is computed from `y_pred["mrcnn_mask_true_logits"]` (the training
    model's output: each ROI's target-class logits), else from per-class logits
    `mrcnn_mask_logits` or sigmoid probabilities `mrcnn_mask` (Matterport's, and training
    models saved before). The RPN targets are the model's outputs `rpn_match` /
    `rpn_target_bbox` (computed in the graph), or the inputs `input_rpn_match` /
    `input_rpn_bbox` of training models saved before.
    """
    active_class_ids = x["input_image_meta"][:, meta_offset:]
    mask_key = next(k for k in ("mrcnn_mask_true_logits", "mrcnn_mask_logits", "mrcnn_mask")
                    if k in y_pred)
    from_logits = mask_key != "mrcnn_mask"
    masks = y_pred[mask_key]
    in_graph = "rpn_match" in y_pred
    rpn_match = y_pred["rpn_match"] if in_graph else x["input_rpn_match"]
    rpn_target_bbox = y_pred["rpn_target_bbox"] if in_graph else x["input_rpn_bbox"]
    return {
        "rpn_class_loss": losses.rpn_class_loss(rpn_match, y_pred["rpn_class_logits"]),
        "rpn_bbox_loss": losses.rpn_bbox_loss(rpn_target_bbox, rpn_match, y_pred["rpn_bbox"]),
        "mrcnn_class_loss": losses.mrcnn_class_loss(
            y_pred["target_class_ids"], y_pred["mrcnn_class_logits"], active_class_ids,
            y_pred["roi_weights"]),
        "mrcnn_bbox_loss": losses.mrcnn_bbox_loss(y_pred["target_bbox"],
                                                  y_pred["target_class_ids"], y_pred["mrcnn_bbox"]),
        "mrcnn_mask_loss": losses.mrcnn_mask_loss(y_pred["target_mask"],
                                                  y_pred["target_class_ids"], masks,
                                                  from_logits=from_logits),
    }


def _float32(value):
    dtype = keras.backend.standardize_dtype(value.dtype)
    return ops.cast(value, "float32") if dtype in ("float16", "bfloat16") else value


def decayed_weights(model):
    """Variables that get L2 weight decay, as Matterport: every trainable one except
    BatchNorm gamma / beta (biases included)."""
    return [w for w in model.trainable_weights if is_decayed(w)]


@keras.saving.register_keras_serializable(package="kseg")
class MaskRCNNTrainingModel(keras.Model):
    """Functional training model that computes its own loss (built by `build_training_model`)."""

    def __init__(self, *args, loss_weights=None, weight_decay=0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_weights = dict(loss_weights or {})
        self.weight_decay = float(weight_decay)
        self.loss_trackers = {name: keras.metrics.Mean(name=name) for name in LOSS_NAMES}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        # The torch trainer hands `x` over as given (NumPy arrays from train_on_batch).
        x = {name: ops.convert_to_tensor(value) for name, value in x.items()}
        y_pred = {name: _float32(value) for name, value in y_pred.items()}
        parts = five_losses(x, y_pred)
        replicas = replica_count()
        total = 0.0
        for name, value in parts.items():
            self.loss_trackers[name].update_state(value * replicas)  # the global value
            total = total + self.loss_weights.get(name, 1.0) * value
        if self.weight_decay > 0:
            l2 = [sum_of_squares(ops.cast(w.value, "float32"))
                  / ops.cast(ops.size(w.value), "float32") for w in decayed_weights(self)]
            if l2:
                total = total + self.weight_decay * ops.sum(ops.stack(l2)) / replicas
        return total

    _builds_from_local_batch = True

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if getattr(self, "_distribute_strategy", None) is None:
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        return symbolic_build_from_local_batch(self, iterator, data_batch)

    @property
    def metrics(self):
        return [*super().metrics, *self.loss_trackers.values()]

    def get_config(self):
        return {**super().get_config(), "loss_weights": self.loss_weights,
                "weight_decay": self.weight_decay}
