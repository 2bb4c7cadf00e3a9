"""Training FCN / U-Net models: compile from a config, fit, checkpoint, resume.

    history = train_semantic(model, config, train_ds, val_ds, epochs=10, model_dir="logs")
    train_semantic(model, config, train_ds, val_ds, epochs=20, weights="last")  # resume

Logs go to `model_dir/<name><YYYYmmddTHHMM>/`: `config.json`, one checkpoint per epoch
`kseg_<name>_<epoch:04d>.weights.h5` (written to a temporary file, then `os.replace`d,
so no half-written checkpoint is ever left), `history.csv`, and TensorBoard events
when tensorboard is installed. Resuming from a checkpoint (`weights="last"` or its
path) continues in its folder and its epoch numbering, as Matterport's `set_log_dir`.

`evaluate_semantic` and `predict_semantic` (re-exported from `kseg.semantic.predict`)
work at the ORIGINAL image size.

Several devices: build the model with `build_fcn(config)` / `build_unet(config)` (under the
config's DISTRIBUTION strategy); `train_semantic` compiles and fits under it, and on a
multi_worker cluster only the chief writes the run folder (see `kseg.distribute`).
"""

import importlib.util
import math
import re
from pathlib import Path

import keras
import numpy as np

from kseg import distribute
from kseg.data.dataset import Dataset
from kseg.data.pipelines.molding import resize
from kseg.models.optimizers import make_optimizer as _make_optimizer
from kseg.saving.checkpoint import AtomicCSVLogger, CheckpointWriter, check_writable
from kseg.saving.files import load_weights_atomic
from kseg.semantic.losses import loss_from_config
from kseg.semantic.metrics import default_metrics
from kseg.semantic.predict import evaluate_semantic, mean_mask_prior, predict_semantic
from kseg.utils.nonfinite import NonFiniteGuard
from kseg.utils.runs import find_last, new_log_dir, write_run_config

__all__ = ["AtomicCheckpoint", "InMemoryDataset", "checkpoint_path", "compile_semantic",
           "epoch_from_checkpoint", "evaluate_semantic", "find_last", "make_optimizer",
           "mean_mask_prior", "predict_semantic", "train_semantic"]

CHECKPOINT_RE = re.compile(r"^kseg_(?P<name>.+)_(?P<epoch>\d{4,})\.weights\.h5$")


# === Log folders and checkpoints ===
def checkpoint_path(log_dir, name, epoch):
    """`log_dir/kseg_<name>_<epoch:04d>.weights.h5` (epoch counted from 1)."""
    return Path(log_dir) / f"kseg_{name.lower()}_{int(epoch):04d}.weights.h5"


def epoch_from_checkpoint(path):
    """The epoch number in a checkpoint file name, or None if it is not one of ours."""
    match = CHECKPOINT_RE.match(Path(path).name)
    return int(match.group("epoch")) if match else None


class AtomicCheckpoint(CheckpointWriter):
    """Save the model's weights after every epoch to `checkpoint_path(log_dir, name, epoch)`
    with kseg's one checkpoint writer (temporary file in the same folder, `os.replace`)."""

    def __init__(self, log_dir, name):
        super().__init__(lambda epoch: checkpoint_path(log_dir, name, epoch))
        self.log_dir, self.name = Path(log_dir), name


# === Compiling ===
def make_optimizer(config):
    """`kseg.models.optimizers.make_optimizer` (OPTIMIZER, LEARNING_RATE, LEARNING_MOMENTUM,
    decoupled WEIGHT_DECAY except BatchNorm gamma/beta, GRADIENT_CLIP_NORM), wrapped for
    loss scaling under mixed_float16."""
    return distribute.wrap_optimizer(_make_optimizer(config), config)


def compile_semantic(model, config, metrics=None):
    """Compile with the config's optimizer, loss (LOSS, CLASS_WEIGHTS, IGNORE_INDEX) and
    `default_metrics`; freezes BatchNorm layers when TRAIN_BN is False."""
    if config.TRAIN_BN is False:
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False
    distribute.check_model(model, config)
    with distribute.scope(config):  # metric and optimizer state on the model's devices
        if metrics is None:
            metrics = default_metrics(config.NUM_CLASSES, config.OUTPUT_ACTIVATION,
                                      config.IGNORE_INDEX)
        model.compile(optimizer=make_optimizer(config), loss=loss_from_config(config),
                      metrics=metrics,
                      jit_compile=distribute.jit_compile_setting(config.JIT_COMPILE))
    return model


# === Callbacks ===
def cosine_schedule(base_lr, epochs, min_fraction=0.01):
    """Per-epoch cosine decay from base_lr to base_lr * min_fraction over `epochs`."""

    def schedule(epoch, lr=None):
        progress = min(epoch / max(epochs - 1, 1), 1.0)
        cosine = 0.5 * (1 + math.cos(math.pi * progress))
        return base_lr * (min_fraction + (1 - min_fraction) * cosine)

    return schedule


