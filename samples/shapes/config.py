"""The shapes config: Mask R-CNN sized to train from scratch on 2 CPU cores in ~10 minutes."""

from kseg.models.mask_rcnn.config import MaskRCNNConfig


class ShapesConfig(MaskRCNNConfig):
    """Small images, a small ResNet, anchors for 128-pixel images, few ROIs, Adam."""

    NAME = "shapes"
    NUM_CLASSES = 1 + 3  # background + square, circle, triangle
    IMAGES_PER_GPU = 8
    IMAGE_MIN_DIM = 128
    IMAGE_MAX_DIM = 128
    BACKBONE = "resnet_tiny"
    BACKBONE_FILTERS = 32
    TOP_DOWN_PYRAMID_SIZE = 64
    RPN_CONV_FILTERS = 64
    FPN_CLASSIF_FC_LAYERS_SIZE = 256
    MASK_HEAD_FILTERS = 64
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    RPN_TRAIN_ANCHORS_PER_IMAGE = 64
    PRE_NMS_LIMIT = 1000
    POST_NMS_ROIS_TRAINING = 256
    POST_NMS_ROIS_INFERENCE = 100
    TRAIN_ROIS_PER_IMAGE = 32
    ROI_POSITIVE_RATIO = 0.33
    MAX_GT_INSTANCES = 8
    USE_MINI_MASK = True
    MINI_MASK_SHAPE = (28, 28)
    MASK_POOL_SIZE = 7
    MASK_SHAPE = [14, 14]
    DETECTION_MAX_INSTANCES = 16
    DETECTION_MIN_CONFIDENCE = 0.7
    TRAIN_BN = True
    OPTIMIZER = "adam"
    LEARNING_RATE = 2e-3
    WEIGHT_DECAY = 1e-4
    GRADIENT_CLIP_NORM = 5.0
    STEPS_PER_EPOCH = 100
    VALIDATION_STEPS = 0
