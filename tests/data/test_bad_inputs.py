"""A corpus of awkward and broken inputs written to tmp_path: each gets the intended
result or error type, and every error message names the file."""

import io
import json

import numpy as np
import pytest
from PIL import Image

import kseg
from kseg.data import DataError, ImageReadError, load_mask_folder, load_via, read_image
from kseg.data.pipelines.semantic_pipeline import SemanticSequence


@pytest.fixture
def corpus(tmp_path):
    """Images of many kinds beside masks; returns the folder."""
    img, lab = tmp_path / "images", tmp_path / "labels"
    img.mkdir()
    lab.mkdir()
    rgb = (np.arange(24 * 32 * 3) % 251).astype(np.uint8).reshape(24, 32, 3)
    big = np.random.default_rng(0).integers(0, 256, [96, 128, 3]).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(big).save(buffer, format="JPEG")  # header intact, pixel data cut
    (img / "truncated.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    Image.fromarray(np.zeros([96, 128], np.uint8)).save(lab / "truncated.png")
    Image.fromarray(np.dstack([rgb, np.full([24, 32], 9, np.uint8)])).save(img / "rgba.jpg",
                                                                            format="PNG")
    Image.fromarray((np.arange(24 * 32).reshape(24, 32) * 80).astype(np.uint16)).save(
        img / "deep16.png")
    palette = Image.fromarray((np.arange(24 * 32).reshape(24, 32) % 3).astype(np.uint8), "P")
    palette.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    palette.save(img / "palette.png")
    Image.fromarray(rgb[..., 0]).save(img / "gray.png")
    Image.fromarray(rgb).save(img / "wrongsize.png")
    mask = np.zeros([24, 32], np.uint8)
    mask[4:10, 4:10] = 255
    for name in ("rgba", "deep16", "palette", "gray"):
        Image.fromarray(mask).save(lab / f"{name}.png")
    Image.fromarray(np.zeros([20, 30], np.uint8)).save(lab / "wrongsize.png")
    return tmp_path


def test_truncated_jpeg_is_an_image_read_error(corpus):
    with pytest.raises(ImageReadError, match=r"truncated\.jpg"):
        read_image(corpus / "images" / "truncated.jpg")


def test_odd_formats_load_as_rgb_uint8(corpus):
    rgba = read_image(corpus / "images" / "rgba.jpg")  # a PNG named .jpg
    assert rgba.shape == (24, 32, 3) and rgba.dtype == np.uint8
    deep = read_image(corpus / "images" / "deep16.png")
    assert deep.dtype == np.uint8 and deep.shape == (24, 32, 3)
    assert deep.max() == round((24 * 32 - 1) * 80 * 255 / 65535) and (deep[0, 0] == 0).all()
    palette = read_image(corpus / "images" / "palette.png")
    np.testing.assert_array_equal(palette[0, :3], [[255, 0, 0], [0, 255, 0], [0, 0, 255]])
    gray = read_image(corpus / "images" / "gray.png")
    assert gray.shape == (24, 32, 3) and (gray[..., 0] == gray[..., 2]).all()


def test_wrong_size_mask_names_both_files_and_sizes(corpus):
    with pytest.raises(DataError, match=r"wrongsize\.png.*30x20.*wrongsize\.png.*32x24"):
        load_mask_folder(corpus / "images", corpus / "labels")
    with pytest.warns(UserWarning, match="skipped 1"):
        ds = load_mask_folder(corpus / "images", corpus / "labels", on_error="skip")
    assert ds.num_images == 5
    # A mask replaced after loading is caught when it is read.
    Image.fromarray(np.zeros([5, 5], np.uint8)).save(corpus / "labels" / "gray.png")
    gray = [i["id"] for i in ds.image_info].index("gray")
    with pytest.raises(DataError, match=r"labels.gray\.png is 5x5.*images.gray\.png is 32x24"):
        ds.load_semantic_mask(gray)


def test_empty_mask_is_fine_for_semantic(corpus):
    Image.fromarray(np.zeros([24, 32], np.uint8)).save(corpus / "labels" / "rgba.png")
    with pytest.warns(UserWarning, match="wrongsize"):
        ds = load_mask_folder(corpus / "images", corpus / "labels", on_error="skip")
    rgba = [i["id"] for i in ds.image_info].index("rgba")
    assert ds.load_semantic_mask(rgba).max() == 0
    assert ds.load_mask(rgba)[0].shape == (24, 32, 0)


def test_pipeline_names_the_truncated_image_or_skips_it(corpus):
    (corpus / "labels" / "wrongsize.png").unlink()
    (corpus / "images" / "wrongsize.png").unlink()
    ds = load_mask_folder(corpus / "images", corpus / "labels")
    cfg = kseg.SemanticConfig(NAME="t", NUM_CLASSES=2, IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=64,
                              IMAGES_PER_GPU=5)
    bad = [i["id"] for i in ds.image_info].index("truncated")
    with pytest.raises(DataError, match=rf"image {bad} .*truncated\.jpg"):
        SemanticSequence(ds, cfg, shuffle=False)[0]
    seq = SemanticSequence(ds, cfg, shuffle=False, on_error="skip")
    with pytest.warns(UserWarning, match=r"skipped 1 .*truncated\.jpg"):
        images, maps = seq[0]
    assert images.shape[0] == 4 and maps.max() == 1


def write_via(folder, regions, filename="a.png", size=(32, 24)):
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size).save(folder / filename)
    data = {f"{filename}1": {"filename": filename, "size": 1, "regions": regions}}
    (folder / "via_region_data.json").write_text(json.dumps(data))


