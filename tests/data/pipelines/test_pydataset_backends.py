"""The PyDataset path (MaskRCNNSequence, SemanticSequence) with worker threads and worker
processes on the JAX and PyTorch backends: the same batches as no workers, seeded."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = r"""
import keras, numpy as np
from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter
import kseg
from kseg.data import RoadScenesDataset, ShapesDataset
from kseg.data.pipelines.maskrcnn_pipeline import MaskRCNNSequence
from kseg.data.pipelines.semantic_pipeline import SemanticSequence
from kseg.models.mask_rcnn.config import MaskRCNNConfig

class Tiny(MaskRCNNConfig):
    NAME = "tiny"; NUM_CLASSES = 4; IMAGE_MIN_DIM = 64; IMAGE_MAX_DIM = 64
    IMAGES_PER_GPU = 2; RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128); MINI_MASK_SHAPE = (28, 28)
    MAX_GT_INSTANCES = 3

def batches(sequence):
    adapter = PyDatasetAdapter(sequence, shuffle=False)
    out = list(adapter.get_numpy_iterator())
    adapter.on_epoch_end()
    return out

def same(a, b):
    assert len(a) == len(b) and len(a) > 0
    for x, y in zip(a, b):
        for key in (x.keys() if isinstance(x, dict) else range(len(x))):
            np.testing.assert_array_equal(x[key], y[key], err_msg=str(key))

shapes, config = ShapesDataset(6, 80, 100, seed=1), Tiny()
plain = batches(MaskRCNNSequence(shapes, config, seed=3, workers=0))
same(plain, batches(MaskRCNNSequence(shapes, config, seed=3, workers=2)))
same(plain, batches(MaskRCNNSequence(shapes, config, seed=3, workers=2,
                                     use_multiprocessing=True)))
road = RoadScenesDataset(6, 48, 80, seed=0)
sem = kseg.SemanticConfig(NAME="t", NUM_CLASSES=3, IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=64,
                          IMAGES_PER_GPU=2, SEED=5, IMAGE_RESIZE_MODE="crop")
same(batches(SemanticSequence(road, sem, workers=0)),
     batches(SemanticSequence(road, sem, workers=2)))
print("OK", keras.backend.backend(), len(plain))
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_pydataset_workers_match_no_workers_on_other_backends(backend):
    pytest.importorskip(backend)
    env = dict(os.environ, KERAS_BACKEND=backend, JAX_PLATFORMS="cpu",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"OK {backend} 3" in result.stdout
