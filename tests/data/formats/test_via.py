"""VIA 1.x / 2.x loading, shapes, classes, errors, and the real car damage set."""

import json

import numpy as np
import pytest
from PIL import Image

from kseg.data import DataError, load_via


def poly(xs, ys, **attributes):
    return {"shape_attributes": {"name": "polygon", "all_points_x": xs, "all_points_y": ys},
            "region_attributes": attributes}


def write_via(folder, entries, name="via_region_data.json", size=(40, 30)):
    """entries: {filename: regions}; writes 40x30 (WxH) images and the JSON."""
    folder.mkdir(parents=True, exist_ok=True)
    data = {}
    for filename, regions in entries.items():
        Image.new("RGB", size, (10, 20, 30)).save(folder / filename)
        data[f"{filename}123"] = {"filename": filename, "size": 123, "regions": regions,
                                  "file_attributes": {}}
    (folder / name).write_text(json.dumps(data))
    return folder / name


def test_via2_polygons_single_class(tmp_path):
    write_via(tmp_path / "balloon" / "train", {
        "a.png": [poly([2, 10, 10, 2], [2, 2, 8, 8], name="x"), poly([20, 30, 25], [5, 5, 20])],
        "b.png": [poly([0, 39, 39, 0], [0, 0, 29, 29])],
        "empty.png": [],  # unannotated images are left out, as in Matterport's samples
    })
    ds = load_via(tmp_path / "balloon", "train")
    assert ds.class_names == ["BG", "balloon"] and ds.num_images == 2
    info = ds.image_info[0]
    assert (info["height"], info["width"]) == (30, 40) and len(info["polygons"]) == 2
    masks, class_ids = ds.load_mask(0)
    assert masks.shape == (30, 40, 2) and masks.dtype == bool
    np.testing.assert_array_equal(class_ids, [1, 1])
    assert masks[5, 5, 0] and not masks[5, 5, 1] and masks[:, :, 0].sum() in range(40, 80)
    assert load_via(tmp_path / "balloon", "train", class_names=["ball"]).class_names[1] == "ball"


def test_via1_dict_regions_and_other_shapes(tmp_path):
    regions = {
        "1": {"shape_attributes": {"name": "rect", "x": 2, "y": 3, "width": 10, "height": 5},
              "region_attributes": {"kind": "box"}},
        "0": {"shape_attributes": {"name": "circle", "cx": 30, "cy": 15, "r": 6},
              "region_attributes": {"kind": "round"}},
        "2": {"shape_attributes": {"name": "ellipse", "cx": 20, "cy": 20, "rx": 8, "ry": 3},
              "region_attributes": {"kind": "round"}},
    }
    write_via(tmp_path / "d", {"a.png": regions})
    ds = load_via(tmp_path / "d", None, class_attribute="kind")
    assert ds.class_names == ["BG", "box", "round"]
    masks, class_ids = ds.load_mask(0)
    np.testing.assert_array_equal(class_ids, [2, 1, 2])  # regions ordered by key "0", "1", "2"
    assert masks[:, :, 1].sum() == 50 and masks[3:8, 2:12, 1].all()
    assert masks[:, :, 0].sum() == pytest.approx(np.pi * 36, rel=0.2)
    assert masks[:, :, 2].sum() == pytest.approx(np.pi * 24, rel=0.3)


def test_class_attribute_with_fixed_names_and_unknown_value(tmp_path):
    write_via(tmp_path / "d", {"a.png": [poly([1, 9, 5], [1, 1, 9], name="dent"),
                                         poly([11, 19, 15], [1, 1, 9], name="scratch")]})
    ds = load_via(tmp_path / "d", None, class_attribute="name", class_names=["scratch", "dent"])
    np.testing.assert_array_equal(ds.load_mask(0)[1], [2, 1])
    with pytest.raises(DataError, match=r"(?s)a\.png.*name.*'dent'.*unknown class"):
        load_via(tmp_path / "d", None, class_attribute="name", class_names=["scratch"])
    ds = load_via(tmp_path / "d", None, class_attribute="name", class_names=["scratch"],
                  on_error="skip")
    np.testing.assert_array_equal(ds.load_mask(0)[1], [1])


def test_missing_class_attribute_and_regions(tmp_path):
    write_via(tmp_path / "d", {"a.png": [poly([1, 9, 5], [1, 1, 9])]})
    with pytest.raises(DataError, match=r"a\.png.*region_attributes\.name"):
        load_via(tmp_path / "d", None, class_attribute="name")
    path = tmp_path / "e" / "via_region_data.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"x": {"filename": "a.png"}}))
    with pytest.raises(DataError, match=r"via_region_data\.json.*a\.png.*'regions'"):
        load_via(tmp_path / "e", None)


def test_border_points_within_tolerance_are_clipped(tmp_path):
    write_via(tmp_path / "d", {"a.png": [poly([-1, 40, 40, -1], [-1, -1, 31, 31])]})
    masks, _ = load_via(tmp_path / "d", None).load_mask(0)
    assert masks.all()


@pytest.mark.data
def test_car_damage_counts(car_damage_dir):
    train = load_via(car_damage_dir, "train")
    val = load_via(car_damage_dir, "val")
    assert train.class_names == ["BG", "damage"] and val.class_names == ["BG", "damage"]
    assert (train.num_images, val.num_images) == (62, 8)
    assert sum(len(i["polygons"]) for i in train.image_info) == 152
    assert sum(len(i["polygons"]) for i in val.image_info) == 12
    masks, class_ids = train.load_mask(0)
    assert masks.shape == (1024, 1024, len(class_ids)) and set(class_ids) == {1}
    assert masks.any(axis=(0, 1)).all()


@pytest.mark.data
def test_car_damage_multiclass(car_damage_dir):
    parts = load_via(car_damage_dir, "train", class_attribute="name",
                     annotation_file="train_multiclass.json")
    assert parts.class_names == ["BG", "door", "front_bumper", "headlamp", "hood", "rear_bumper"]
    assert parts.num_images == 62
    _, class_ids = parts.load_mask(0)
    assert class_ids.min() >= 1 and class_ids.max() <= 5


def test_polygons_line_up_with_a_rotated_phone_photo(tmp_path):
    """VIA shows a photo with its EXIF orientation applied, so polygons are drawn in that
    frame: the mask must match the image kseg reads, not the stored pixels."""
    folder = tmp_path / "cars" / "train"
    folder.mkdir(parents=True)
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :20] = 255  # shown upright (orientation 6), this is the top half
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(folder / "p.jpg", exif=exif, quality=95)
    # the displayed picture is 20 wide, 40 tall: a polygon over its top half
    region = poly([0, 19, 19, 0], [0, 0, 19, 19])
    (folder / "via_region_data.json").write_text(json.dumps(
        {"p.jpg1": {"filename": "p.jpg", "size": 1, "regions": [region]}}))
    ds = load_via(tmp_path / "cars", "train")
    image = ds.load_image(0)
    masks, _ = ds.load_mask(0)
    assert image.shape[:2] == masks.shape[:2] == (40, 20)
    assert image[masks[:, :, 0]].mean() > 200 and image[~masks[:, :, 0]].mean() < 60