def make_callbacks(config, log_dir, epochs, has_validation):
    """Checkpoint, CSV log, LR schedule, optional early stopping and TensorBoard. A
    non-chief worker of a multi_worker cluster gets only the LR and stopping callbacks
    (which every worker must run alike), and no files."""
    monitor = "val_loss" if has_validation else "loss"
    chief = distribute.is_chief(config)
    callbacks = [AtomicCheckpoint(log_dir, config.NAME),
                 AtomicCSVLogger(Path(log_dir) / "history.csv")]
    callbacks = callbacks if chief else []
    if config.LR_SCHEDULE == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=0.5,
                                                           patience=3, min_lr=1e-6))
    elif config.LR_SCHEDULE == "cosine":
        callbacks.append(keras.callbacks.LearningRateScheduler(
            cosine_schedule(config.LEARNING_RATE, epochs)))
    if config.EARLY_STOPPING_PATIENCE:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=monitor, patience=config.EARLY_STOPPING_PATIENCE, restore_best_weights=True))
    if chief and importlib.util.find_spec("tensorboard") is not None:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(log_dir), write_graph=False))
    return callbacks


# === Data ===
class InMemoryDataset(Dataset):
    """A training copy of `dataset` held in memory, each sample pre-scaled to fit the config's
    IMAGE_MAX_DIM ("square" mode; other modes keep the original size).

    The pipeline's own resize then has scale 1, so epochs after the first skip decoding
    and resizing. Evaluate on the original dataset (original-size ground truth).
    load_image -> [h, w, 3] uint8; load_semantic_mask -> [h, w] int32.
    """

    def __init__(self, dataset, config):
        super().__init__()
        self.base, self.config = dataset, config
        self.image_info = [dict(info) for info in dataset.image_info]
        self.class_info = list(dataset.class_info)
        self.prepare()
        self._cache = {}

    def _load(self, image_id):
        if image_id not in self._cache:
            image = self.base.load_image(image_id)
            class_map = np.asarray(self.base.load_semantic_mask(image_id), np.int32)
            if self.config.IMAGE_RESIZE_MODE == "square":
                scale = self.config.IMAGE_MAX_DIM / max(image.shape[:2])
                size = tuple(max(1, round(side * scale)) for side in image.shape[:2])
                if size != image.shape[:2]:
                    image = resize(image, size).round().astype(np.uint8)
                    class_map = resize(class_map, size, order=0).astype(np.int32)
            self._cache[image_id] = (image, class_map)
        return self._cache[image_id]

    def load_image(self, image_id):
        return self._load(image_id)[0].copy()

    def load_semantic_mask(self, image_id):
        return self._load(image_id)[1].copy()

    def image_size(self, image_id):
        return self._load(image_id)[0].shape[:2]

    def image_reference(self, image_id):
        return self.base.image_reference(image_id)


class RepeatedSequence(keras.utils.PyDataset):
    """`steps` batches per epoch drawn cyclically from a sequence of any length."""

    def __init__(self, sequence, steps):
        super().__init__(workers=getattr(sequence, "workers", 1),
                         use_multiprocessing=getattr(sequence, "use_multiprocessing", False),
                         max_queue_size=getattr(sequence, "max_queue_size", 10))
        self.sequence, self.steps = sequence, int(steps)

    def __len__(self):
        return self.steps

    def __getitem__(self, index):
        return self.sequence[index % len(self.sequence)]

    def on_epoch_end(self):
        self.sequence.on_epoch_end()


def as_sequence(data, config, shuffle, augmentation=None, steps=None):
    """A Dataset -> `SemanticSequence`; a PyDataset is used as is. Repeated to `steps`."""
    if not isinstance(data, keras.utils.PyDataset):
        from kseg.data.pipelines.semantic_pipeline import SemanticSequence

        data = SemanticSequence(data, config, shuffle=shuffle, augmentation=augmentation)
    if steps and steps != len(data):
        data = RepeatedSequence(data, steps)
    return data


def as_input(data, config, shuffle, augmentation=None, steps=None):
    """(what the NaN guard reads, what `fit` takes) for a Dataset or a PyDataset.

    TensorFlow backend: a Dataset goes through the tf.data pipeline (`make_tf_dataset`:
    parallel per-sample loading, prefetch, sharded under the config's strategy); elsewhere,
    and for a PyDataset, `as_sequence`.
    """
    if keras.backend.backend() != "tensorflow" or isinstance(data, keras.utils.PyDataset) \
            or type(data).__module__.startswith("tensorflow"):
        data = as_sequence(data, config, shuffle, augmentation, steps)
        return data, data
    from kseg.data.pipelines.semantic_pipeline import make_tf_dataset
    from kseg.data.pipelines.tf_pipeline import fit_input

    return fit_input(lambda context: make_tf_dataset(
        data, config, shuffle=shuffle, augmentation=augmentation, input_context=context,
        steps=steps, pipeline=True), distribute.get_strategy(config))


