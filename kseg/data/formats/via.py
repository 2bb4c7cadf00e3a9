"""VGG Image Annotator (VIA) 1.x / 2.x JSON exports as an instance `Dataset`.

    dataset = load_via("car_damage/dataset", "train")            # one class
    parts = load_via("car_damage/dataset", "train", class_attribute="name",
                     annotation_file="train_multiclass.json")   # one class per value

Regions are polygons (rect, circle and ellipse become polygons). Each entry of
`image_info` keeps `polygons` (Matterport's list of `{"name": "polygon",
"all_points_x": [...], "all_points_y": [...]}`), `region_classes` (source class
ids), `height` and `width`.

Nothing is lost without a word:
- a polygon that runs partly outside its image is clipped to the image (points up to
  `tolerance` px out silently, farther ones with one warning counting the regions);
  a polygon wholly outside, covering no pixel, or with a null / NaN coordinate is a
  `DataError` naming the image, the region index and the field;
- images without regions are dropped with a warning naming them (Matterport's samples
  drop them), or kept as negative images (no instances) with `empty_images="keep"`;
- two entries for the same file (VIA re-imports write `photo.jpg12345` and
  `photo.jpg-1`) are merged (identical regions once) with a warning naming the file;
- images in the folder that have no entry in the JSON are named in a warning.
`on_error="skip"` skips unusable images or regions instead of raising, with a warning.
"""

import json
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from kseg.data.dataset import DataError, Dataset, read_json
from kseg.data.formats.polygons import SHAPES, clip_polygon, pixel_count, shape_to_polygon
from kseg.data.image_io import oriented_size

ON_ERROR = ("raise", "skip", "clip")  # "clip": kept for old code, now the same as "raise"
EMPTY_IMAGES = ("drop", "keep")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
_GENERIC_DIRS = {"dataset", "datasets", "data", "train", "val", "images"}

__all__ = ["ViaDataset", "load_via", "shape_to_polygon", "SHAPES"]


class ViaDataset(Dataset):
    """Images annotated with VIA polygons. Build it with `load_via`."""

    source = "via"

    def load_mask(self, image_id):
        """Instance masks [H, W, N] bool (polygons clipped to the image), class ids [N] int32."""
        from skimage.draw import polygon as draw_polygon

        info = self.image_info[image_id]
        height, width = info["height"], info["width"]
        polygons = info["polygons"]
        masks = np.zeros([height, width, len(polygons)], dtype=bool)
        for i, p in enumerate(polygons):
            rr, cc = draw_polygon(p["all_points_y"], p["all_points_x"], shape=(height, width))
            masks[rr, cc, i] = True
        class_ids = [self.map_source_class_id(f"{info['source']}.{c}")
                     for c in info["region_classes"]]
        return masks, np.asarray(class_ids, dtype=np.int32).reshape([-1])

    def image_reference(self, image_id):
        return str(self.image_info[image_id]["path"])


def load_via(dataset_dir, subset, class_attribute=None, class_names=None,
             annotation_file="via_region_data.json", on_error="raise", tolerance=2.0,
             empty_images="drop"):
    """Load `<dataset_dir>/<subset>/<annotation_file>` into a prepared `ViaDataset`.

    Args:
        dataset_dir: folder holding the subset folders (or the images when subset is None).
        subset: "train", "val", ... or None.
        class_attribute: region attribute naming the class (e.g. "name"); None: one class.
        class_names: class names without BG. With `class_attribute`, they fix the order
            and any other value is an error; without it, `class_names[0]` names the class.
        annotation_file: JSON file name inside the subset folder (or a path).
        on_error: "raise" (DataError naming the image and field) or "skip" (skip unusable
            images / regions with one warning). "clip" is accepted as "raise".
        tolerance: pixels outside the image that are clipped without a warning.
        empty_images: "drop" (default; with a warning naming them) or "keep" (as negative
            images without instances) for images whose entry has no regions.
    """
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error={on_error!r}: expected one of {', '.join(ON_ERROR)}.")
    if empty_images not in EMPTY_IMAGES:
        raise ValueError(f"empty_images={empty_images!r}: expected 'drop' or 'keep'.")
    folder = Path(dataset_dir) / subset if subset else Path(dataset_dir)
    json_path = folder / annotation_file
    entries, merged = _merge_duplicates(_read_via_json(json_path), json_path)
    parser = _Parser(json_path, folder, class_attribute, on_error, tolerance)
    parsed = [parser.parse_entry(e) for e in entries]
    records = [r for r in parsed if r is not None and (r["polygons"] or empty_images == "keep")]
    names = _class_names(records, class_attribute, class_names, dataset_dir)
    dataset = _build(records, names, class_attribute, json_path, on_error)
    _warn_dropped(json_path, merged, [r["filename"] for r in parsed
                                      if r is not None and not r["polygons"]], empty_images)
    _warn_unlisted(json_path, folder, entries)
    parser.warn()
    return dataset


