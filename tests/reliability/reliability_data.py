"""Corpus cases for data: image files, VIA and COCO annotations, mask folders."""

import io
import json

import numpy as np
from PIL import Image
from reliability_corpus import Case


# === Writers ===
def image(path, size=(40, 30), value=90):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value, value)).save(path)
    return path


def poly(xs, ys, **attributes):
    return {"shape_attributes": {"name": "polygon", "all_points_x": xs, "all_points_y": ys},
            "region_attributes": attributes}


SQUARE = poly([5, 15, 15, 5], [5, 5, 15, 15])


def via(folder, entries, images=None, size=(40, 30), raw=None):
    """entries: [(key, filename, regions)]; writes images (40x30) and the JSON."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in images if images is not None else {e[1] for e in entries}:
        image(folder / name, size)
    data = {key: {"filename": name, "size": 1, "regions": regions, "file_attributes": {}}
            for key, name, regions in entries}
    (folder / "via_region_data.json").write_text(raw if raw is not None else json.dumps(data))
    return folder


def load_via(folder, **kwargs):
    from kseg.data import load_via as load

    return load(folder, None, **kwargs)


def coco(folder, annotations, images=((1, "a.png"), (2, "b.png")), categories=((1, "cat"),),
         raw=None):
    folder.mkdir(parents=True, exist_ok=True)
    for _, name in images:
        image(folder / name)
    data = {"images": [{"id": i, "file_name": n, "width": 40, "height": 30} for i, n in images],
            "categories": [{"id": i, "name": n} for i, n in categories],
            "annotations": annotations}
    (folder / "instances.json").write_text(raw if raw is not None else json.dumps(data))
    return folder / "instances.json"


def ann(ann_id, image_id=1, category_id=1, segmentation=None, **extra):
    segmentation = segmentation or [[5, 5, 15, 5, 15, 15, 5, 15]]
    return {"id": ann_id, "image_id": image_id, "category_id": category_id,
            "segmentation": segmentation, "area": 100, "bbox": [5, 5, 10, 10], "iscrowd": 0,
            **extra}


def load_coco(path, **kwargs):
    from kseg.data import load_coco as load

    return load(path, path.parent, **kwargs)


def masks(folder, named, size=(40, 30)):
    """named: {stem: mask array or None (no mask)}; images 40x30."""
    for stem, mask in named.items():
        image(folder / "images" / f"{stem}.jpg", size)
        if mask is not None:
            (folder / "labels").mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask.astype(np.uint8)).save(folder / "labels" / f"{stem}.png")
    return folder


def square_mask(value=255, size=(30, 40)):
    mask = np.zeros(size, np.uint8)
    mask[5:15, 5:15] = value
    return mask


def load_masks(folder, **kwargs):
    from kseg.data import load_mask_folder

    return load_mask_folder(folder / "images", folder / "labels", **kwargs)


def read(path):
    from kseg.data import read_image

    return read_image(path)


def first_mask(dataset, image_id=0):
    return dataset.load_mask(image_id)


# === Cases ===
def _write_bytes(name, data):
    def run(folder):
        path = folder / name
        path.write_bytes(data)
        return read(path)
    return run


def _truncated_jpeg():
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, [64, 64, 3], np.uint8)).save(
        buffer, format="JPEG")
    return buffer.getvalue()[: len(buffer.getvalue()) // 2]


def _saved(mode, array, fmt="PNG"):
    def run(folder):
        path = folder / "x.jpg"  # a PNG named .jpg
        Image.fromarray(array).convert(mode).save(path, format=fmt)
        return read(path)
    return run


def image_cases():
    rgb = np.full([6, 8, 3], 100, np.uint8)
    return [
        Case("image_truncated_jpeg", "image", "error", _write_bytes("t.jpg", _truncated_jpeg()),
             r"t\.jpg"),
        Case("image_empty_file", "image", "error", _write_bytes("e.png", b""), r"e\.png"),
        Case("image_text_named_jpg", "image", "error", _write_bytes("n.jpg", b"hello"),
             r"n\.jpg"),
        Case("image_missing", "image", "error", lambda f: read(f / "gone.png"),
             r"gone\.png.*not found"),
        Case("image_rgba_named_jpg", "image", "ok", _saved("RGBA", rgb),
             check=lambda r: r.shape == (6, 8, 3) and r.dtype == np.uint8),
        Case("image_grayscale", "image", "ok", _saved("L", rgb),
             check=lambda r: r.shape == (6, 8, 3) and (r == 100).all()),
        Case("image_16bit", "image", "ok",
             lambda f: (Image.fromarray(np.full([6, 8], 65535, np.uint16)).save(f / "d.png"),
                        read(f / "d.png"))[1],
             check=lambda r: r.shape == (6, 8, 3) and r.max() == 255),
        Case("image_palette", "image", "ok", _saved("P", rgb),
             check=lambda r: r.shape == (6, 8, 3)),
    ]


def _via_case(name, expect, entries, match="", check=None, images=None, raw=None, size=(40, 30),
              **kwargs):
    return Case(name, "via", expect,
                lambda f: load_via(via(f, entries, images, size, raw), **kwargs), match, check)


def _pixels(dataset, image_id=0):
    masks, _ = dataset.load_mask(image_id)
    return masks.sum(axis=(0, 1)).tolist()


def via_cases():
    nan = '{"a": {"filename": "a.png", "regions": [{"shape_attributes": {"name": "polygon", ' \
          '"all_points_x": [1, NaN, 9], "all_points_y": [1, 1, 9]}}]}}'
    half_out = poly([30, 60, 60, 30], [5, 5, 15, 15])  # x 30..39 inside of 40 px
    return [
        _via_case("via_valid_polygon", "ok", [("a1", "a.png", [SQUARE])],
                  check=lambda d: _pixels(d) == [121]),
        _via_case("via_empty_regions_dropped_with_warning", "warn",
                  [("a1", "a.png", [SQUARE]), ("e1", "e.png", [])], r"dropped 1 .*'e\.png'",
                  check=lambda d: d.num_images == 1),
        _via_case("via_empty_regions_kept_as_negative", "ok",
                  [("a1", "a.png", [SQUARE]), ("e1", "e.png", [])], empty_images="keep",
                  check=lambda d: d.num_images == 2 and _pixels(d, 1) == []),
        _via_case("via_tiny_image_without_regions", "warn", [("t1", "t.png", [])],
                  r"dropped 1 .*'t\.png'", size=(2, 2), check=lambda d: d.num_images == 0),
        _via_case("via_duplicate_entries_merged", "warn",
                  [("a.png123", "a.png", [SQUARE]),
                   ("a.png-1", "a.png", [poly([20, 30, 30, 20], [5, 5, 15, 15])])],
                  r"merged.*'a\.png'",
                  check=lambda d: d.num_images == 1 and _pixels(d) == [121, 121]),
        _via_case("via_duplicate_identical_entries_once", "warn",
                  [("a.png123", "a.png", [SQUARE]), ("a.png-1", "a.png", [SQUARE])],
                  r"merged.*'a\.png'", check=lambda d: _pixels(d) == [121]),
        _via_case("via_null_coordinate", "error",
                  [("a1", "a.png", [SQUARE, poly([1, None, 9], [1, 1, 9])])],
                  r"a\.png.*regions\[1\].*all_points_x'\[1\] = None"),
        _via_case("via_nan_coordinate", "error", [], r"a\.png.*regions\[0\].*all_points_x'\[1\]",
                  images=["a.png"], raw=nan),
        _via_case("via_polygon_partly_outside_clipped", "warn", [("a1", "a.png", [half_out])],
                  r"clipped 1 region", check=lambda d: _pixels(d) == [110]),
        _via_case("via_polygon_wholly_outside", "error",
                  [("a1", "a.png", [poly([50, 60, 55], [5, 5, 15])])],
                  r"a\.png.*regions\[0\].*wholly outside"),
        _via_case("via_points_within_tolerance", "ok",
                  [("a1", "a.png", [poly([-1, 40, 40, -1], [-1, -1, 30, 30])])],
                  check=lambda d: _pixels(d) == [1200]),
        _via_case("via_missing_image", "error", [("a1", "a.png", [SQUARE])], r"a\.png.*not found",
                  images=[]),
        _via_case("via_malformed_json", "error", [], r"via_region_data\.json.*line 1",
                  raw='{"a": {,}}'),
        _via_case("via_top_level_list", "error", [], r"via_region_data\.json.*top level is a list",
                  raw="[]"),
        _via_case("via_entry_without_filename", "error", [], r"entry 'x'.*filename",
                  raw='{"x": {"regions": []}}'),
        _via_case("via_regions_missing", "error", [], r"a\.png.*'regions' is missing",
                  images=["a.png"], raw='{"x": {"filename": "a.png"}}'),
        _via_case("via_regions_a_number", "error", [], r"a\.png.*'regions' is a int",
                  images=["a.png"], raw='{"x": {"filename": "a.png", "regions": 3}}'),
        _via_case("via_unknown_shape", "error",
                  [("a1", "a.png", [{"shape_attributes": {"name": "star"}}])],
                  r"a\.png.*regions\[0\].*'star'"),
        _via_case("via_two_point_polygon", "error",
                  [("a1", "a.png", [poly([1, 9], [1, 9])])], r"a\.png.*regions\[0\].*>= 3"),
        _via_case("via_mismatched_lengths", "error",
                  [("a1", "a.png", [poly([1, 9, 5, 3], [1, 9, 5])])], r"a\.png.*4/3 values"),
        _via_case("via_rect_null_width", "error",
                  [("a1", "a.png", [{"shape_attributes": {"name": "rect", "x": 1, "y": 1,
                                                          "width": None, "height": 5}}])],
                  r"a\.png.*regions\[0\].*'width' = None"),
        _via_case("via_circle", "ok",
                  [("a1", "a.png", [{"shape_attributes": {"name": "circle", "cx": 20, "cy": 15,
                                                          "r": 5}}])],
                  check=lambda d: 60 < _pixels(d)[0] < 100),
        _via_case("via_class_attribute_missing", "error", [("a1", "a.png", [SQUARE])],
                  r"a\.png.*region_attributes\.kind", class_attribute="kind"),
        _via_case("via_unknown_class_value", "error",
                  [("a1", "a.png", [poly([5, 15, 15], [5, 5, 15], kind="dent")])],
                  r"a\.png.*'dent'.*unknown class", class_attribute="kind",
                  class_names=["scratch"]),
        _via_case("via_image_without_entry", "warn", [("a1", "a.png", [SQUARE])],
                  r"have no entry.*'orphan\.png'", images=["a.png", "orphan.png"],
                  check=lambda d: d.num_images == 1),
        _via_case("via1_dict_regions", "ok", [], images=["a.png"],
                  raw=json.dumps({"a": {"filename": "a.png", "regions": {"0": SQUARE}}}),
                  check=lambda d: _pixels(d) == [121]),
        _via_case("via_project_file", "ok", [], images=["a.png"],
                  raw=json.dumps({"_via_img_metadata": {"a": {"filename": "a.png",
                                                              "regions": [SQUARE]}}}),
                  check=lambda d: _pixels(d) == [121]),
        Case("via_image_not_an_image", "via", "error",
             lambda f: (via(f, [("a1", "a.png", [SQUARE])]),
                        (f / "a.png").write_bytes(b"<html>"), load_via(f))[-1],
             r"a\.png.*cannot read image header"),
    ]


def _coco_case(name, expect, annotations, match="", check=None, raw=None, load=None, **kw):
    def run(folder):
        path = coco(folder, annotations, raw=raw)
        dataset = load_coco(path, **kw)
        return load(dataset) if load else dataset
    return Case(name, "coco", expect, run, match, check)


def coco_cases():
    rle = {"size": [30, 40], "counts": [155, 10, 20, 10, 20, 10, 975]}
    return [
        _coco_case("coco_valid", "warn", [ann(7)], r"dropped 1 .*'b\.png'",
                   check=lambda d: d.num_images == 1 and d.load_mask(0)[0].sum() > 90),
        _coco_case("coco_unknown_category", "error", [ann(7), ann(8, category_id=99)],
                   r"annotations\[1\] \(id 8\).*category_id 99"),
        _coco_case("coco_unknown_image", "error", [ann(7, image_id=42)],
                   r"annotations\[0\] \(id 7\).*image_id 42"),
        _coco_case("coco_image_without_annotations_kept", "ok", [ann(7)], empty_images="keep",
                   check=lambda d: d.num_images == 2 and d.load_mask(1)[0].shape[-1] == 0),
        _coco_case("coco_malformed_json", "error", [], r"instances\.json.*malformed",
                   raw='{"images": ['),
        _coco_case("coco_missing_annotations_field", "error", [],
                   r"instances\.json.*'annotations' is missing",
                   raw='{"images": [], "categories": []}'),
        Case("coco_missing_file", "coco", "error",
             lambda f: load_coco(f / "none.json"), r"none\.json.*not found"),
        _coco_case("coco_bad_segmentation", "error", [ann(7, segmentation="oops")],
                   r"id 7.*segmentation", load=lambda d: d.load_mask(0)),
        _coco_case("coco_uncompressed_rle", "warn", [ann(7, segmentation=rle)], r"dropped 1",
                   check=lambda d: d.load_mask(0)[0].sum() == 30),
        _coco_case("coco_crowd_is_negative", "warn", [ann(7, iscrowd=1)], r"dropped 1",
                   check=lambda d: d.load_mask(0)[1].tolist() == [-1]),
    ]


def _mask_case(name, expect, named, match="", check=None, load=None, **kw):
    def run(folder):
        dataset = load_masks(masks(folder, named), **kw)
        return load(dataset) if load else dataset
    return Case(name, "folder", expect, run, match, check)


def folder_cases():
    empty = np.zeros([30, 40], np.uint8)
    return [
        _mask_case("folder_valid", "ok", {"a": square_mask()},
                   check=lambda d: d.load_semantic_mask(0).sum() == 100),
        _mask_case("folder_wrong_size_mask", "error", {"a": np.zeros([20, 20], np.uint8)},
                   r"labels.a\.png is 20x20.*images.a\.jpg is 40x30"),
        _mask_case("folder_missing_mask", "error", {"a": square_mask(), "b": None},
                   r"b\.jpg.*mask file .*b\.png not found"),
        _mask_case("folder_empty_mask_kept", "ok", {"a": square_mask(), "b": empty},
                   check=lambda d: d.num_images == 2 and d.load_mask(1)[0].shape[-1] == 0),
        _mask_case("folder_empty_mask_dropped", "warn", {"a": square_mask(), "b": empty},
                   r"dropped 1 .*b\.png", empty_images="drop",
                   check=lambda d: d.num_images == 1),
        _mask_case("folder_index_out_of_range", "error", {"a": square_mask(7)},
                   r"a\.png.*mask values \[7\]", mode="index", class_names=["x"],
                   load=lambda d: d.load_semantic_mask(0)),
        Case("folder_two_images_one_stem", "folder", "error",
             lambda f: (masks(f, {"a": square_mask()}), image(f / "images" / "a.png"),
                        load_masks(f))[-1], r"a\.(png|jpg) and .*a\.(png|jpg) share the stem"),
        Case("folder_missing_folder", "folder", "error",
             lambda f: load_masks(f), r"images: image folder not found"),
    ]


def cases():
    return image_cases() + via_cases() + coco_cases() + folder_cases()
