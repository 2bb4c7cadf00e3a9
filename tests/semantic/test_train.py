"""train_semantic / evaluate_semantic / predict_semantic, checkpoints and resuming."""

from pathlib import Path

import numpy as np
import pytest

from kseg.config import FCNConfig, UNetConfig
from kseg.data.generated.synthetic import RoadScenesDataset
from kseg.models.unet import UNet
from kseg.semantic.train import (
    AtomicCheckpoint,
    InMemoryDataset,
    checkpoint_path,
    epoch_from_checkpoint,
    evaluate_semantic,
    find_last,
    mean_mask_prior,
    predict_semantic,
    train_semantic,
)

ROOT = Path(__file__).resolve().parents[1]


def _config(**overrides):
    fields = dict(NAME="Tiny", NUM_CLASSES=2, IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=64, IMAGES_PER_GPU=2,
                  STEPS_PER_EPOCH=2, VALIDATION_STEPS=1, UNET_DEPTH=2, UNET_BASE_FILTERS=4,
                  OUTPUT_ACTIVATION="sigmoid", LOSS="ce+dice", SEED=0)
    fields.update(overrides)
    return UNetConfig(**fields)


def _model(config):
    return UNet(2, depth=2, base_filters=4, output_activation=config.OUTPUT_ACTIVATION)


def test_checkpoint_names_and_find_last(tmp_path):
    path = checkpoint_path(tmp_path / "tiny20240101T0000", "Tiny", 3)
    assert path.name == "kseg_tiny_0003.weights.h5" and epoch_from_checkpoint(path) == 3
    assert epoch_from_checkpoint("model.weights.h5") is None
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        find_last(tmp_path, "tiny")
    for run, epochs in (("tiny20240101T0000", (1, 2)), ("tiny20240102T0000", (1, 12, 3))):
        (tmp_path / run).mkdir()
        for epoch in epochs:
            checkpoint_path(tmp_path / run, "tiny", epoch).touch()
    (tmp_path / "tiny20240102T0000" / ".tmp-x.weights.h5").touch()
    last = tmp_path / "tiny20240102T0000" / "kseg_tiny_0012.weights.h5"
    assert find_last(tmp_path, "Tiny") == last


def test_checkpoint_is_atomic(tmp_path):
    model = _model(_config())
    callback = AtomicCheckpoint(tmp_path, "tiny")
    callback.set_model(model)
    original = model.save_weights

    def failing_save(path):
        original(path)
        raise OSError("disk full")

    model.save_weights = failing_save
    with pytest.raises(OSError):
        callback.on_epoch_end(0)
    assert list(tmp_path.iterdir()) == []
    model.save_weights = original
    callback.on_epoch_end(0)
    assert [p.name for p in tmp_path.iterdir()] == ["kseg_tiny_0001.weights.h5"]


def test_train_then_resume_continues_epochs(tmp_path):
    config = _config()
    train, val = RoadScenesDataset(6, 48, 64, seed=0), RoadScenesDataset(2, 48, 64, seed=1)
    history = train_semantic(_model(config), config, InMemoryDataset(train, config), val,
                             epochs=2, model_dir=tmp_path, verbose=0)
    run = history.log_dir
    assert run.parent == tmp_path and run.name.startswith("tiny")
    assert {"loss", "val_loss", "val_mean_iou", "iou_class1"} <= set(history.history)
    names = sorted(p.name for p in run.iterdir())
    assert names == ["config.json", "history.csv", "kseg_tiny_0001.weights.h5",
                     "kseg_tiny_0002.weights.h5"]
    assert UNetConfig.from_json(run / "config.json").UNET_BASE_FILTERS == 4
    resumed = train_semantic(_model(config), config, train, val, epochs=3, model_dir=tmp_path,
                             weights="last", verbose=0)
    assert resumed.log_dir == run and resumed.epoch == [2]
    assert resumed.checkpoint == run / "kseg_tiny_0003.weights.h5"
    assert len((run / "history.csv").read_text().strip().splitlines()) == 4  # header + 3 epochs
    with pytest.raises(ValueError, match="ENCODER_WEIGHTS"):
        train_semantic(_model(config), config, train, None, weights="imagenet")


def test_predict_and_evaluate_at_original_size():
    config = _config()
    model = _model(config)
    images = [np.zeros((30, 50, 3), np.uint8), np.full((64, 20, 3), 200, np.uint8),
              np.zeros((30, 50, 3), np.uint8)]
    class_maps, probs = predict_semantic(model, config, images)
    assert [m.shape for m in class_maps] == [(30, 50), (64, 20), (30, 50)]
    assert probs[1].shape == (64, 20, 2)
    np.testing.assert_allclose(probs[0].sum(-1), 1.0, atol=1e-5)
    dataset = RoadScenesDataset(3, 40, 72, seed=2)
    results = evaluate_semantic(model, dataset, config)
    assert results["num_images"] == 3 and results["class_names"] == ["BG", "road"]
    assert 0 <= results["mean_iou"] <= 1 and 0 <= results["maxf"] <= 1
    assert np.asarray(results["confusion_matrix"]).sum() == 3 * 40 * 72


def test_in_memory_dataset_prescales_to_the_molded_size():
    base = RoadScenesDataset(2, 100, 50, seed=0)
    cached = InMemoryDataset(base, _config())
    assert cached.load_image(1).shape == (64, 32, 3)
    assert cached.load_semantic_mask(1).shape == (64, 32)
    assert set(np.unique(cached.load_semantic_mask(1))) <= {0, 1}
    assert cached.class_names == base.class_names and len(cached.image_ids) == 2


def test_mean_mask_prior_by_hand():
    train = RoadScenesDataset(4, 32, 32, seed=0)
    results = mean_mask_prior(train, train)
    road = np.mean([train.load_semantic_mask(i).mean() for i in train.image_ids])
    assert results["all_foreground"]["iou"]["road"] == pytest.approx(road)
    assert results["mean_mask"]["iou"]["road"] > 0.3


def test_fcn_config_trains_one_epoch(tmp_path):
    from kseg.models.fcn import build_fcn

    config = FCNConfig(NAME="fcn", NUM_CLASSES=2, IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=64,
                       IMAGES_PER_GPU=2, STEPS_PER_EPOCH=1, VALIDATION_STEPS=0,
                       ENCODER_WIDTH=0.0625, FCN_FC_FILTERS=8, OPTIMIZER="sgd",
                       LR_SCHEDULE=None, EARLY_STOPPING_PATIENCE=2, TRAIN_BN=False)
    history = train_semantic(build_fcn(config), config, RoadScenesDataset(2, 64, 64), None,
                             epochs=1, model_dir=tmp_path, verbose=0)
    assert np.isfinite(history.history["loss"][0])




def test_test_time_flip_averages_the_mirrored_prediction():
    config = _config()
    model = _model(config)
    image = np.random.default_rng(0).integers(0, 255, (40, 64, 3), dtype=np.uint8)
    _, (plain,) = predict_semantic(model, config, [image])
    _, (mirror,) = predict_semantic(model, config, [image[:, ::-1]])
    _, (both,) = predict_semantic(model, config, [image], flip=True)
    np.testing.assert_allclose(both, 0.5 * (plain + mirror[:, ::-1]), atol=1e-5)
    assert not np.allclose(both, plain, atol=1e-4)
    dataset = RoadScenesDataset(2, 40, 64, seed=1)
    flipped = evaluate_semantic(model, dataset, config, flip=True)
    assert np.asarray(flipped["confusion_matrix"]).sum() == 2 * 40 * 64
