"""SIGKILL a training process at a random point, restart it, and check that it resumes from
the last complete checkpoint with the right epoch number, and that every file it left
loads (no half-written checkpoint, CSV log or config)."""

import csv
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNET = ["train", "unet", "--dataset", "synthetic", "--image-size", "64", "--batch-size", "2",
        "--steps", "2", "--depth", "2", "--base-filters", "4", "--no-augment", "--name", "kr"]


def _env():
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    return env


def _start(argv, log):
    return subprocess.Popen(argv, cwd=ROOT, env=_env(), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _kill_after_first_checkpoint(process, logs, pattern, timeout=240):
    """Wait for a checkpoint, then SIGKILL at a random moment; returns the kill delay."""
    deadline = time.time() + timeout
    try:
        while not list(Path(logs).glob(f"*/{pattern}")):
            if process.poll() is not None or time.time() > deadline:
                pytest.fail(f"no checkpoint after {timeout} s (exit {process.poll()})")
            time.sleep(0.2)
        delay = random.Random().uniform(0.0, 2.0)
        time.sleep(delay)
        assert process.poll() is None, "the run ended before it was killed"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    return delay


def _checkpoint_epochs(run, pattern):
    return sorted(int(m.group(1)) for p in run.iterdir() if (m := re.match(pattern, p.name)))


def _check_every_file_loads(run, model, pattern):
    """Every file of the run folder is whole: checkpoints load, the CSV and JSON parse."""
    from kseg.saving.files import load_weights_atomic
    from kseg.saving.legacy_h5 import load_weights_by_name

    for path in sorted(run.iterdir()):
        if path.name.startswith(".tmp-"):
            continue  # a write the kill interrupted: never read, removed on resume
        if re.match(pattern, path.name):
            if path.name.endswith(".weights.h5"):
                load_weights_atomic(model, path)
            else:
                load_weights_by_name(model, path, verbose=0)
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".csv":
            rows = list(csv.DictReader(open(path)))
            assert all(r["loss"] for r in rows)


def _csv_epochs(run):
    return [int(r["epoch"]) for r in csv.DictReader(open(run / "history.csv"))]


@pytest.mark.slow
def test_cli_unet_killed_and_resumed_with_weights_last(tmp_path):
    from kseg.config import UNetConfig
    from kseg.models.unet import build_unet

    logs = tmp_path / "logs"
    cli = [sys.executable, "-m", "kseg", *UNET, "--logs", str(logs)]
    with open(tmp_path / "first.log", "w") as log:
        delay = _kill_after_first_checkpoint(_start(cli + ["--epochs", "400"], log), logs,
                                             "kseg_kr_0001.weights.h5")
    (run,) = logs.iterdir()
    pattern = r"kseg_kr_(\d{4})\.weights\.h5$"
    done = _checkpoint_epochs(run, pattern)
    assert done and done == list(range(1, done[-1] + 1)), (delay, done)
    config = UNetConfig.from_json(run / "config.json")
    _check_every_file_loads(run, build_unet(config), pattern)
    last = done[-1]
    assert _csv_epochs(run)[:last] == list(range(last))  # may lack the epoch being written

    result = subprocess.run(cli + ["--weights", "last", "--epochs", str(last + 2)], cwd=ROOT,
                            env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert f"Epoch {last + 1}/{last + 2}" in result.stdout
    assert f"Epoch {last}/" not in result.stdout
    assert _checkpoint_epochs(run, pattern) == list(range(1, last + 3))
    assert _csv_epochs(run) == list(range(last + 2))
    assert not list(run.glob(".tmp-*"))
    _check_every_file_loads(run, build_unet(config), pattern)
    rates = [float(r["learning_rate"]) for r in csv.DictReader(open(run / "history.csv"))]
    assert rates == pytest.approx([1e-3] * (last + 2))


def test_mask_rcnn_train_resumes_after_load_weights_find_last(tmp_path):
    """What a kill during Mask R-CNN's second checkpoint leaves (checkpoint 1, its CSV row,
    a cut temporary file), then `model.train` after `load_weights(find_last())`. (The
    SIGKILL itself is tested above on the CLI: a tiny Mask R-CNN's first epoch takes
    minutes on 2 cores, too long for CI twice over.)"""
    from helpers_reliability import tiny_mask_rcnn_config

    from kseg.data import ShapesDataset
    from kseg.models.mask_rcnn.model import MaskRCNN

    data = ShapesDataset(4, 64, 64, seed=0)
    first = MaskRCNN("training", tiny_mask_rcnn_config(), model_dir=tmp_path)
    first.train(data, None, 1e-3, epochs=1, verbose=0)
    run = Path(first.log_dir)
    whole = (run / "mask_rcnn_tiny_0001.h5").read_bytes()
    cut = random.Random().randint(1, len(whole) - 1)
    (run / ".tmp-kill.h5").write_bytes(whole[:cut])  # the interrupted write of epoch 2
    pattern = r"mask_rcnn_tiny_(\d{4})\.h5$"

    model = MaskRCNN("training", tiny_mask_rcnn_config(), model_dir=tmp_path)
    _check_every_file_loads(run, model.keras_model, pattern)
    model.load_weights(model.find_last())
    assert model.epoch == 1 and Path(model.log_dir) == run
    with pytest.warns(UserWarning, match=r"removed 1 temporary file.*\.tmp-kill\.h5"):
        history = model.train(data, None, 1e-3, epochs=2, verbose=0)
    assert history.epoch == [1]
    assert _checkpoint_epochs(run, pattern) == [1, 2]
    assert _csv_epochs(run) == [0, 1]
    assert not list(run.glob(".tmp-*"))
    _check_every_file_loads(run, model.keras_model, pattern)
    rates = [float(r["learning_rate"]) for r in csv.DictReader(open(run / "history.csv"))]
    assert rates == pytest.approx([1e-3, 1e-3])
