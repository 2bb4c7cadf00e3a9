"""The base Dataset API, ShapesDataset determinism and the molding helpers."""

import numpy as np
import pytest

from kseg.data import Dataset, ShapesDataset
from kseg.data.pipelines.molding import (
    expand_mask,
    extract_bboxes,
    minimize_mask,
    resize_image,
    resize_mask,
)


class TwoSourceDataset(Dataset):
    """Two sources, instance masks drawn as rectangles."""

    def __init__(self):
        super().__init__()
        self.add_class("a", 1, "cat")
        self.add_class("a", 2, "dog")
        self.add_class("b", 7, "car")
        self.add_class("a", 1, "cat")  # duplicate: ignored
        self.add_image("a", image_id="x", path=None, height=8, width=10,
                       boxes=[(0, 0, 4, 4, 1), (2, 2, 6, 6, 2)])
        self.add_image("b", image_id="y", path=None, height=8, width=10, boxes=[(1, 1, 3, 9, 7)])

    def load_mask(self, image_id):
        info = self.image_info[image_id]
        masks = np.zeros([info["height"], info["width"], len(info["boxes"])], bool)
        ids = []
        for i, (y1, x1, y2, x2, cid) in enumerate(info["boxes"]):
            masks[y1:y2, x1:x2, i] = True
            ids.append(self.map_source_class_id(f"{info['source']}.{cid}"))
        return masks, np.array(ids, np.int32)


def test_add_class_prepare_and_maps():
    ds = TwoSourceDataset()
    ds.prepare()
    assert ds.num_classes == 4 and ds.class_names == ["BG", "cat", "dog", "car"]
    assert ds.sources == ["", "a", "b"]
    assert ds.source_class_ids["a"] == [0, 1, 2] and ds.source_class_ids["b"] == [0, 3]
    assert ds.map_source_class_id("b.7") == 3
    assert ds.get_source_class_id(3, "b") == 7
    assert ds.image_from_source_map["b.y"] == 1
    assert list(ds.image_ids) == [0, 1] and len(ds) == 2
    assert ds.image_size(0) == (8, 10)


def test_semantic_mask_from_instances_later_paints_over():
    ds = TwoSourceDataset()
    ds.prepare()
    class_map = ds.load_semantic_mask(0)
    assert class_map.dtype == np.int32 and class_map.shape == (8, 10)
    assert class_map[0, 0] == 1 and class_map[3, 3] == 2 and class_map[7, 9] == 0
    assert set(np.unique(ds.load_semantic_mask(1))) == {0, 3}


def test_shapes_dataset_is_deterministic():
    a, b = ShapesDataset(4, 64, 64, seed=3), ShapesDataset(4, 64, 64, seed=3)
    c = ShapesDataset(4, 64, 64, seed=4)
    for i in range(4):
        np.testing.assert_array_equal(a.load_image(i), b.load_image(i))
        ma, ca = a.load_mask(i)
        mb, cb = b.load_mask(i)
        np.testing.assert_array_equal(ma, mb)
        np.testing.assert_array_equal(ca, cb)
    assert any(not np.array_equal(a.load_image(i), c.load_image(i)) for i in range(4))
    image = a.load_image(0)
    assert image.dtype == np.uint8 and image.shape == (64, 64, 3)


@pytest.mark.parametrize("mode, min_dim, max_dim, shape, window, scale", [
    ("square", 128, 128, (128, 128, 3), (10, 0, 117, 128), 128 / 120),  # up, capped by max
    ("square", 64, 128, (128, 128, 3), (14, 4, 114, 124), 1.0),  # fits: pad only
    ("pad64", None, 128, (128, 128, 3), (14, 4, 114, 124), 1.0),
    ("none", None, None, (100, 120, 3), (0, 0, 100, 120), 1.0),
])
def test_resize_image_modes(mode, min_dim, max_dim, shape, window, scale):
    image = np.full([100, 120, 3], 200, np.uint8)
    out, win, sc, padding, crop = resize_image(image, min_dim, max_dim, mode=mode)
    assert out.shape == shape and out.dtype == np.uint8 and crop is None
    assert sc == pytest.approx(scale)
    assert tuple(win) == window
    y1, x1, y2, x2 = win
    assert out[y1:y2, x1:x2].min() == 200 and out.sum() == 200 * 3 * (y2 - y1) * (x2 - x1)


def test_resize_image_crop_and_mask():
    image = np.arange(100 * 120 * 3, dtype=np.int64).reshape(100, 120, 3).astype(np.uint8)
    out, window, scale, padding, crop = resize_image(image, 64, 128, mode="crop",
                                                     rng=np.random.default_rng(0))
    assert out.shape == (64, 64, 3) and window == (0, 0, 64, 64) and scale == 1.0
    y, x, h, w = crop
    np.testing.assert_array_equal(out, image[y:y + h, x:x + w])
    mask = np.zeros([100, 120, 1], bool)
    mask[y:y + 10, x:x + 10] = True
    cropped = resize_mask(mask, scale, padding, crop)
    assert cropped.shape == (64, 64, 1) and cropped[:10, :10].all() and cropped.sum() == 100


def test_resize_mask_follows_image_and_keeps_labels():
    class_map = np.zeros([100, 120], np.int32)
    class_map[40:60, 50:70] = 5
    _, window, scale, padding, _ = resize_image(np.zeros([100, 120, 3], np.uint8), 64, 128)
    out = resize_mask(class_map, scale, padding)
    assert out.shape == (128, 128) and out.dtype == np.int32
    assert set(np.unique(out)) == {0, 5}
    masks = resize_mask(class_map[..., None] == 5, scale, padding)
    assert masks.dtype == bool and masks.shape == (128, 128, 1)
    assert abs(masks.sum() - 400 * scale**2) < 0.1 * 400 * scale**2


def test_minimize_expand_round_trip():
    yy, xx = np.mgrid[:96, :96]
    masks = np.stack([(yy - 40) ** 2 + (xx - 30) ** 2 < 20**2,
                      (abs(yy - 70) < 12) & (abs(xx - 70) < 20)], axis=-1)
    boxes = extract_bboxes(masks)
    restored = expand_mask(boxes, minimize_mask(boxes, masks, (56, 56)), masks.shape)
    for i in range(2):
        inter = (restored[..., i] & masks[..., i]).sum()
        union = (restored[..., i] | masks[..., i]).sum()
        assert inter / union > 0.9


def test_extract_bboxes_on_hand_masks():
    masks = np.zeros([10, 12, 3], bool)
    masks[2:5, 3:7, 0] = True
    masks[0, 11, 1] = True
    boxes = extract_bboxes(masks)
    assert boxes.dtype == np.int32
    np.testing.assert_array_equal(boxes, [[2, 3, 5, 7], [0, 11, 1, 12], [0, 0, 0, 0]])
