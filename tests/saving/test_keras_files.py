"""`load_keras_model` opens a `.keras` file of a kseg model in a fresh interpreter: the
kseg modules its layers come from are imported from the file's own config."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_kseg_model_file_loads_in_a_fresh_interpreter(tmp_path):
    from kseg.config import UNetConfig
    from kseg.models.unet import build_unet

    model = build_unet(UNetConfig(NUM_CLASSES=2, IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=64,
                                  UNET_BASE_FILTERS=4, UNET_DEPTH=2))
    path = tmp_path / "unet.keras"
    model.save(path)
    code = ("import sys; from kseg.saving.files import load_keras_model; "
            f"m = load_keras_model({str(path)!r}); "
            "print(len(m.layers), 'kseg.models.semantic_layers' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, env={"PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3",
                                            "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == [str(len(model.layers)), "True"]