# === Training ===
def resolve_weights(model, weights, model_dir, name):
    """Load `weights` (None, "last" or a path) -> (log dir to continue or None, epoch)."""
    if weights is None or str(weights).lower() == "none":
        return None, 0
    if str(weights).lower() == "imagenet":
        raise ValueError("weights='imagenet' is an encoder setting: set "
                         "config.ENCODER_WEIGHTS = 'imagenet' before building the model.")
    path = find_last(model_dir, name) if weights == "last" else Path(weights)
    if not path.exists():
        raise FileNotFoundError(f"weights file not found: {path}")
    load_weights_atomic(model, path)
    epoch = epoch_from_checkpoint(path)
    return (path.parent, epoch) if epoch is not None else (None, 0)


def restore_learning_rate(model, csv_path, epoch):
    """Set the optimizer's learning rate to the one logged for `epoch` (counted from 1) in
    the run's history.csv, so a resumed run keeps ReduceLROnPlateau's reductions."""
    import csv

    if not Path(csv_path).exists():
        return None
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r.get("learning_rate")
                and r.get("epoch", "").isdigit() and int(r["epoch"]) < epoch]
    if not rows:
        return None
    lr = float(rows[-1]["learning_rate"])
    model.optimizer.learning_rate = lr
    return lr


def train_semantic(model, config, train_dataset, val_dataset=None, epochs=1, model_dir="logs",
                   augmentation=None, weights=None, callbacks=None, verbose=1):
    """Compile `model` from `config` and fit it; returns the Keras `History`.

    Args:
        model: an FCN / U-Net `keras.Model` (output of the input's size).
        config: its `SemanticConfig` (STEPS_PER_EPOCH, VALIDATION_STEPS, BATCH_SIZE, ...).
        train_dataset, val_dataset: kseg `Dataset`s (wrapped in `SemanticSequence`) or
            PyDatasets of (images [B, S, S, 3] float 0..255, class maps [B, S, S] int32).
        epochs: the epoch number to train up to (resumed runs continue their numbering).
        model_dir: parent of the run folders.
        augmentation: passed to the training `SemanticSequence`.
        weights: None, "last" (newest checkpoint of config.NAME in model_dir) or a path.
        callbacks: extra Keras callbacks.
    The History gains `log_dir` and `checkpoint` (path of the last saved epoch).
    """
    log_dir, initial_epoch = resolve_weights(model, weights, model_dir, config.NAME)
    chief = distribute.is_chief(config)
    if chief:
        log_dir = check_writable(log_dir or new_log_dir(model_dir, config.NAME))
        write_run_config(config, log_dir, getattr(train_dataset, "class_names", None))
    else:
        log_dir = Path(log_dir or new_log_dir(model_dir, config.NAME))
    compile_semantic(model, config)
    if initial_epoch and (log_dir / "history.csv").exists():
        restore_learning_rate(model, log_dir / "history.csv", initial_epoch)
    train, train_data = as_input(train_dataset, config, True, augmentation,
                                 config.STEPS_PER_EPOCH)
    val = val_data = None
    if val_dataset is not None and config.VALIDATION_STEPS:
        val, val_data = as_input(val_dataset, config, False)
    all_callbacks = make_callbacks(config, log_dir, epochs, val is not None) + list(callbacks or [])
    guard = NonFiniteGuard(config.NONFINITE_LOSS, train, config,
                           all_callbacks[0] if chief else None)
    all_callbacks.insert(1, guard)  # before the CSV log: a NaN epoch is not logged
    if hasattr(train, "epoch_callback"):
        all_callbacks.append(train.epoch_callback())
    val_steps = None if val is None else min(config.VALIDATION_STEPS, len(val))
    # The kseg sequences shuffle themselves (seeded); Keras' own shuffle of the batch order
    # would make runs unrepeatable and the NaN guard name the wrong images.
    with distribute.fit_scope(config):
        try:
            history = model.fit(train_data, validation_data=val_data, epochs=epochs,
                                initial_epoch=initial_epoch, validation_steps=val_steps,
                                callbacks=all_callbacks, verbose=verbose if chief else 0,
                                shuffle=False)
        except Exception as error:
            for source in (train, val):  # a loader's error, not TensorFlow's wrapper
                if getattr(source, "error", None) is not None:
                    source.reraise(error)
            raise
    history.log_dir = log_dir
    history.checkpoint = all_callbacks[0].last_path if chief else None
    return history
