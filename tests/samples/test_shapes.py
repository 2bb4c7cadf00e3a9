"""samples/shapes/shapes.py (the main job) end to end with a tiny schedule."""

import json
from pathlib import Path

import numpy as np
from PIL import Image
from sample_module import load_sample


def test_main_job_writes_metrics_pictures_and_checkpoints(tmp_path):
    shapes = load_sample("shapes")
    out = tmp_path / "out"
    assert shapes.main(["--out", str(out), "--epochs", "2", "--steps", "2", "--train-images",
                        "16", "--val-images", "3", "--pictures", "2"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["mask_map50"] <= 1.0 and 0.0 <= metrics["box_map50"] <= 1.0
    assert set(metrics["coco"]) == {"bbox", "segm"}
    assert metrics["val_images"] == 3 and metrics["epochs"] == 2
    assert Path(metrics["checkpoint"]).name == "mask_rcnn_shapes_0002.h5"
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == ["detections_000.png", "detections_001.png", "ground_truth_000.png",
                     "ground_truth_001.png", "overview.png"]
    overview = np.asarray(Image.open(out / "overview.png").convert("RGB"))
    assert overview.shape[0] > overview.shape[1] * 0.8  # two rows of two panels
    assert overview.std() > 10  # a drawing, not a blank page
