"""The `Dataset` base class: Matterport's API, for instance and semantic tasks.

Subclass it, register classes with `add_class`, images with `add_image`, call
`prepare()`, and override `load_mask` (instances) or `load_semantic_mask`
(class map). Class 0 is always the background ("BG").

Shape shorthand:
    H, W: image height and width; N: number of instances in an image.
    load_image -> [H, W, 3] uint8 RGB
    load_mask -> masks [H, W, N] bool, class_ids [N] int32
    load_semantic_mask -> [H, W] int32 class indices
"""

import numpy as np

from kseg.data.image_io import read_image


class DataError(ValueError):
    """A sample cannot be used; the message names the image id, file and field."""


def read_json(path, missing, malformed):
    """The parsed JSON file at `path`; a `DataError` naming the file, and the line and
    column of a syntax error, if it is missing or malformed. `missing` / `malformed` end
    the two messages (what was expected there)."""
    import json
    import os

    if not os.path.exists(path):
        raise DataError(f"{path}: annotation file not found; {missing}")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: malformed JSON at line {e.lineno} column {e.colno}: "
                        f"{e.msg}; {malformed}") from e


class Dataset:
    """Base class for datasets, compatible with matterport's `utils.Dataset`."""

    def __init__(self, class_map=None):
        self._image_ids = []
        self.image_info = []
        # Background is always the first class.
        self.class_info = [{"source": "", "id": 0, "name": "BG"}]
        self.source_class_ids = {}

    # === Registration ===
    def add_class(self, source, class_id, class_name):
        assert "." not in source, "Source name cannot contain a dot"
        for info in self.class_info:
            if info["source"] == source and info["id"] == class_id:
                return  # already registered
        self.class_info.append({"source": source, "id": class_id, "name": class_name})

    def add_image(self, source, image_id, path, **kwargs):
        info = {"id": image_id, "source": source, "path": path}
        info.update(kwargs)
        self.image_info.append(info)

    def prepare(self, class_map=None):
        """Build the internal id tables. Call after adding classes and images."""

        def clean_name(name):
            return ",".join(name.split(",")[:1])

        self.num_classes = len(self.class_info)
        self.class_ids = np.arange(self.num_classes)
        self.class_names = [clean_name(c["name"]) for c in self.class_info]
        self.num_images = len(self.image_info)
        self._image_ids = np.arange(self.num_images)
        self.class_from_source_map = {
            f"{info['source']}.{info['id']}": cid
            for info, cid in zip(self.class_info, self.class_ids)
        }
        self.image_from_source_map = {
            f"{info['source']}.{info['id']}": iid
            for info, iid in zip(self.image_info, self.image_ids)
        }
        self.sources = sorted({c["source"] for c in self.class_info})
        self.source_class_ids = {}
        for source in self.sources:
            self.source_class_ids[source] = [
                i for i, info in enumerate(self.class_info)
                if i == 0 or source == info["source"]
            ]

    # === Id mapping ===
    def map_source_class_id(self, source_class_id):
        """"coco.12" -> internal class id."""
        return self.class_from_source_map[source_class_id]

    def get_source_class_id(self, class_id, source):
        info = self.class_info[class_id]
        assert info["source"] == source
        return info["id"]

    @property
    def image_ids(self):
        return self._image_ids

    def source_image_link(self, image_id):
        return self.image_info[image_id]["path"]

    def image_reference(self, image_id):
        """A string that identifies the image for messages: its path or id."""
        info = self.image_info[image_id]
        return str(info.get("path") or f"{info['source']}:{info['id']}")

    # === Loading ===
    def load_image(self, image_id):
        """The image as RGB uint8 [H, W, 3] (grayscale, RGBA, 16-bit, palette converted)."""
        return read_image(self.image_info[image_id]["path"], image_id=image_id)

    def load_mask(self, image_id):
        """Instance masks [H, W, N] bool and class ids [N] int32.

        The base class has no annotations: it returns zero instances. Override it.
        """
        height, width = self.image_size(image_id)
        return np.zeros([height, width, 0], bool), np.zeros([0], np.int32)

    def load_semantic_mask(self, image_id):
        """Class map [H, W] int32 (0 = background), derived from `load_mask`.

        Later instances paint over earlier ones. Semantic datasets override this.
        """
        masks, class_ids = self.load_mask(image_id)
        class_map = np.zeros(masks.shape[:2], np.int32)
        for i, class_id in enumerate(class_ids):
            class_map[masks[..., i]] = class_id
        return class_map

    def image_size(self, image_id):
        """(height, width) from the image info when known, else from the image."""
        info = self.image_info[image_id]
        if "height" in info and "width" in info:
            return int(info["height"]), int(info["width"])
        return self.load_image(image_id).shape[:2]

    def check_sample(self, image_id, image, masks=None, class_map=None):
        """Raise `DataError` if masks do not match the image."""
        ref = self.image_reference(image_id)
        if masks is not None and masks.shape[:2] != image.shape[:2]:
            raise DataError(
                f"image {image_id} ({ref}): mask size {masks.shape[:2]} != image size "
                f"{image.shape[:2]}; expected masks of the image's height and width."
            )
        if class_map is not None and class_map.shape[:2] != image.shape[:2]:
            raise DataError(
                f"image {image_id} ({ref}): semantic mask size {class_map.shape[:2]} != "
                f"image size {image.shape[:2]}; expected a label image of the same size."
            )

    def __len__(self):
        return len(self.image_info)

    def __repr__(self):
        n = getattr(self, "num_classes", len(self.class_info))
        return f"{type(self).__name__}(images={len(self.image_info)}, classes={n})"