def _names(items, limit=5):
    shown = ", ".join(repr(i) for i in items[:limit])
    return shown + (f", ... (+{len(items) - limit} more)" if len(items) > limit else "")


def _warn_dropped(json_path, merged, empty, empty_images):
    """Warnings for merged duplicate entries and for images without regions."""
    if merged:
        warnings.warn(f"{json_path}: {len(merged)} image(s) had several entries (VIA re-import "
                      f"keys such as 'photo.jpg12345' and 'photo.jpg-1'); their regions were "
                      f"merged: {_names(merged)}.", stacklevel=3)
    if empty and empty_images == "drop":
        warnings.warn(f"{json_path}: dropped {len(empty)} image(s) without regions: "
                      f"{_names(empty)}; pass empty_images='keep' to keep them as negative "
                      f"images (no instances).", stacklevel=3)


def _warn_unlisted(json_path, folder, entries):
    """Warn naming the images in `folder` that the JSON does not mention."""
    listed = {e["filename"] for e in entries}
    found = sorted(p.name for p in folder.iterdir() if p.is_file()
                   and p.suffix.lower() in IMAGE_EXTENSIONS and p.name not in listed) \
        if folder.is_dir() else []
    if found:
        warnings.warn(f"{json_path}: {len(found)} image(s) in {folder} have no entry in the "
                      f"JSON and are not loaded: {_names(found)}.", stacklevel=3)


def _merge_duplicates(entries, json_path):
    """Entries with one per file name (regions of duplicates merged, identical ones once)
    and the list of merged file names."""
    by_name, merged = {}, []
    for entry in entries:
        name = entry["filename"]
        if name not in by_name:
            by_name[name] = entry
            continue
        first = by_name[name]
        regions = [_as_list(first.get("regions"), json_path, name),
                   _as_list(entry.get("regions"), json_path, name)]
        seen, union = set(), []
        for region in regions[0] + regions[1]:
            key = json.dumps(region, sort_keys=True, default=str)
            if key not in seen:
                seen.add(key)
                union.append(region)
        by_name[name] = {**first, "regions": union}
        if name not in merged:
            merged.append(name)
    return list(by_name.values()), merged


def _as_list(regions, json_path, filename):
    if isinstance(regions, dict):
        return [regions[k] for k in sorted(regions, key=_region_key)]
    if isinstance(regions, list):
        return regions
    raise DataError(f"{json_path}: image {filename!r}: field 'regions' is a "
                    f"{type(regions).__name__}; expected a list or an object.")


def _read_via_json(json_path):
    """The list of image entries of a VIA export (1.x, 2.x or a 2.x project file)."""
    data = read_json(json_path, "expected a VIA JSON export.",
                     "expected a VIA 1.x/2.x JSON export.")
    if isinstance(data, dict) and "_via_img_metadata" in data:
        data = data["_via_img_metadata"]
    if not isinstance(data, dict):
        raise DataError(f"{json_path}: top level is a {type(data).__name__}; expected a VIA "
                        f"export, an object keyed by image ('<filename><size>': {{...}}).")
    for key, entry in data.items():
        if not isinstance(entry, dict) or "filename" not in entry:
            raise DataError(f"{json_path}: entry {key!r} has no 'filename'; expected "
                            f"{{'filename': ..., 'regions': [...]}}.")
    return list(data.values())


