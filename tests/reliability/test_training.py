"""Training that meets NaN / Inf, full disks and unwritable folders: a clear stop, nothing
lost, nothing half-written."""

import csv
import warnings

import keras
import numpy as np
import pytest

from kseg.config import UNetConfig
from kseg.models.unet import UNet
from kseg.saving.checkpoint import AtomicCSVLogger, CheckpointError, CheckpointWriter
from kseg.semantic.train import checkpoint_path, train_semantic
from kseg.utils.nonfinite import NonFiniteGuard, NonFiniteLossError, batch_image_ids


def _config(**overrides):
    fields = dict(NAME="Tiny", NUM_CLASSES=2, IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=64, IMAGES_PER_GPU=2,
                  STEPS_PER_EPOCH=3, VALIDATION_STEPS=0, UNET_DEPTH=2, UNET_BASE_FILTERS=4,
                  SEED=0, LR_SCHEDULE=None)
    fields.update(overrides)
    return UNetConfig(**fields)


def _model():
    return UNet(2, depth=2, base_filters=4)


class Batches(keras.utils.PyDataset):
    """3 batches of 2 images 64x64; batch `nan_batch` holds a NaN pixel. Batch i shows the
    dataset images 10*i and 10*i + 1 (what `batch_image_ids` reports)."""

    def __init__(self, nan_batch=None):
        super().__init__()
        self.nan_batch = nan_batch
        rng = np.random.default_rng(0)
        self.images = rng.uniform(0, 255, [3, 2, 64, 64, 3]).astype(np.float32)
        self.maps = (self.images[..., 0] > 128).astype(np.int32)

    def __len__(self):
        return 3

    def batch_image_ids(self, index):
        return [10 * index, 10 * index + 1]

    def __getitem__(self, index):
        images = self.images[index].copy()
        if index == self.nan_batch:
            images[1, 5, 5, 0] = np.nan
        return images, self.maps[index]


def test_nan_loss_stops_naming_loss_step_images_and_keeps_the_last_checkpoint(tmp_path):
    config = _config()
    model = _model()
    first = train_semantic(model, config, Batches(), None, epochs=1, model_dir=tmp_path,
                           verbose=0)
    good = first.checkpoint.read_bytes()
    with pytest.raises(NonFiniteLossError) as error:
        train_semantic(model, config, Batches(nan_batch=1), None, epochs=3, model_dir=tmp_path,
                       weights="last", verbose=0)
    text = str(error.value)
    assert "epoch 2, step 2: loss=nan" in text and "ids [10, 11]" in text
    assert "learning rate" in text and "GRADIENT_CLIP_NORM=None" in text
    assert f"last good checkpoint {first.checkpoint} is kept" in text
    run = first.log_dir
    assert sorted(p.name for p in run.glob("*.h5")) == ["kseg_tiny_0001.weights.h5"]
    assert first.checkpoint.read_bytes() == good
    rows = list(csv.DictReader(open(run / "history.csv")))
    assert [r["epoch"] for r in rows] == ["0"]  # the NaN epoch is not logged


def test_nan_loss_skipped_when_asked_counts_and_trains_on(tmp_path):
    config = _config(NONFINITE_LOSS="skip")
    model = _model()
    with pytest.warns(UserWarning, match=r"epoch 1: skipped 1 step\(s\).*step 2 \(images "
                                         r"\[10, 11\]\)"):
        history = train_semantic(model, config, Batches(nan_batch=1), None, epochs=1,
                                 model_dir=tmp_path, verbose=0)
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert np.isfinite(history.history["loss"][0])
    assert history.checkpoint.exists()


def test_guard_names_mask_rcnn_losses_and_the_batch_images():
    from kseg.data import ShapesDataset
    from kseg.data.pipelines.maskrcnn_pipeline import MaskRCNNSequence
    from kseg.models.mask_rcnn.config import MaskRCNNConfig

    config = MaskRCNNConfig(NUM_CLASSES=4, IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=64,
                            BACKBONE="resnet_tiny", RPN_ANCHOR_SCALES=(8, 16, 32, 64, 128))
    data = MaskRCNNSequence(ShapesDataset(6, 64, 64, seed=0), config, seed=3)
    expected = batch_image_ids(data, 2)
    assert len(expected) == 2 and expected == [data._image_id(4), data._image_id(5)]
    guard = NonFiniteGuard("stop", data, config)
    guard.on_epoch_begin(0)
    guard.on_train_batch_end(1, {"loss": 1.0, "mrcnn_mask_loss": 0.5})  # finite: nothing
    with pytest.raises(NonFiniteLossError, match=rf"epoch 1, step 3: loss=inf, mrcnn_mask_loss"
                                                 rf"=nan; images of this batch: ids "
                                                 rf"\[{expected[0]}, {expected[1]}\]"):
        guard.on_train_batch_end(2, {"loss": float("inf"), "mrcnn_mask_loss": float("nan"),
                                     "rpn_class_loss": 0.1})


