"""Wiring: backbone -> FPN -> RPN -> proposals -> (targets) -> heads -> (detections).

`build_training_model(config)` and `build_inference_model(config)` return Keras
functional models whose inputs and outputs keep Matterport's names.

Shape shorthand:
    S: image side (IMAGE_SHAPE), A: anchors, G: MAX_GT_INSTANCES, D: DETECTION_MAX_INSTANCES
    input_image [batch, S, S, 3] float32, molded (MEAN_PIXEL subtracted)
    input_image_meta [batch, IMAGE_META_SIZE]
"""

import keras
from keras import layers, ops

from kseg.models.mask_rcnn.backbones import build_backbone
from kseg.models.mask_rcnn.detection import DetectionLayer
from kseg.models.mask_rcnn.fpn import fpn_graph
from kseg.models.mask_rcnn.heads import CountRows, fpn_classifier_graph, fpn_mask_graph
from kseg.models.mask_rcnn.layers import Anchors, NormalizedWindow
from kseg.models.mask_rcnn.proposals import ProposalLayer
from kseg.models.mask_rcnn.rpn_targets import RpnTargetLayer
from kseg.models.mask_rcnn.targets import DetectionTargetLayer

# Box and ROI layers always compute in float32 (under a mixed-precision policy too).
BOXES_DTYPE = "float32"


@keras.saving.register_keras_serializable(package="kseg")
class NormalizeBoxes(keras.layers.Layer):
    """Pixel boxes [batch, N, 4] -> normalized, using the image tensor's height and width."""

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")  # float32 under mixed precision
        super().__init__(**kwargs)

    def call(self, boxes, image):
        h = ops.cast(ops.shape(image)[1], "float32")
        w = ops.cast(ops.shape(image)[2], "float32")
        scale = ops.stack([h - 1, w - 1, h - 1, w - 1])
        return (ops.cast(boxes, "float32") - ops.convert_to_tensor([0.0, 0.0, 1.0, 1.0])) / scale

    def compute_output_shape(self, boxes_shape, image_shape):
        return boxes_shape


@keras.saving.register_keras_serializable(package="kseg")
class SliceRows(keras.layers.Layer):
    """x[:, start:stop] along axis 1 (e.g. the first M ROIs, or detection boxes)."""

    def __init__(self, stop, start=0, columns=None, **kwargs):
        super().__init__(**kwargs)
        self.start, self.stop, self.columns = int(start), int(stop), columns

    def call(self, x):
        x = x[:, self.start:self.stop]
        return x if self.columns is None else x[..., self.columns[0]:self.columns[1]]

    def compute_output_shape(self, shape):
        cols = shape[-1] if self.columns is None else self.columns[1] - self.columns[0]
        return (shape[0], self.stop - self.start, *shape[2:-1], cols) if len(shape) > 2 \
            else (shape[0], self.stop - self.start)

    def get_config(self):
        return {**super().get_config(), "start": self.start, "stop": self.stop,
                "columns": self.columns}


def _image_inputs(config):
    shape = [None, None, config.IMAGE_CHANNEL_COUNT]
    if config.IMAGE_RESIZE_MODE in ("square", "crop"):
        shape = [int(v) for v in config.IMAGE_SHAPE]
    image = keras.Input(shape=shape, name="input_image")
    meta = keras.Input(shape=[config.IMAGE_META_SIZE], name="input_image_meta")
    return image, meta


def _features(image, config):
    """P2..P6 feature maps and the RPN outputs over all levels."""
    from kseg.models.mask_rcnn.rpn import rpn_outputs

    (c2, c3, c4, c5), _ = build_backbone(image, config)
    p2, p3, p4, p5, p6 = fpn_graph(c2, c3, c4, c5, config.TOP_DOWN_PYRAMID_SIZE)
    rpn_class_logits, rpn_class, rpn_bbox = rpn_outputs([p2, p3, p4, p5, p6], config)
    anchors = Anchors(config.RPN_ANCHOR_SCALES, config.RPN_ANCHOR_RATIOS,
                      config.BACKBONE_STRIDES, config.RPN_ANCHOR_STRIDE, name="anchors",
                      dtype=BOXES_DTYPE)(image)
    return [p2, p3, p4, p5], (rpn_class_logits, rpn_class, rpn_bbox), anchors


def _head_args(config, image):
    """The heads' shared arguments; RoIAlign reads the image size from `image` at run time."""
    return dict(image_meta=image, num_classes=config.NUM_CLASSES,
                train_bn=config.TRAIN_BN is not False)


def _rpn_targets(image, gt_class_ids, gt_boxes, config):
    """RPN targets in the graph: rpn_match [batch, A, 1] int32, rpn_bbox [batch, R, 4]."""
    pixel_anchors = Anchors(config.RPN_ANCHOR_SCALES, config.RPN_ANCHOR_RATIOS,
                            config.BACKBONE_STRIDES, config.RPN_ANCHOR_STRIDE,
                            normalized=False, name="pixel_anchors", dtype=BOXES_DTYPE)(image)
    return RpnTargetLayer(config.RPN_TRAIN_ANCHORS_PER_IMAGE, config.RPN_BBOX_STD_DEV,
                          name="rpn_targets", dtype=BOXES_DTYPE)(pixel_anchors, gt_class_ids,
                                                                 gt_boxes)


