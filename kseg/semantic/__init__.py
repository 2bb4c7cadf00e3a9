"""The semantic models' (FCN, U-Net) training, prediction, losses and metrics.

    train.py     compile from a config, fit with atomic checkpoints, resume
    predict.py   predict / evaluate at the original image size, priors, result tables
    losses.py    cross-entropy, dice, focal and their sums (`LOSS = "ce+dice"`)
    metrics.py   mean IoU, dice, pixel accuracy as Keras metrics
    jobs.py      train then evaluate, evaluate a checkpoint, predict a folder of images
    samples.py   the command line the semantic samples share (train/evaluate/predict/prior)

The builders live in `kseg.models` (`build_fcn`, `build_unet`). May import: kseg.config,
kseg.data, kseg.ops, kseg.models, kseg.evaluate, kseg.visualize, kseg.utils (never kseg.cli).
"""
