"""kseg model builders: FCN, U-Net and Mask R-CNN.

    fcn.py, unet.py, semantic_layers.py   the semantic models (`build_fcn`, `build_unet`)
    backbones/                            encoders by name (VGG16, ResNet-34/50)
    mask_rcnn/                            Mask R-CNN, one stage a module, `MaskRCNN`
    runs.py                               rebuild any trained run for inference

May import: kseg.config, kseg.ops, kseg.data, kseg.saving, kseg.weights, kseg.utils
(never kseg.semantic, kseg.export or kseg.cli).
"""
