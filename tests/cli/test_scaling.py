"""kseg.cli.scaling: --strategy / --gpus / --precision / --xla reach the config and training."""

import argparse
import json

import pytest

from kseg.cli import main as kseg_main
from kseg.cli.scaling import add_scaling_arguments, scaling_overrides


def _overrides(argv):
    parser = argparse.ArgumentParser()
    add_scaling_arguments(parser)
    return scaling_overrides(parser.parse_args(argv))


def test_options_become_config_fields():
    assert _overrides([]) == {}
    assert _overrides(["--strategy", "mirrored", "--gpus", "4", "--precision",
                       "mixed_float16", "--xla"]) == {
        "DISTRIBUTION": "mirrored", "GPU_COUNT": 4, "MIXED_PRECISION": "mixed_float16",
        "JIT_COMPILE": True}
    assert _overrides(["--strategy", "none", "--precision", "float32"]) == {
        "DISTRIBUTION": None, "MIXED_PRECISION": None}
    with pytest.raises(SystemExit):
        _overrides(["--strategy", "horovod"])


def test_train_with_strategy_from_the_cli(tmp_path):
    """`kseg train unet --strategy mirrored` (one CPU replica here) with bfloat16 writes its
    run folder; evaluating the run then works on one device."""
    logs = tmp_path / "logs"
    common = ["--dataset", "synthetic", "--logs", str(logs)]
    assert kseg_main(["train", "unet", *common, "--epochs", "1", "--steps", "1",
                      "--image-size", "64", "--batch-size", "2", "--base-filters", "4",
                      "--depth", "2", "--strategy", "mirrored",
                      "--precision", "mixed_bfloat16"]) == 0
    run = next(logs.iterdir())
    config = json.loads((run / "config.json").read_text())
    assert config["DISTRIBUTION"] == "mirrored" and config["MIXED_PRECISION"] == "mixed_bfloat16"
    assert config["GPU_COUNT"] >= 1 and (run / "kseg_unet_0001.weights.h5").exists()
    out = tmp_path / "metrics.json"
    assert kseg_main(["evaluate", "unet", *common, "--out", str(out)]) == 0
    assert 0 <= json.loads(out.read_text())["mean_iou"] <= 1
