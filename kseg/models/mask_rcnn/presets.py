"""Ready-made Mask R-CNN configs.

    ShapesConfig       the shapes toy task: a tiny ResNet trained from scratch on CPU
    SmallDataConfig    a few hundred real photos on CPU, from scratch (256x256, tiny ResNet)
    FineTuneConfig     Matterport's balloon-style fine-tuning of mask_rcnn_coco.h5 (ResNet-101)
    CocoConfig         mask_rcnn_coco.h5 as published: 81 classes, for inference and COCO training

Override anything per run: `SmallDataConfig(NAME="damage", NUM_CLASSES=1 + 5)`.
"""

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
    # kseg's sampling (negatives fill the free ROI slots, ground truth joins the
    # proposals): the heads see positives from the first step when training from scratch.
    ROI_SAMPLING = "fill"
    ADD_GT_AS_PROPOSALS = True
    GRADIENT_CLIP_NORM = 5.0
    STEPS_PER_EPOCH = 100
    VALIDATION_STEPS = 0
    # Epochs of the sample's default run; the last fifth runs at LEARNING_RATE / 10.
    EPOCHS = 10


class SmallDataConfig(ShapesConfig):
    """Real photos (e.g. car damage, one class) trained from scratch on a CPU at 256x256.

    Instances are large and few: anchors cover 16-256 pixels, up to 20 instances.
    """

    NAME = "small"
    NUM_CLASSES = 1 + 1
    IMAGES_PER_GPU = 4
    IMAGE_MIN_DIM = 256
    IMAGE_MAX_DIM = 256
    BACKBONE_FILTERS = 32
    RPN_ANCHOR_SCALES = (16, 32, 64, 128, 256)
    MAX_GT_INSTANCES = 20
    DETECTION_MAX_INSTANCES = 20
    DETECTION_MIN_CONFIDENCE = 0.5
    STEPS_PER_EPOCH = 50
    VALIDATION_STEPS = 0


class FineTuneConfig(MaskRCNNConfig):
    """Fine-tune mask_rcnn_coco.h5 on a small dataset (Matterport's balloon sample settings)."""

    NAME = "finetune"
    NUM_CLASSES = 1 + 1
    BACKBONE = "resnet101"
    IMAGES_PER_GPU = 1
    IMAGE_MIN_DIM = 512
    IMAGE_MAX_DIM = 512
    STEPS_PER_EPOCH = 100
    VALIDATION_STEPS = 5
    DETECTION_MIN_CONFIDENCE = 0.9
    # Matterport's ROI sampling, so its scores and thresholds transfer (the defaults;
    # spelled out because this preset promises Matterport's behaviour).
    ROI_SAMPLING = "matterport"
    ADD_GT_AS_PROPOSALS = False


class CocoConfig(MaskRCNNConfig):
    """The published mask_rcnn_coco.h5: ResNet-101 FPN, 80 COCO classes + BG."""

    NAME = "coco"
    NUM_CLASSES = 1 + 80
    IMAGES_PER_GPU = 1
    ROI_SAMPLING = "matterport"
    ADD_GT_AS_PROPOSALS = False


__all__ = ["CocoConfig", "FineTuneConfig", "ShapesConfig", "SmallDataConfig"]
