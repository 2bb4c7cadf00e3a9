"""Backbones of every kseg model, in one registry (`registry.py`), and the one ResNet.

    registry.py   BACKBONES, register_backbone, get_backbone (Mask R-CNN), ENCODERS views
    resnet.py     the ResNet (18/34/50/101 and Mask R-CNN's tiny one), Matterport's names
    vgg16.py      VGG16 (FCN / U-Net), Keras-applications names
    encoders.py   FCN / U-Net: build an encoder, read its skip taps, load its weights

Registered here: vgg16, resnet18/34/50/101 for FCN / U-Net (keras.applications-style
numerics); resnet50, resnet101, resnet_tiny, resnet_tiny2 for Mask R-CNN (Matterport's).

May import: Keras, h5py, kseg.saving; nothing of kseg above `kseg.models`.
"""

from kseg.models.backbones import resnet
from kseg.models.backbones.encoders import (
    IMAGENET_URL,
    build_encoder,
    encoder_features,
    imagenet_weights_path,
    load_encoder_weights,
)
from kseg.models.backbones.registry import (
    BACKBONES,
    ENCODERS,
    FCN_TAPS,
    IMAGENET_FILES,
    Backbone,
    get_backbone,
    get_encoder,
    register_backbone,
)
from kseg.models.backbones.resnet import resnet18, resnet34, resnet50, resnet101
from kseg.models.backbones.vgg16 import vgg16

__all__ = ["BACKBONES", "ENCODERS", "FCN_TAPS", "IMAGENET_FILES", "IMAGENET_URL", "Backbone",
           "build_encoder", "encoder_features", "get_backbone", "get_encoder",
           "imagenet_weights_path", "load_encoder_weights", "register_backbone", "resnet18",
           "resnet34", "resnet50", "resnet101", "vgg16"]

register_backbone(
    "vgg16", encoder=vgg16,
    skips=("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3",
           "block5_pool"), skip_strides=(1, 2, 4, 8, 16, 32),
    fcn_taps=("block3_pool", "block4_pool", "block5_pool"),
    imagenet_file="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")
for _depth, _encoder in ((18, resnet18), (34, resnet34), (50, resnet50), (101, resnet101)):
    _taps = resnet.stage_outputs(_depth)
    register_backbone(
        f"resnet{_depth}", encoder=_encoder, skips=_taps, skip_strides=(2, 4, 8, 16, 32),
        fcn_taps=_taps[2:], imagenet_file={50: "resnet50_weights_tf_dim_ordering_tf_kernels_"
                                               "notop.h5"}.get(_depth))

# Matterport-sized whatever BACKBONE_FILTERS says (it sizes the tiny backbones only), so
# mask_rcnn_coco.h5 and the ImageNet file always fit.
register_backbone("resnet50", lambda image, train_bn, filters=64:
                  resnet.resnet_graph(image, "resnet50", True, train_bn))
register_backbone("resnet101", lambda image, train_bn, filters=64:
                  resnet.resnet_graph(image, "resnet101", True, train_bn))
register_backbone("resnet_tiny", lambda image, train_bn, filters=32:
                  resnet.resnet_tiny_graph(image, train_bn, filters))
register_backbone("resnet_tiny2", lambda image, train_bn, filters=32:
                  resnet.resnet_tiny_graph(image, train_bn, filters, blocks=(2, 2, 2, 2)))
