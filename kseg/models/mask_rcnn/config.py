"""Mask R-CNN configuration: Matterport's field names and defaults."""

import numpy as np

from kseg.config import Config


class MaskRCNNConfig(Config):
    """Mask R-CNN settings (matterport/Mask_RCNN `mrcnn/config.py` names and defaults)."""

    NAME = "maskrcnn"
    IMAGES_PER_GPU = 2
    # Class names, "BG" first (written to the run's config.json; optional).
    CLASS_NAMES = None
    # Backbone: "resnet50", "resnet101", a name registered in `kseg.models.backbones`
    # (e.g. "resnet_tiny"), or a callable `f(image, train_bn, filters) -> [C1..C5]`.
    BACKBONE = "resnet101"
    # Matterport's f(image_shape) -> [[h, w] per level]; optional: kseg derives the shapes
    # from BACKBONE_STRIDES and only checks that this function agrees.
    COMPUTE_BACKBONE_SHAPE = None
    BACKBONE_STRIDES = [4, 8, 16, 32, 64]
    # Width of the C5-stage and block widths of the tiny backbones (ignored by resnet50/101).
    BACKBONE_FILTERS = 64
    FPN_CLASSIF_FC_LAYERS_SIZE = 1024
    TOP_DOWN_PYRAMID_SIZE = 256
    # RPN: anchor side lengths in pixels (one per pyramid level), ratios, stride.
    RPN_ANCHOR_SCALES = (32, 64, 128, 256, 512)
    RPN_ANCHOR_RATIOS = [0.5, 1, 2]
    RPN_ANCHOR_STRIDE = 1
    RPN_CONV_FILTERS = 512
    RPN_NMS_THRESHOLD = 0.7
    RPN_TRAIN_ANCHORS_PER_IMAGE = 256
    PRE_NMS_LIMIT = 6000
    POST_NMS_ROIS_TRAINING = 2000
    POST_NMS_ROIS_INFERENCE = 1000
    # Mini masks: instance masks stored at MINI_MASK_SHAPE inside their boxes.
    USE_MINI_MASK = True
    MINI_MASK_SHAPE = (56, 56)
    # Detection-target sampling.
    TRAIN_ROIS_PER_IMAGE = 200
    ROI_POSITIVE_RATIO = 0.33
    # "matterport": int(positives / ROI_POSITIVE_RATIO) - positives negatives (1:2), the
    # empty ROI slots count as background in the class loss (Matterport's calibration, so
    # its DETECTION_MIN_CONFIDENCE and fine-tuning schedules transfer). "fill": negatives
    # fill every free slot and empty slots are ignored (detectron2; kseg's from-scratch
    # presets, measured faster to learn on shapes).
    ROI_SAMPLING = "matterport"
    # Add the ground-truth boxes to the RPN proposals before sampling ROIs
    # (torchvision/detectron2 do; Matterport does not). Speeds up training from scratch.
    ADD_GT_AS_PROPOSALS = False
    # RoIAlign output sizes and mask head.
    POOL_SIZE = 7
    MASK_POOL_SIZE = 14
    MASK_SHAPE = [28, 28]
    MASK_HEAD_FILTERS = 256
    # Ground-truth instances kept per image (padded).
    MAX_GT_INSTANCES = 100
    RPN_BBOX_STD_DEV = np.array([0.1, 0.1, 0.2, 0.2])
    BBOX_STD_DEV = np.array([0.1, 0.1, 0.2, 0.2])
    DETECTION_MAX_INSTANCES = 100
    DETECTION_MIN_CONFIDENCE = 0.7
    DETECTION_NMS_THRESHOLD = 0.3
    # Loss weights for the five losses.
    LOSS_WEIGHTS = {
        "rpn_class_loss": 1.0,
        "rpn_bbox_loss": 1.0,
        "mrcnn_class_loss": 1.0,
        "mrcnn_bbox_loss": 1.0,
        "mrcnn_mask_loss": 1.0,
    }
    # Matterport's switch to train on externally generated ROIs instead of the RPN's;
    # kseg always trains on RPN proposals, so only True is accepted.
    USE_RPN_ROIS = True
    # TensorFlow: compile the train step with XLA (slower on CPU: minutes to compile). JAX
    # always jits its steps (running op by op is ~10x slower); PyTorch runs eagerly.
    JIT_COMPILE = False

    _DERIVED = ("BACKBONE_SHAPES",)

    def _check_backbone_shapes(self):
        problem = _backbone_shape_problem(self)
        self._check(problem is None, "COMPUTE_BACKBONE_SHAPE", problem)

    def _compute_derived(self):
        super()._compute_derived()
        self.RPN_BBOX_STD_DEV = np.asarray(self.RPN_BBOX_STD_DEV, dtype=np.float32)
        self.BBOX_STD_DEV = np.asarray(self.BBOX_STD_DEV, dtype=np.float32)
        self.LOSS_WEIGHTS = dict(self.LOSS_WEIGHTS)
        strides = np.asarray(self.BACKBONE_STRIDES)
        self.BACKBONE_SHAPES = np.stack(
            [np.ceil(self.IMAGE_SHAPE[:2] / s).astype(int) for s in strides]
        )

    def validate(self):
        super().validate()
        self._check_backbone_shapes()
        self._check(len(self.RPN_ANCHOR_SCALES) == len(self.BACKBONE_STRIDES),
                    "RPN_ANCHOR_SCALES",
                    f"one scale per pyramid level ({len(self.BACKBONE_STRIDES)} values)")
        self._check(len(self.RPN_ANCHOR_RATIOS) >= 1, "RPN_ANCHOR_RATIOS", "a non-empty list")
        self._check(0 < self.ROI_POSITIVE_RATIO <= 1, "ROI_POSITIVE_RATIO", "a number in (0, 1]")
        self._check(self.ROI_SAMPLING in ("matterport", "fill"), "ROI_SAMPLING",
                    "'matterport' or 'fill'")
        self._check(self.USE_RPN_ROIS is True, "USE_RPN_ROIS",
                    "True: kseg trains the heads on RPN proposals only (Matterport's "
                    "USE_RPN_ROIS=False input of external ROIs is not supported)")
        self._check(self.POST_NMS_ROIS_TRAINING >= self.TRAIN_ROIS_PER_IMAGE,
                    "POST_NMS_ROIS_TRAINING",
                    f">= TRAIN_ROIS_PER_IMAGE ({self.TRAIN_ROIS_PER_IMAGE})")
        self._check(self.PRE_NMS_LIMIT >= self.POST_NMS_ROIS_TRAINING, "PRE_NMS_LIMIT",
                    f">= POST_NMS_ROIS_TRAINING ({self.POST_NMS_ROIS_TRAINING})")
        self._check(self.MASK_SHAPE[0] == 2 * self.MASK_POOL_SIZE, "MASK_SHAPE",
                    f"2 * MASK_POOL_SIZE = {2 * self.MASK_POOL_SIZE} (the mask head upsamples x2)")
        self._check(_is_int(self.MAX_GT_INSTANCES) and self.MAX_GT_INSTANCES >= 1,
                    "MAX_GT_INSTANCES", "an int >= 1")
        names = {"rpn_class_loss", "rpn_bbox_loss", "mrcnn_class_loss", "mrcnn_bbox_loss",
                 "mrcnn_mask_loss"}
        self._check(set(self.LOSS_WEIGHTS) <= names, "LOSS_WEIGHTS",
                    f"a dict with keys among {sorted(names)}")
        self._check(0 <= self.DETECTION_MIN_CONFIDENCE < 1, "DETECTION_MIN_CONFIDENCE",
                    "a number in [0, 1)")


def _backbone_shape_problem(config):
    """Why COMPUTE_BACKBONE_SHAPE disagrees with BACKBONE_STRIDES, or None."""
    if config.COMPUTE_BACKBONE_SHAPE is None or isinstance(config.COMPUTE_BACKBONE_SHAPE, str):
        return None  # a str is the function's name, as a run's config.json records it
    if not callable(config.COMPUTE_BACKBONE_SHAPE):
        return "a callable f(image_shape) -> [[h, w] per level] or None"
    shapes = np.asarray(config.COMPUTE_BACKBONE_SHAPE(config.IMAGE_SHAPE)).astype(int)
    if shapes.shape == config.BACKBONE_SHAPES.shape and (shapes == config.BACKBONE_SHAPES).all():
        return None
    return (f"shapes equal to those of BACKBONE_STRIDES = {list(config.BACKBONE_STRIDES)} "
            f"({config.BACKBONE_SHAPES.tolist()}), since kseg builds the anchors from the "
            f"strides; it gives {shapes.tolist()}: set BACKBONE_STRIDES to your backbone's")


def _is_int(value):
    return isinstance(value, (int, np.integer))
