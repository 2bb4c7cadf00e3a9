"""One table drives both molding implementations: NumPy `resize_image` (training, `detect`)
and TensorFlow `mold_images` (inside the SavedModel) must give the same molded image,
window and scale for every row."""

import numpy as np
import pytest

from kseg.config import Config
from kseg.data.pipelines.molding import resize_image

# (height, width, IMAGE_RESIZE_MODE, IMAGE_MIN_DIM, IMAGE_MAX_DIM, IMAGE_MIN_SCALE)
MOLDING_TABLE = [
    (64, 64, "square", 64, 64, 0),      # already the size: no resize
    (48, 80, "square", 64, 128, 0),     # up-scaled to MIN_DIM, padded to a square
    (300, 200, "square", 64, 128, 0),   # down-scaled so the long side fits MAX_DIM
    (37, 101, "square", 32, 128, 0),    # odd sizes, long side bound
    (50, 70, "square", 0, 128, 2),      # IMAGE_MIN_SCALE up-scales
    (50, 70, "pad64", 0, 128, 0),       # padded to multiples of 64, no scaling
    (65, 129, "pad64", 0, 192, 0),
    (45, 77, "none", 0, 128, 0),        # untouched
]


@pytest.mark.parametrize("height, width, mode, min_dim, max_dim, min_scale", MOLDING_TABLE)
def test_numpy_and_graph_molding_agree(height, width, mode, min_dim, max_dim, min_scale):
    tf = pytest.importorskip("tensorflow")
    from kseg.export.graph_molding import mold_images

    image = np.random.default_rng(height * width).integers(0, 256, (height, width, 3),
                                                           dtype=np.uint8)
    config = Config(NUM_CLASSES=2, IMAGE_RESIZE_MODE=mode, IMAGE_MIN_DIM=min_dim,
                    IMAGE_MAX_DIM=max_dim, IMAGE_MIN_SCALE=min_scale)
    expected, window, scale, _, _ = resize_image(image, min_dim, max_dim, min_scale, mode)
    molded, graph_window, graph_scale = mold_images(tf.constant(image[None]), config)
    assert tuple(np.asarray(graph_window)) == tuple(window)
    assert float(graph_scale) == pytest.approx(scale, rel=1e-6)
    molded = np.asarray(molded)[0]
    assert molded.shape == expected.shape
    # Bilinear resizing may round a few pixels the other way; padding and copies are exact.
    difference = np.abs(molded - expected.astype(np.float32))
    assert difference.max() <= 1 and (difference > 0).mean() < 0.01
    if scale == 1.0:
        assert (difference == 0).all()
