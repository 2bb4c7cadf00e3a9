"""kseg.semantic.samples: the samples' shared arguments, config overrides and commands."""

import numpy as np
import pytest
from PIL import Image

from kseg.config import UNetConfig
from kseg.data.generated.synthetic import SmokeScenesDataset
from kseg.semantic.samples import run_sample, sample_config, sample_parser


class TinySmoke(UNetConfig):
    NAME = "tiny_smoke"
    NUM_CLASSES = 2
    CLASS_NAMES = ["BG", "smoke"]
    UNET_DEPTH = 1
    UNET_BASE_FILTERS = 2
    IMAGE_MIN_DIM = 64
    IMAGE_MAX_DIM = 64
    IMAGES_PER_GPU = 2


def test_parser_defaults_and_overrides():
    parser = sample_parser("test", "a folder", default_epochs=7)
    args = parser.parse_args(["train"])
    assert (args.epochs, args.steps, args.weights, args.logs) == (7, None, None, "logs")
    assert sample_config(TinySmoke, args).IMAGE_MAX_DIM == 64
    args = parser.parse_args(["evaluate", "--steps", "3", "--image-size", "128"])
    config = sample_config(TinySmoke, args)
    assert (config.STEPS_PER_EPOCH, config.IMAGE_MIN_DIM, config.IMAGE_MAX_DIM) == (3, 128, 128)
    with pytest.raises(SystemExit):
        parser.parse_args(["fit"])


def test_encoder_weights_option(tmp_path, monkeypatch):
    parser = sample_parser("test", "a folder", default_epochs=1)
    config = sample_config(TinySmoke, parser.parse_args(["train", "--encoder-weights",
                                                         "imagenet"]))
    assert (config.ENCODER_WEIGHTS, config.ENCODER_WIDTH, config.BACKBONE) == \
        ("imagenet", 1.0, "vgg16")
    assert sample_config(TinySmoke, parser.parse_args(["train"])).ENCODER_WEIGHTS is None
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    from kseg.cli.semantic import build_model

    with pytest.raises(FileNotFoundError, match="vgg16_weights_tf_dim_ordering"):
        build_model(config)


def test_prior_train_evaluate(tmp_path, capsys):
    train, val = SmokeScenesDataset(4, 64, 64, seed=0), SmokeScenesDataset(2, 64, 64, seed=1)
    parser = sample_parser("test", "a folder", default_epochs=1)

    priors = run_sample(parser.parse_args(["prior"]), TinySmoke, train, val, None)
    assert set(priors) == {"mean_mask", "all_foreground"}
    out = capsys.readouterr().out
    assert "4 training and 2 validation images" in out
    assert "all_background" in out and "mean_mask" in out  # the three trivial predictors

    args = parser.parse_args(["train", "--steps", "1", "--logs", str(tmp_path)])
    history, trained = run_sample(args, TinySmoke, train, val, None)
    assert len(list(history.log_dir.glob("kseg_tiny_smoke_*.weights.h5"))) == 1
    overview = np.asarray(Image.open(history.log_dir / "val_overview.png").convert("RGB"))
    assert overview.shape[1] > overview.shape[0]  # 2 rows x 3 panels

    out = tmp_path / "val.json"
    args = parser.parse_args(["evaluate", "--logs", str(tmp_path), "--out", str(out)])
    capsys.readouterr()
    evaluated = run_sample(args, TinySmoke, train, val, None)
    assert evaluated["mean_iou"] == pytest.approx(trained["mean_iou"])
    table = capsys.readouterr().out.split("on the 2 validation images:")[1]
    assert [line.split()[0] for line in table.strip().splitlines()[2:6]] == \
        ["model", "all", "all", "mean"]
    smoke = np.mean([val.load_semantic_mask(i) > 0 for i in val.image_ids])
    assert evaluated["priors"]["all_background"]["pixel_accuracy"] == pytest.approx(1 - smoke)
    assert out.exists() and evaluated["weights"].endswith("kseg_tiny_smoke_0001.weights.h5")


def test_predict_writes_overlays_and_masks(tmp_path):
    train, val = SmokeScenesDataset(4, 64, 64, seed=0), SmokeScenesDataset(2, 64, 64, seed=1)
    parser = sample_parser("test", "a folder", default_epochs=1)
    run_sample(parser.parse_args(["train", "--steps", "1", "--logs", str(tmp_path)]),
               TinySmoke, train, val, None)
    images = tmp_path / "photos"
    images.mkdir()
    Image.fromarray(val.load_image(0)).save(images / "a.png")
    Image.fromarray(val.load_image(1)[:50, :37]).save(images / "b.jpg")
    args = parser.parse_args(["predict", "--logs", str(tmp_path), "--images", str(images),
                              "--out", str(tmp_path / "out")])
    assert len(run_sample(args, TinySmoke, None, None, None)) == 2
    mask = np.asarray(Image.open(tmp_path / "out" / "b_mask.png"))
    assert mask.shape == (50, 37) and set(np.unique(mask)) <= {0, 255}
    assert Image.open(tmp_path / "out" / "a_overlay.png").size[0] >= 64
    with pytest.raises(SystemExit, match="--images"):
        run_sample(parser.parse_args(["predict"]), TinySmoke, None, None, None)
