"""Every sample's run folder describes itself: `kseg evaluate`, `kseg predict` and
`kseg export` open it with nothing but the folder (tiny runs)."""

import json

import numpy as np
import pytest
from PIL import Image
from sample_module import load_sample

from kseg.cli import main as kseg_main


def _image_folder(tmp_path, dataset, count=1):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(count):
        Image.fromarray(dataset.load_image(i)).save(folder / f"img{i}.png")
    return folder


def _open_with_every_command(tmp_path, model, run_dir, evaluate_args, images):
    """evaluate (JSON written), predict (PNGs written) and export (a SavedModel) of run_dir."""
    metrics = tmp_path / "eval.json"
    assert kseg_main(["evaluate", model, "--weights", str(run_dir), *evaluate_args,
                      "--out", str(metrics)]) == 0
    predictions = tmp_path / "predictions"
    assert kseg_main(["predict", model, "--weights", str(run_dir), "--images", str(images),
                      "--out", str(predictions)]) == 0
    serve = tmp_path / "serve"
    assert kseg_main(["export", model, "--weights", str(run_dir), "--out", str(serve)]) == 0
    assert (serve / "saved_model.pb").is_file()
    return json.loads(metrics.read_text()), sorted(p.name for p in predictions.iterdir())


@pytest.fixture(scope="module")
def shapes_out(tmp_path_factory):
    """The output folder of a tiny shapes main job (one run under logs/)."""
    out = tmp_path_factory.mktemp("shapes") / "out"
    assert load_sample("shapes").main(["--out", str(out), "--epochs", "1", "--steps", "1",
                                       "--train-images", "8", "--val-images", "2",
                                       "--pictures", "1"]) == 0
    return out


@pytest.mark.slow
def test_shapes_run_opens_with_every_command(shapes_out, tmp_path, capsys):
    from kseg.data import ShapesDataset

    out = shapes_out
    run_dir = next((out / "logs").iterdir())
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["MODEL"] == "maskrcnn" and saved["PRESET"].endswith("presets.ShapesConfig")
    assert saved["CLASS_NAMES"] == ["BG", "square", "circle", "triangle"]
    assert saved["NUM_CLASSES"] == 4 and saved["BACKBONE"] == "resnet_tiny"
    # README's flow: `kseg evaluate maskrcnn --dataset shapes --weights last --logs ...`
    assert kseg_main(["evaluate", "maskrcnn", "--dataset", "shapes", "--weights", "last",
                      "--logs", str(out / "logs"), "--shapes-count", "10", "--limit", "2"]) == 0
    assert "mask mAP@0.5" in capsys.readouterr().out
    images = _image_folder(tmp_path, ShapesDataset(1, 128, 128, seed=5))
    metrics, written = _open_with_every_command(
        tmp_path, "maskrcnn", run_dir, ["--dataset", "shapes", "--shapes-count", "10",
                                        "--limit", "2"], images)
    assert metrics["num_images"] == 2 and 0.0 <= metrics["mask_map"] <= 1.0
    assert written == ["detections.json", "img0.png"]
    categories = json.loads((tmp_path / "predictions" / "detections.json").read_text())
    assert [c["name"] for c in categories["categories"]] == ["square", "circle", "triangle"]


@pytest.mark.slow
def test_shapes_run_without_config_json_says_so(shapes_out, tmp_path, capsys):
    import shutil

    run_dir = next((shapes_out / "logs").iterdir())
    out = tmp_path / "out"
    shutil.copytree(run_dir, out / "logs" / run_dir.name)
    (out / "logs" / run_dir.name / "config.json").unlink()
    assert kseg_main(["evaluate", "maskrcnn", "--dataset", "shapes", "--weights", "last",
                      "--logs", str(out / "logs"), "--limit", "1"]) == 2
    error = capsys.readouterr().err
    assert "config.json not found" in error and "NUM_CLASSES\": 2" not in error
    # Following the hint with the preset's values rebuilds the model it was trained as.
    from kseg.models.mask_rcnn.presets import ShapesConfig

    settings = ShapesConfig().to_json(tmp_path / "settings.json")
    assert kseg_main(["evaluate", "maskrcnn", "--dataset", "shapes", "--weights", "last",
                      "--logs", str(out / "logs"), "--limit", "1", "--shapes-count", "10",
                      "--config", str(settings)]) == 0
    # A wrong model says which settings must match, without a traceback.
    assert kseg_main(["evaluate", "maskrcnn", "--dataset", "shapes", "--weights", "last",
                      "--logs", str(out / "logs"), "--limit", "1", "--shapes-count", "10",
                      "--config", '{"NUM_CLASSES": 4}']) == 2
    assert "does not fit this model" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("name, model", [("road", "fcn"), ("smoke", "unet")])
def test_semantic_sample_runs_open_with_every_command(tmp_path, name, model):
    from kseg.data.generated.synthetic import RoadScenesDataset

    sample = load_sample(name)
    logs = tmp_path / "logs"
    sample.main(["train", "--epochs", "1", "--steps", "1", "--image-size", "64",
                 "--logs", str(logs)])
    run_dir = next(logs.iterdir())
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["MODEL"] == model and saved["PRESET"].endswith(f"{name}_sample.{name.title()}"
                                                                   f"Config")
    assert saved["CLASS_NAMES"] == ["BG", name]
    scenes = RoadScenesDataset(1, 80, 96, seed=3)
    images = _image_folder(tmp_path, scenes)
    metrics, written = _open_with_every_command(
        tmp_path, model, run_dir, ["--dataset", "synthetic"], images)
    assert metrics["class_names"] == ["BG", name] and metrics["num_images"] == 40
    assert written == ["img0_mask.png", "img0_overlay.png"]
    mask = np.asarray(Image.open(tmp_path / "predictions" / "img0_mask.png"))
    assert mask.shape == scenes.load_image(0).shape[:2] and set(np.unique(mask)) <= {0, 255}