class _Parser:
    """Turns VIA entries into records, applying the on_error policy and counting fixes."""

    def __init__(self, json_path, folder, class_attribute, on_error, tolerance):
        self.json_path, self.folder = json_path, folder
        self.class_attribute, self.on_error, self.tolerance = class_attribute, on_error, tolerance
        self.clipped, self.skipped = 0, []

    def fail(self, filename, message):
        """Raise, or record a skip when on_error="skip"."""
        text = f"{self.json_path}: image {filename!r}: {message}"
        if self.on_error != "skip":
            raise DataError(text)
        self.skipped.append(text)

    def parse_entry(self, entry):
        """A record {filename, path, size, polygons, values} (no polygons: an image without
        regions) or None (skipped)."""
        filename = entry["filename"]
        if "regions" not in entry:
            return self.fail(filename, "field 'regions' is missing; expected a list (VIA 2.x) "
                                       "or an object keyed '0', '1', ... (VIA 1.x).")
        regions = entry["regions"]
        if isinstance(regions, dict):
            regions = [regions[k] for k in sorted(regions, key=_region_key)]
        if not isinstance(regions, list):
            return self.fail(filename, f"field 'regions' is a {type(regions).__name__}; "
                                       f"expected a list or an object.")
        path = self.folder / filename
        size = self.image_size(path, filename)
        if size is None:
            return None
        parsed = [self.parse_region(filename, i, r, size) for i, r in enumerate(regions)]
        parsed = [p for p in parsed if p is not None]
        if regions and not parsed:
            return None  # every region skipped (on_error="skip"), already counted
        return {"filename": filename, "path": path, "size": size,
                "polygons": [p[0] for p in parsed], "values": [p[1] for p in parsed]}

    def image_size(self, path, filename):
        """(height, width) from the image header (no decoding), or None when skipped."""
        if not path.exists():
            return self.fail(filename, f"image file not found at {path}; expected it beside "
                                       f"the JSON (field 'filename').")
        try:
            with Image.open(path) as img:
                return oriented_size(img)  # as VIA showed it: EXIF orientation applied
        except OSError as e:
            return self.fail(filename, f"cannot read image header of {path} ({e}); expected "
                                       f"a JPEG/PNG image.")

    def parse_region(self, filename, index, region, size):
        """(polygon dict, class value) or None when skipped."""
        where = f"regions[{index}]"
        if not isinstance(region, dict) or not isinstance(region.get("shape_attributes"), dict):
            return self.fail(filename, f"{where}.shape_attributes is missing; expected "
                                       f"{{'name': 'polygon', 'all_points_x': [...], ...}}.")
        try:
            xs, ys = shape_to_polygon(region["shape_attributes"])
        except KeyError as e:
            return self.fail(filename, f"{where}.shape_attributes: field {e} is missing.")
        except (TypeError, ValueError) as e:
            return self.fail(filename, f"{where}.shape_attributes: {e}")
        value = self.class_value(filename, where, region)
        if value is _SKIP:
            return None
        xs, ys = self.clip(filename, where, xs, ys, size)
        if xs is None:
            return None
        polygon = {"name": "polygon", "all_points_x": xs.tolist(), "all_points_y": ys.tolist(),
                   "shape": region["shape_attributes"].get("name")}
        return polygon, value

    def class_value(self, filename, where, region):
        """The class attribute's value; without a class attribute, the "name" value or None."""
        attributes = region.get("region_attributes") or {}
        if self.class_attribute is None:
            return _attribute_value(attributes.get("name")) if isinstance(attributes, dict) \
                else None
        value = _attribute_value(attributes.get(self.class_attribute))
        if value is None:
            self.fail(filename, f"{where}.region_attributes.{self.class_attribute} is missing "
                                f"or empty (got {attributes!r}); expected a class name.")
            return _SKIP
        return value

    def clip(self, filename, where, xs, ys, size):
        """Polygon xs, ys [P] clipped to the image (counted when more than `tolerance` px
        out); (None, None) when skipped. Wholly outside / no pixel is an error."""
        height, width = size
        tol = self.tolerance
        far = (xs < -tol) | (xs > width - 1 + tol) | (ys < -tol) | (ys > height - 1 + tol)
        cx, cy = clip_polygon(xs, ys, width, height)
        if len(cx) < 3 or pixel_count(cx, cy, height, width) == 0:
            inside = "wholly outside" if len(cx) < 3 else "covering no pixel of"
            self.fail(filename, f"{where}.shape_attributes: the polygon (x {xs.min():g}.."
                                f"{xs.max():g}, y {ys.min():g}..{ys.max():g}) lies {inside} "
                                f"the {width}x{height} image; expected points with "
                                f"0 <= x < {width}, 0 <= y < {height}.")
            return None, None
        if far.any():
            self.clipped += 1
        return cx, cy

    def warn(self):
        """One warning each for clipped regions and skipped images/regions."""
        if self.clipped:
            warnings.warn(f"{self.json_path}: clipped {self.clipped} region(s) running more "
                          f"than {self.tolerance:g} px outside their image to the image.",
                          stacklevel=3)
        if self.skipped:
            first = "\n  ".join(self.skipped[:3])
            warnings.warn(f"{self.json_path}: skipped {len(self.skipped)} unusable image(s) or "
                          f"region(s), first:\n  {first}", stacklevel=3)


