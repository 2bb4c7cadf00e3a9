"""Synthetic road and smoke scenes: determinism, dtypes, and variety."""

import numpy as np
import pytest

from kseg.data import RoadScenesDataset, SmokeScenesDataset


@pytest.mark.parametrize("cls", [RoadScenesDataset, SmokeScenesDataset])
def test_deterministic_and_typed(cls):
    a, b, c = cls(6, 64, 80, seed=1), cls(6, 64, 80, seed=1), cls(6, 64, 80, seed=2)
    assert a.class_names[0] == "BG" and a.num_classes == 2 and a.num_images == 6
    for i in range(6):
        image, class_map = a.load_image(i), a.load_semantic_mask(i)
        assert image.dtype == np.uint8 and image.shape == (64, 80, 3)
        assert class_map.dtype == np.int32 and class_map.shape == (64, 80)
        assert set(np.unique(class_map)) <= {0, 1}
        np.testing.assert_array_equal(image, b.load_image(i))
        np.testing.assert_array_equal(class_map, b.load_semantic_mask(i))
    assert not np.array_equal(a.load_image(0), c.load_image(0))
    masks, class_ids = a.load_mask(0)
    assert masks.shape[:2] == (64, 80) and (class_ids == 1).all()


def test_road_is_not_just_the_bottom_half():
    ds = RoadScenesDataset(30, 64, 64, seed=0)
    maps = np.stack([ds.load_semantic_mask(i) for i in range(30)])
    fractions = maps.mean(axis=(1, 2))
    assert fractions.min() > 0.02 and fractions.max() < 0.6
    assert fractions.std() > 0.03  # width and horizon vary
    assert (maps[:, :20].sum(axis=(1, 2)) == 0).all()  # nothing above the highest horizon
    # Road pixels are not a fixed region: the mean map is far from binary.
    mean_map = maps.mean(axis=0)
    assert ((mean_map > 0.1) & (mean_map < 0.9)).mean() > 0.3
    left = maps[:, -1, :32].mean(axis=(1)) - maps[:, -1, 32:].mean(axis=(1))
    assert left.min() < -0.2 and left.max() > 0.2  # vanishing point and road position vary


def test_smoke_varies_and_has_empty_images():
    ds = SmokeScenesDataset(40, 64, 64, seed=0)
    fractions = np.array([ds.load_semantic_mask(i).mean() for i in range(40)])
    assert (fractions == 0).any() and (fractions > 0.02).sum() >= 20
    assert 0.03 < fractions.mean() < 0.4
    grays = [p["gray"].mean() for i in range(40) for p in ds.image_info[i]["spec"]["plumes"]]
    assert min(grays) < 130 < max(grays)