def build_training_model(config, model_class=keras.Model):
    """The training graph; outputs every tensor the five losses need (a dict).

    Inputs: images, image metas and the padded ground truth (class ids, pixel boxes,
    masks); the RPN and head targets are computed inside.
    """
    image, meta = _image_inputs(config)
    gt_class_ids = keras.Input(shape=[config.MAX_GT_INSTANCES], name="input_gt_class_ids",
                               dtype="int32")
    gt_boxes = keras.Input(shape=[config.MAX_GT_INSTANCES, 4], name="input_gt_boxes")
    mask_hw = config.MINI_MASK_SHAPE if config.USE_MINI_MASK else config.IMAGE_SHAPE[:2]
    gt_masks = keras.Input(shape=[int(mask_hw[0]), int(mask_hw[1]), config.MAX_GT_INSTANCES],
                           name="input_gt_masks", dtype="bool")
    maps, (rpn_class_logits, rpn_class, rpn_bbox), anchors = _features(image, config)
    rpn_match, rpn_target_bbox = _rpn_targets(image, gt_class_ids, gt_boxes, config)
    proposals = ProposalLayer(config.POST_NMS_ROIS_TRAINING, config.RPN_NMS_THRESHOLD,
                              config.PRE_NMS_LIMIT, config.RPN_BBOX_STD_DEV,
                              name="ROI", dtype=BOXES_DTYPE)(rpn_class, rpn_bbox, anchors)
    norm_gt_boxes = NormalizeBoxes(name="norm_gt_boxes", dtype=BOXES_DTYPE)(gt_boxes, image)
    targets = DetectionTargetLayer(
        config.TRAIN_ROIS_PER_IMAGE, config.ROI_POSITIVE_RATIO, config.MASK_SHAPE,
        config.BBOX_STD_DEV, config.USE_MINI_MASK, config.ADD_GT_AS_PROPOSALS,
        roi_sampling=config.ROI_SAMPLING, name="proposal_targets", dtype=BOXES_DTYPE)(proposals, gt_class_ids, norm_gt_boxes, gt_masks)
    rois, target_class_ids, target_bbox, target_mask, roi_weights = targets
    head = _head_args(config, image)
    class_logits, _, bbox = fpn_classifier_graph(
        rois, maps, pool_size=config.POOL_SIZE,
        fc_layers_size=config.FPN_CLASSIF_FC_LAYERS_SIZE, **head)
    mask_rois = SliceRows(target_mask.shape[1], name="mask_rois", dtype=BOXES_DTYPE)(rois)
    positives = CountRows(target_mask.shape[1], name="mask_roi_count")(target_class_ids)
    masks = fpn_mask_graph(mask_rois, maps, pool_size=config.MASK_POOL_SIZE,
                           filters=config.MASK_HEAD_FILTERS, row_count=positives,
                           class_ids=target_class_ids, **head)
    inputs = {"input_image": image, "input_image_meta": meta,
              "input_gt_class_ids": gt_class_ids, "input_gt_boxes": gt_boxes,
              "input_gt_masks": gt_masks}
    outputs = {"rpn_match": rpn_match, "rpn_target_bbox": rpn_target_bbox,
               "rpn_class_logits": rpn_class_logits, "rpn_bbox": rpn_bbox,
               "target_class_ids": target_class_ids, "target_bbox": target_bbox,
               "target_mask": target_mask, "roi_weights": roi_weights, "rois": rois,
               "mrcnn_class_logits": class_logits, "mrcnn_bbox": bbox,
               "mrcnn_mask_true_logits": masks}
    return model_class(inputs=inputs, outputs=outputs, name="mask_rcnn_training")


def build_inference_model(config):
    """The inference graph: [detections, mrcnn_class, mrcnn_bbox, mrcnn_mask, rpn_rois,
    rpn_class, rpn_bbox], as Matterport's."""
    image, meta = _image_inputs(config)
    maps, (_, rpn_class, rpn_bbox), anchors = _features(image, config)
    rpn_rois = ProposalLayer(config.POST_NMS_ROIS_INFERENCE, config.RPN_NMS_THRESHOLD,
                             config.PRE_NMS_LIMIT, config.RPN_BBOX_STD_DEV,
                             name="ROI", dtype=BOXES_DTYPE)(rpn_class, rpn_bbox, anchors)
    head = _head_args(config, image)
    head["train_bn"] = False if config.TRAIN_BN is False else head["train_bn"]
    _, class_probs, bbox = fpn_classifier_graph(
        rpn_rois, maps, pool_size=config.POOL_SIZE,
        fc_layers_size=config.FPN_CLASSIF_FC_LAYERS_SIZE, **head)
    window = NormalizedWindow(name="norm_window", dtype=BOXES_DTYPE)(meta, image)
    detections = DetectionLayer(config.DETECTION_MAX_INSTANCES, config.DETECTION_MIN_CONFIDENCE,
                                config.DETECTION_NMS_THRESHOLD, config.BBOX_STD_DEV,
                                name="mrcnn_detection",
                                dtype=BOXES_DTYPE)(rpn_rois, class_probs, bbox, window)
    detection_boxes = SliceRows(config.DETECTION_MAX_INSTANCES, columns=[0, 4],
                                name="detection_boxes", dtype=BOXES_DTYPE)(detections)
    kept = CountRows(name="detection_count")(detections)
    masks = fpn_mask_graph(detection_boxes, maps, pool_size=config.MASK_POOL_SIZE,
                           filters=config.MASK_HEAD_FILTERS, row_count=kept, **head)
    outputs = [detections, class_probs, bbox, masks, rpn_rois, rpn_class, rpn_bbox]
    outputs = [layers.Identity(name=n)(t) for n, t in zip(
        ["detections", "mrcnn_class_out", "mrcnn_bbox_out", "mrcnn_mask_out", "rpn_rois",
         "rpn_class_out", "rpn_bbox_out"], outputs)]
    return keras.Model([image, meta], outputs, name="mask_rcnn_inference")