_SKIP = object()


def _region_key(key):
    return (0, int(key)) if str(key).isdigit() else (1, str(key))


def _attribute_value(value):
    """A class name from a region attribute: text, or the one checked key of a checkbox."""
    if isinstance(value, dict):
        checked = [k for k, v in value.items() if v]
        return checked[0] if len(checked) == 1 else None
    if value is None or str(value).strip() == "":
        return None
    return str(value).strip()


def _class_names(records, class_attribute, class_names, dataset_dir):
    """The ordered class names (without BG)."""
    if class_attribute is None:
        if class_names:
            return [class_names[0]]
        return [_default_class_name(records, dataset_dir)]
    if class_names:
        return list(class_names)
    return sorted({v for r in records for v in r["values"]})


def _default_class_name(records, dataset_dir):
    """The one "name" value used by every region, else the dataset folder's name."""
    values = {v for r in records for v in r["values"]}
    if len(values) == 1 and None not in values:
        return values.pop()
    folder = Path(dataset_dir).resolve()
    while folder.name.lower() in _GENERIC_DIRS and folder.parent != folder:
        folder = folder.parent
    return folder.name or "object"


def _build(records, names, class_attribute, json_path, on_error):
    dataset = ViaDataset()
    for class_id, name in enumerate(names, start=1):
        dataset.add_class(ViaDataset.source, class_id, name)
    lookup = {name: i for i, name in enumerate(names, start=1)}
    for record in records:
        classes, polygons = [], []
        for polygon, value in zip(record["polygons"], record["values"]):
            if class_attribute is not None and value not in lookup:
                if on_error != "skip":
                    raise DataError(
                        f"{json_path}: image {record['filename']!r}: region_attributes."
                        f"{class_attribute} = {value!r} is an unknown class; expected one "
                        f"of {names}.")
                continue
            classes.append(lookup[value] if class_attribute is not None else 1)
            polygons.append(polygon)
        height, width = record["size"]
        dataset.add_image(ViaDataset.source, image_id=record["filename"],
                          path=str(record["path"]), width=width, height=height,
                          polygons=polygons, region_classes=classes,
                          annotation_file=str(json_path))
    dataset.prepare()
    return dataset