def test_full_disk_keeps_the_previous_checkpoint(tmp_path):
    model = _model()
    writer = CheckpointWriter(lambda epoch: checkpoint_path(tmp_path, "tiny", epoch))
    writer.set_model(model)
    writer.on_train_begin()
    writer.on_epoch_end(0)
    previous = checkpoint_path(tmp_path, "tiny", 1)
    saved = previous.read_bytes()

    def full_disk(model, path):
        with open(path, "wb") as f:
            f.write(b"\x89HDF\r\n\x1a\n half")
        raise OSError(28, "No space left on device")

    writer.save_fn = full_disk
    with pytest.raises(CheckpointError, match=r"kseg_tiny_0002\.weights\.h5 \(No space left.*"
                                              r"kseg_tiny_0001\.weights\.h5 is intact"):
        writer.on_epoch_end(1)
    assert sorted(p.name for p in tmp_path.iterdir()) == [previous.name]
    assert previous.read_bytes() == saved


def test_nonfinite_epoch_is_not_checkpointed(tmp_path):
    writer = CheckpointWriter(str(tmp_path / "w_{epoch:04d}.weights.h5"))
    writer.set_model(_model())
    with pytest.warns(UserWarning, match="NaN / Inf, so w_0001.weights.h5 was not written"):
        writer.on_epoch_end(0, {"loss": float("nan")})
    assert list(tmp_path.iterdir()) == []


def test_unwritable_model_dir_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    model = _model()
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(CheckpointError, match=r"file.logs.*cannot write checkpoints"):
        train_semantic(model, _config(), Batches(), None, model_dir=blocker / "logs", verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_unwritable_model_dir_fails_before_mask_rcnn_training(tmp_path):
    from helpers_reliability import tiny_mask_rcnn_config

    from kseg.data import ShapesDataset
    from kseg.models.mask_rcnn.model import MaskRCNN

    blocker = tmp_path / "file"
    blocker.write_text("x")
    model = MaskRCNN("training", tiny_mask_rcnn_config(), model_dir=blocker / "logs")
    with pytest.raises(CheckpointError, match="cannot write checkpoints"):
        model.train(ShapesDataset(2, 64, 64), None, 1e-3, 1, verbose=0)
    assert model.epoch == 0


def test_csv_log_rewrites_atomically_and_drops_rows_of_replayed_epochs(tmp_path):
    path = tmp_path / "history.csv"
    logger = AtomicCSVLogger(path)
    logger.set_model(_model())
    for epoch in range(3):
        logger.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1)})
    resumed = AtomicCSVLogger(path)  # a run killed after epoch 3's row, resumed at epoch 2
    resumed.set_model(_model())
    resumed.on_epoch_end(1, {"loss": 0.25})
    rows = list(csv.DictReader(open(path)))
    assert [(r["epoch"], float(r["loss"])) for r in rows] == [("0", 1.0), ("1", 0.25)]
    assert [p.name for p in tmp_path.iterdir()] == ["history.csv"]


def test_resume_restores_the_logged_learning_rate(tmp_path):
    config = _config()
    first = train_semantic(_model(), config, Batches(), None, epochs=1, model_dir=tmp_path,
                           verbose=0)
    csv_path = first.log_dir / "history.csv"
    text = csv_path.read_text()
    assert ",0.0010000000474974513" in text or ",0.001" in text
    # as ReduceLROnPlateau would have logged it before the run was killed
    rows = list(csv.DictReader(open(csv_path)))
    rows[0]["learning_rate"] = "0.00025"
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    model = _model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_semantic(model, config, Batches(), None, epochs=2, model_dir=tmp_path,
                       weights="last", verbose=0)
    rows = list(csv.DictReader(open(csv_path)))
    assert [r["epoch"] for r in rows] == ["0", "1"]
    assert float(rows[1]["learning_rate"]) == pytest.approx(0.00025)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.00025)
