"""unmold_mask pastes masks exactly as scikit-image's resize (Matterport's utils.unmold_mask)."""

import numpy as np
import pytest
import skimage.transform

from kseg.data.pipelines.molding import interpolation_weights, unmold_mask


def _matterport_unmold(mask, bbox, image_shape, threshold=0.5):
    """Matterport's unmold_mask, written from its utils.py, with skimage's resize."""
    y1, x1, y2, x2 = bbox
    resized = skimage.transform.resize(mask, (y2 - y1, x2 - x1), order=1, mode="constant",
                                       cval=0, clip=True, preserve_range=True,
                                       anti_aliasing=False)
    full = np.zeros(image_shape[:2], dtype=bool)
    full[y1:y2, x1:x2] = resized >= threshold
    return full


@pytest.mark.parametrize("source", [14, 28])
def test_interpolation_weights_are_skimage_resize_of_the_identity(source):
    for target in (1, 2, 5, 13, source, source + 1, 57, 333):
        expected = skimage.transform.resize(np.eye(source), (target, source), order=1,
                                            mode="constant", cval=0, anti_aliasing=False)
        np.testing.assert_allclose(interpolation_weights(source, target), expected,
                                   rtol=0, atol=1e-12)


def test_unmold_mask_matches_skimage_to_the_pixel():
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(200):
        mask = (1 / (1 + np.exp(-rng.normal(0, 3, (28, 28))))).astype(np.float32)
        y1, x1 = (int(v) for v in rng.integers(0, 300, 2))
        h, w = (int(v) for v in rng.integers(1, 200, 2))
        bbox = (y1, x1, y1 + h, x1 + w)
        expected = _matterport_unmold(mask, bbox, (512, 512))
        np.testing.assert_array_equal(unmold_mask(mask, bbox, (512, 512)), expected)
        checked += expected.sum()
    assert checked > 100_000  # real masks, not empty ones


def test_unmold_mask_clips_boxes_past_the_image_and_empty_boxes():
    mask = np.ones((28, 28), np.float32)
    full = unmold_mask(mask, (-5, 10, 20, 700), (64, 640))
    assert full[:20, 10:].all() and not full[20:].any() and not full[:, :10].any()
    assert not unmold_mask(mask, (10, 10, 10, 30), (64, 64)).any()