def test_via_polygon_out_of_bounds(tmp_path):
    region = {"shape_attributes": {"name": "polygon", "all_points_x": [2, 60, 10],
                                   "all_points_y": [2, 5, 20]}, "region_attributes": {}}
    write_via(tmp_path / "d", [region])
    # issue 15: a polygon partly outside is clipped to the image with a counted warning
    # (it used to be refused); one wholly outside is refused, naming the region.
    for on_error in ("raise", "clip"):
        with pytest.warns(UserWarning, match="clipped 1"):
            ds = load_via(tmp_path / "d", None, on_error=on_error)
        masks, _ = ds.load_mask(0)
        assert masks.shape == (24, 32, 1) and masks[5, 31, 0]
    region["shape_attributes"]["all_points_x"] = [40, 60, 50]
    write_via(tmp_path / "d", [region])
    with pytest.raises(DataError, match=r"via_region_data\.json.*a\.png.*regions\[0\].*"
                                        r"wholly outside"):
        load_via(tmp_path / "d", None)


def test_via_missing_image_and_malformed_json(tmp_path):
    region = {"shape_attributes": {"name": "polygon", "all_points_x": [2, 9, 5],
                                   "all_points_y": [2, 2, 9]}}
    write_via(tmp_path / "d", [region])
    (tmp_path / "d" / "a.png").unlink()
    with pytest.raises(DataError, match=r"via_region_data\.json.*'a\.png'.*not found"):
        load_via(tmp_path / "d", None)
    with pytest.warns(UserWarning, match="skipped 1"):
        assert load_via(tmp_path / "d", None, on_error="skip").num_images == 0
    (tmp_path / "d" / "via_region_data.json").write_text('{"a": {"filename": "a.png",,}}')
    with pytest.raises(DataError, match=r"via_region_data\.json.*line 1 column 28"):
        load_via(tmp_path / "d", None)
    with pytest.raises(DataError, match=r"nothing\.json.*not found"):
        load_via(tmp_path / "d", None, annotation_file="nothing.json")


def test_missing_image_file(tmp_path):
    with pytest.raises(ImageReadError, match=r"gone\.png.*not found"):
        read_image(tmp_path / "gone.png")
