"""kseg model builders: FCN, U-Net and Mask R-CNN."""
