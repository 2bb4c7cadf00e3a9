"""Image/mask folder pairs: binary, index and palette masks; instances; real smoke set."""

import numpy as np
import pytest
from PIL import Image

from kseg.data import DataError, load_mask_folder


def save(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path) if mode else Image.fromarray(array).save(path)


def test_binary_masks_pair_by_stem_with_threshold(tmp_path):
    mask = np.zeros([16, 20], np.uint8)
    mask[2:6, 2:6] = 255
    mask[10:14, 10:18] = 200
    mask[0, 19] = 100  # anti-aliased edge below the threshold
    save(tmp_path / "img" / "a.jpg", np.full([16, 20, 3], 90, np.uint8))
    save(tmp_path / "mask" / "a.png", mask)
    save(tmp_path / "img" / "b.png", np.full([16, 20, 3], 90, np.uint8))
    save(tmp_path / "mask" / "b.png", np.zeros([16, 20], np.uint8))
    (tmp_path / "img" / "notes.txt").write_text("not an image")
    ds = load_mask_folder(tmp_path / "img", tmp_path / "mask", class_names=["smoke"])
    assert ds.class_names == ["BG", "smoke"] and [i["id"] for i in ds.image_info] == ["a", "b"]
    class_map = ds.load_semantic_mask(0)
    assert class_map.dtype == np.int32 and class_map.sum() == 16 + 32
    masks, class_ids = ds.load_mask(0)
    assert masks.shape == (16, 20, 2) and list(class_ids) == [1, 1]
    assert ds.load_semantic_mask(1).max() == 0 and ds.load_mask(1)[0].shape == (16, 20, 0)


def test_index_and_palette_modes(tmp_path):
    labels = np.zeros([8, 8], np.uint8)
    labels[:4] = 1
    labels[6:, 6:] = 2
    save(tmp_path / "img" / "a.png", np.zeros([8, 8, 3], np.uint8))
    save(tmp_path / "idx" / "a.png", labels)
    ds = load_mask_folder(tmp_path / "img", tmp_path / "idx", ["road", "car"], mode="index")
    np.testing.assert_array_equal(ds.load_semantic_mask(0), labels)
    assert list(ds.load_mask(0)[1]) == [1, 2]
    with pytest.raises(DataError, match=r"a\.png.*\[2\]"):
        load_mask_folder(tmp_path / "img", tmp_path / "idx", ["road"],
                         mode="index").load_semantic_mask(0)
    colors = np.zeros([8, 8, 3], np.uint8)
    colors[:4] = (128, 64, 128)
    colors[6:, 6:] = (0, 0, 142)
    save(tmp_path / "rgb" / "a.png", colors)
    ds = load_mask_folder(tmp_path / "img", tmp_path / "rgb", ["road", "car"], mode="palette",
                          palette={(128, 64, 128): 1, (0, 0, 142): 2})
    np.testing.assert_array_equal(ds.load_semantic_mask(0), labels)
    palette_png = Image.fromarray(labels, "P")
    palette_png.putpalette([0, 0, 0, 128, 64, 128, 0, 0, 142] + [0] * 759)
    palette_png.save(tmp_path / "rgb" / "a.png")
    np.testing.assert_array_equal(ds.load_semantic_mask(0), labels)


def test_missing_mask_raises_or_skips(tmp_path):
    save(tmp_path / "img" / "a.png", np.zeros([8, 8, 3], np.uint8))
    save(tmp_path / "img" / "b.png", np.zeros([8, 8, 3], np.uint8))
    save(tmp_path / "mask" / "a.png", np.zeros([8, 8], np.uint8))
    with pytest.raises(DataError, match=r"b\.png.*not found"):
        load_mask_folder(tmp_path / "img", tmp_path / "mask")
    with pytest.warns(UserWarning, match="skipped 1"):
        ds = load_mask_folder(tmp_path / "img", tmp_path / "mask", on_error="skip")
    assert ds.num_images == 1


@pytest.mark.data
def test_smoke_pairs(smoke_dir):
    ds = load_mask_folder(smoke_dir / "images", smoke_dir / "labels", class_names=["smoke"])
    assert ds.num_images == 615
    ids = [info["id"] for info in ds.image_info]
    fake_jpg = ids.index("100_0_0")  # a ".jpg" that is really an RGBA PNG
    with Image.open(ds.image_info[fake_jpg]["path"]) as img:
        assert img.format == "PNG"
    image = ds.load_image(fake_jpg)
    assert image.shape == (512, 512, 3) and image.dtype == np.uint8
    assert set(np.unique(ds.load_semantic_mask(fake_jpg))) <= {0, 1}
    empty = ids.index("1736_0_1")
    class_map = ds.load_semantic_mask(empty)
    assert class_map.shape == (512, 512) and class_map.max() == 0
    smoky = ds.load_semantic_mask(0)
    assert 0 < smoky.mean() < 0.5
