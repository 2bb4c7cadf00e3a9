"""CamVid class remapping, split listing, and deterministic splits."""

import numpy as np
import pytest
from PIL import Image

from kseg.data import ShapesDataset, load_camvid, split_dataset, split_ids


def make_camvid(root, names=("0001TP_1.png", "0001TP_2.png"), listing=True):
    (root / "val").mkdir(parents=True)
    (root / "valannot").mkdir()
    labels = np.arange(12, dtype=np.uint8).repeat(2).reshape(4, 6)
    for name in names:
        Image.fromarray(np.zeros([4, 6, 3], np.uint8)).save(root / "val" / name)
        Image.fromarray(labels).save(root / "valannot" / name)
    if listing:
        lines = [f"/SegNet/CamVid/val/{n} /SegNet/CamVid/valannot/{n}" for n in names]
        (root / "val.txt").write_text("\n".join(lines) + "\n")
    return labels


@pytest.mark.parametrize("listing", [True, False])
def test_road_mapping(tmp_path, listing):
    labels = make_camvid(tmp_path, listing=listing)
    ds = load_camvid(tmp_path)
    assert ds.class_names == ["BG", "road"] and ds.num_images == 2
    np.testing.assert_array_equal(ds.load_semantic_mask(0), (labels == 3).astype(np.int32))
    ignored = load_camvid(tmp_path, ignore_index=255).load_semantic_mask(0)
    assert (ignored[labels == 11] == 255).all() and ignored[labels == 3].min() == 1
    assert set(np.unique(ignored)) == {0, 1, 255}


def test_custom_class_map(tmp_path):
    labels = make_camvid(tmp_path)
    ds = load_camvid(tmp_path, class_map={3: 1, 4: 1, 8: 2}, class_names=["ground", "car"])
    class_map = ds.load_semantic_mask(1)
    assert (class_map[(labels == 3) | (labels == 4)] == 1).all()
    assert (class_map[labels == 8] == 2).all() and class_map.sum() == 4 * 1 + 2 * 2
    masks, class_ids = ds.load_mask(1)
    assert masks.shape[:2] == (4, 6) and set(class_ids) == {1, 2}
    with pytest.raises(ValueError, match="class_names"):
        load_camvid(tmp_path, class_map={3: 2})


def test_split_ids_is_deterministic():
    train, val = split_ids(100, 0.2, seed=0)
    assert len(val) == 20 and len(train) == 80
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(100))
    again = split_ids(100, 0.2, seed=0)
    np.testing.assert_array_equal(val, again[1])
    assert not np.array_equal(val, split_ids(100, 0.2, seed=1)[1])
    assert [len(x) for x in split_ids(2, 0.01)] == [1, 1]
    assert len(split_ids(5, 0.0)[1]) == 0


def test_split_dataset():
    shapes = ShapesDataset(10, 32, 32, seed=0)
    train, val = split_dataset(shapes, 0.3, seed=0)
    assert (train.num_images, val.num_images) == (7, 3)
    _, val_ids = split_ids(10, 0.3, seed=0)
    np.testing.assert_array_equal(val.load_image(0), shapes.load_image(int(val_ids[0])))
    assert shapes.num_images == 10


@pytest.mark.data
def test_real_camvid(camvid_dir):
    ds = load_camvid(camvid_dir, split="val")
    assert ds.num_images == 101
    fraction = np.mean([ds.load_semantic_mask(i).mean() for i in ds.image_ids])
    assert fraction == pytest.approx(0.29, abs=0.01)
    assert ds.load_image(0).shape == (360, 480, 3)
