"""Tiny configs shared by the reliability tests."""

from kseg.models.mask_rcnn.config import MaskRCNNConfig

TINY = dict(NAME="tiny", NUM_CLASSES=4, IMAGES_PER_GPU=2, IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=64,
            BACKBONE="resnet_tiny", BACKBONE_FILTERS=8, TOP_DOWN_PYRAMID_SIZE=16,
            RPN_CONV_FILTERS=16, FPN_CLASSIF_FC_LAYERS_SIZE=32, MASK_HEAD_FILTERS=16,
            RPN_ANCHOR_SCALES=(8, 16, 32, 64, 128), RPN_TRAIN_ANCHORS_PER_IMAGE=32,
            PRE_NMS_LIMIT=200, POST_NMS_ROIS_TRAINING=64, POST_NMS_ROIS_INFERENCE=32,
            TRAIN_ROIS_PER_IMAGE=16, MAX_GT_INSTANCES=6, MINI_MASK_SHAPE=(14, 14),
            MASK_POOL_SIZE=7, MASK_SHAPE=[14, 14], DETECTION_MAX_INSTANCES=8,
            DETECTION_MIN_CONFIDENCE=0.0, TRAIN_BN=True, OPTIMIZER="adam", LEARNING_RATE=1e-3,
            STEPS_PER_EPOCH=2, VALIDATION_STEPS=0, SEED=0)


def tiny_mask_rcnn_config(**overrides):
    return MaskRCNNConfig(**{**TINY, **overrides})
