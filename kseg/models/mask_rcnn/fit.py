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


def _as_batches(data, mrcnn, shuffle, augmentation, workers, cache,
                no_augmentation_sources=None):
    """A kseg Dataset becomes the training input: on TensorFlow a tf.data pipeline
    (`TFPipeline`: parallel per-image loading, sharded under the config's strategy),
    elsewhere a `MaskRCNNSequence` (`workers` threads, processes when > 1). A PyDataset or
    tf.data passes through."""
    from kseg.data.dataset import Dataset
    from kseg.data.pipelines.maskrcnn_pipeline import MaskRCNNSequence, make_tf_dataset

    if data is None or not isinstance(data, Dataset):
        if shuffle and no_augmentation_sources:
            raise ValueError("no_augmentation_sources needs a kseg Dataset (the pipeline "
                             f"that augments), got {type(data).__name__}; leave out "
                             "augmentation in your own pipeline instead")
        return data
    config = mrcnn.config
    if cache is None:
        cache = augmentation is None and config.IMAGE_RESIZE_MODE != "crop"
    steps = config.STEPS_PER_EPOCH if shuffle else config.VALIDATION_STEPS
    options = dict(shuffle=shuffle, augmentation=augmentation if shuffle else None,
                   steps_per_epoch=steps or None, cache=cache,
                   no_augmentation_sources=no_augmentation_sources if shuffle else None)
    if keras.backend.backend() == "tensorflow":
        from kseg.data.pipelines.tf_pipeline import fit_input

        return fit_input(lambda context: make_tf_dataset(
            data, config, input_context=context, pipeline=True, **options),
            distribute.get_strategy(config))
    return MaskRCNNSequence(data, config, workers=workers, use_multiprocessing=workers > 1,
                            **options)


def _fit_data(batches):
    """(what the guard reads, what `fit` takes) from `_as_batches`' result."""
    return batches if isinstance(batches, tuple) else (batches, batches)


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
              custom_callbacks=None, verbose=1, workers=1, cache=None,
              no_augmentation_sources=None):
    """Fit from `mrcnn.epoch` to `epochs`; returns the Keras History."""
    train, train_data = _fit_data(_as_batches(train_dataset, mrcnn, True, augmentation, workers,
                                              cache, no_augmentation_sources))
    val_source, val = _fit_data(_as_batches(val_dataset, mrcnn, False, None, workers, cache))
    if val is not None and mrcnn.config.VALIDATION_STEPS == 0:
        val = None
    callbacks = default_callbacks(mrcnn, train) + list(custom_callbacks or [])
    if hasattr(train, "epoch_callback"):
        callbacks.insert(0, train.epoch_callback())
    verbose = verbose if distribute.is_chief(mrcnn.config) else 0
    if verbose:
        lr = float(keras.ops.convert_to_numpy(mrcnn.keras_model.optimizer.learning_rate))
        print(f"\nStarting at epoch {mrcnn.epoch}. LR={lr:g}")
        print(f"Checkpoint path: {mrcnn.checkpoint_path}")
    with distribute.fit_scope(mrcnn.config):
        try:
            return mrcnn.keras_model.fit(train_data, validation_data=val, epochs=epochs,
                                         initial_epoch=mrcnn.epoch, callbacks=callbacks,
                                         verbose=verbose,
                                         shuffle=False)  # the pipelines shuffle (seeded)
        except Exception as error:
            for source in (train, val_source):  # a loader's error, not TensorFlow's wrapper
                if getattr(source, "error", None) is not None:
                    source.reraise(error)
            raise
