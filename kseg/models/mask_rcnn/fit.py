"""`MaskRCNN.train`'s loop: input pipelines, callbacks, `keras.Model.fit`.

Under a multi_worker DISTRIBUTION only the chief writes checkpoints, logs and progress.
"""

import os

import keras

from kseg import distribute
from kseg.models.mask_rcnn.checkpoints import save_weights_by_name
from kseg.saving.checkpoint import AtomicCSVLogger, CheckpointWriter, check_writable
from kseg.utils.nonfinite import NonFiniteGuard


class NamedCheckpoint(CheckpointWriter):
    """Save weights by layer name after every epoch (kseg's one atomic checkpoint writer;
    Matterport's file names)."""

    def __init__(self, path_template, keras_model):
        super().__init__(path_template, save_fn=save_weights_by_name, target=keras_model)
        self.path_template = path_template


def _as_batches(data, mrcnn, shuffle, augmentation, workers, cache):
    """A kseg Dataset becomes a `MaskRCNNSequence`; a PyDataset/tf.data passes through."""
    from kseg.data.dataset import Dataset
    from kseg.data.maskrcnn_pipeline import MaskRCNNSequence

    if data is None or not isinstance(data, Dataset):
        return data
    config = mrcnn.config
    if cache is None:
        cache = augmentation is None and config.IMAGE_RESIZE_MODE != "crop"
    steps = config.STEPS_PER_EPOCH if shuffle else config.VALIDATION_STEPS
    return MaskRCNNSequence(data, config, shuffle=shuffle,
                            augmentation=augmentation if shuffle else None,
                            steps_per_epoch=steps or None, cache=cache, workers=workers,
                            use_multiprocessing=workers > 1)


def default_callbacks(mrcnn, train=None):
    """Checkpoint, NaN / Inf guard, CSV log (and TensorBoard when installed). Under
    multi_worker the files come from the chief only; the guard runs on every worker."""
    if not distribute.is_chief(mrcnn.config):
        return [NonFiniteGuard(mrcnn.config.NONFINITE_LOSS, train, mrcnn.config, None)]
    check_writable(mrcnn.log_dir)  # a clear error before training starts
    checkpoint = NamedCheckpoint(mrcnn.checkpoint_path, mrcnn.keras_model)
    callbacks = [checkpoint,
                 NonFiniteGuard(mrcnn.config.NONFINITE_LOSS, train, mrcnn.config, checkpoint),
                 AtomicCSVLogger(os.path.join(mrcnn.log_dir, "history.csv"))]
    try:
        import tensorboard  # noqa: F401

        callbacks.append(keras.callbacks.TensorBoard(mrcnn.log_dir, write_graph=False))
    except ImportError:
        pass
    return callbacks


def fit_model(mrcnn, train_dataset, val_dataset, epochs, augmentation=None,
              custom_callbacks=None, verbose=1, workers=1, cache=None):
    """Fit from `mrcnn.epoch` to `epochs`; returns the Keras History."""
    train = _as_batches(train_dataset, mrcnn, True, augmentation, workers, cache)
    val = _as_batches(val_dataset, mrcnn, False, None, workers, cache)
    if val is not None and mrcnn.config.VALIDATION_STEPS == 0:
        val = None
    callbacks = default_callbacks(mrcnn, train) + list(custom_callbacks or [])
    verbose = verbose if distribute.is_chief(mrcnn.config) else 0
    if verbose:
        lr = float(keras.ops.convert_to_numpy(mrcnn.keras_model.optimizer.learning_rate))
        print(f"\nStarting at epoch {mrcnn.epoch}. LR={lr:g}")
        print(f"Checkpoint path: {mrcnn.checkpoint_path}")
    with distribute.fit_scope(mrcnn.config):
        return mrcnn.keras_model.fit(train, validation_data=val, epochs=epochs,
                                     initial_epoch=mrcnn.epoch, callbacks=callbacks,
                                     verbose=verbose,
                                     shuffle=False)  # MaskRCNNSequence shuffles itself (seeded)
