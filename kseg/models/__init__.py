"""kseg model builders: FCN, U-Net and Mask R-CNN.

    fcn.py, unet.py, semantic_layers.py   the semantic models (`build_fcn`, `build_unet`)
    backbones/                            one backbone registry (FCN, U-Net, Mask R-CNN), the
                                          one ResNet (18/34/50/101, tiny), VGG16
    mask_rcnn/                            Mask R-CNN, one stage a module, `MaskRCNN`
    runs.py                               rebuild any trained run for inference

May import: kseg.config, kseg.ops, kseg.data, kseg.saving, kseg.weights, kseg.utils
(never kseg.semantic, kseg.export or kseg.cli).
"""
