"""Region Proposal Network head, shared over pyramid levels (Matterport's `rpn_model`).

Shape shorthand:
    A_l: anchors of level l = h_l * w_l * anchors_per_location / anchor_stride**2
    rpn_class_logits: [batch, A, 2]   rpn_probs: [batch, A, 2]
    rpn_bbox: [batch, A, (dy, dx, log(dh), log(dw))]
"""

import keras
from keras import layers

from kseg.models.conv import Conv2D


def build_rpn_model(anchor_stride, anchors_per_location, depth, conv_filters=512):
    """The nested `rpn_model`: feature map [batch, h, w, depth] -> logits, probs, deltas."""
    feature_map = keras.Input(shape=(None, None, depth), name="input_rpn_feature_map")
    shared = Conv2D(conv_filters, 3, padding="same", activation="relu",
                           strides=anchor_stride, name="rpn_conv_shared")(feature_map)
    # float32 outputs (mixed precision: the losses and proposals see full-precision values)
    x = layers.Conv2D(2 * anchors_per_location, 1, name="rpn_class_raw", dtype="float32")(shared)
    rpn_class_logits = layers.Reshape((-1, 2), dtype="float32")(x)
    rpn_probs = layers.Activation("softmax", name="rpn_class_xxx",
                                  dtype="float32")(rpn_class_logits)
    x = layers.Conv2D(anchors_per_location * 4, 1, name="rpn_bbox_pred", dtype="float32")(shared)
    rpn_bbox = layers.Reshape((-1, 4), dtype="float32")(x)
    return keras.Model(feature_map, [rpn_class_logits, rpn_probs, rpn_bbox], name="rpn_model")


def rpn_outputs(feature_maps, config):
    """Run the shared RPN on every level and concatenate: logits, probs, deltas."""
    rpn = build_rpn_model(config.RPN_ANCHOR_STRIDE, len(config.RPN_ANCHOR_RATIOS),
                          config.TOP_DOWN_PYRAMID_SIZE, config.RPN_CONV_FILTERS)
    outputs = [rpn(p) for p in feature_maps]
    names = ["rpn_class_logits", "rpn_class", "rpn_bbox"]
    return [layers.Concatenate(axis=1, name=name, dtype="float32")([o[i] for o in outputs])
            for i, name in enumerate(names)]
