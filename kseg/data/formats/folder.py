"""Semantic datasets from an image folder and a mask folder paired by file stem.

    smoke = load_mask_folder("FSS/images", "FSS/labels", class_names=["smoke"])
    parts = load_mask_folder(imgs, masks, class_names=["a", "b"], mode="index")
    voc = load_mask_folder(imgs, masks, ["person"], mode="palette",
                           palette={(192, 128, 128): 1})

Masks are "binary" (values > `threshold` are class 1; handles {0, 255} and
anti-aliased masks), "index" (stored values are class indices) or "palette"
(RGB colors mapped to classes by `palette`; other colors are background).
`load_mask` turns each class's connected components into instances, so Mask
R-CNN can train on the same folder.
"""

import warnings
from pathlib import Path

import numpy as np
import skimage.measure
from PIL import Image

from kseg.data.dataset import DataError, Dataset
from kseg.data.image_io import read_image, read_label

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
MODES = ("binary", "index", "palette")


def instances_from_class_map(class_map, num_classes, connectivity=2):
    """Connected components per class of a class map [H, W] -> masks [H, W, N] bool, ids [N]."""
    masks, class_ids = [], []
    for class_id in range(1, num_classes):
        labels = skimage.measure.label(class_map == class_id, connectivity=connectivity)
        for label in range(1, labels.max() + 1):
            masks.append(labels == label)
            class_ids.append(class_id)
    if not masks:
        return np.zeros(class_map.shape[:2] + (0,), bool), np.zeros([0], np.int32)
    return np.stack(masks, axis=2), np.asarray(class_ids, np.int32)


def header_size(path):
    """(height, width) of an image file from its header, without decoding."""
    with Image.open(path) as img:
        return img.size[1], img.size[0]


class SemanticFolderDataset(Dataset):
    """Image/mask pairs; `image_info[i]` has `path`, `mask_path`, `height`, `width`."""

    source = "folder"

    def __init__(self, mode="binary", threshold=127, palette=None):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode={mode!r}: expected one of {', '.join(MODES)}.")
        if mode == "palette" and not palette:
            raise ValueError("mode='palette' needs palette={(r, g, b): class_id, ...}.")
        self.mode, self.threshold = mode, threshold
        self.palette = {tuple(int(c) for c in k): int(v) for k, v in (palette or {}).items()}

    def load_semantic_mask(self, image_id):
        """Class map [H, W] int32 decoded per `mode`; DataError if sizes differ."""
        info = self.image_info[image_id]
        if self.mode == "palette":
            class_map = self._decode_palette(read_image(info["mask_path"], image_id))
        else:
            class_map = self._decode(read_label(info["mask_path"], image_id), image_id)
        expected = (int(info["height"]), int(info["width"]))
        if class_map.shape != expected:
            raise DataError(_size_message(info["path"], info["mask_path"], expected,
                                          class_map.shape))
        return class_map

    def load_mask(self, image_id):
        """Instances [H, W, N] bool, class ids [N] int32: connected components per class."""
        return instances_from_class_map(self.load_semantic_mask(image_id), self.num_classes)

    def _decode(self, label, image_id):
        if label.ndim == 3:
            label = label.max(axis=2) if self.mode == "binary" else label[..., 0]
        if self.mode == "binary":
            return (label > self.threshold).astype(np.int32)
        label = label.astype(np.int32)
        bad = np.unique(label[(label < 0) | (label >= self.num_classes)])
        if bad.size:
            raise DataError(f"image {image_id} ({self.image_info[image_id]['mask_path']}): "
                            f"mask values {bad[:8].tolist()} are not classes; expected "
                            f"indices 0..{self.num_classes - 1} for {self.class_names}.")
        return label

    def _decode_palette(self, rgb):
        class_map = np.zeros(rgb.shape[:2], np.int32)
        for color, class_id in self.palette.items():
            class_map[np.all(rgb == np.array(color, np.uint8), axis=-1)] = class_id
        return class_map


def _size_message(image_path, mask_path, image_size, mask_size):
    return (f"mask {mask_path} is {mask_size[1]}x{mask_size[0]} (WxH) but image {image_path} "
            f"is {image_size[1]}x{image_size[0]}; expected a mask of the image's size.")


def load_mask_folder(image_dir, mask_dir, class_names=None, mask_suffix=".png", mode="binary",
                     threshold=127, palette=None, on_error="raise", empty_images="keep"):
    """Pair `image_dir/<stem>.<ext>` with `mask_dir/<stem><mask_suffix>`.

    Args:
        class_names: names without BG (default ["foreground"] for binary masks).
        mode: "binary", "index" or "palette" (see the module docstring).
        threshold: binary masks: values above it are foreground.
        palette: palette mode: {(r, g, b): class_id}.
        on_error: "raise" (DataError for a missing mask or a size mismatch) or "skip"
            (drop such pairs with one warning).
        empty_images: images whose mask holds no class: "keep" (default; negative
            images) or "drop" (every mask is decoded now; one warning names them).
    Returns:
        A prepared `SemanticFolderDataset`, images sorted by file name.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error={on_error!r}: expected 'raise' or 'skip'.")
    if empty_images not in ("keep", "drop"):
        raise ValueError(f"empty_images={empty_images!r}: expected 'keep' or 'drop'.")
    class_names = _default_names(class_names, mode, palette)
    dataset = SemanticFolderDataset(mode, threshold, palette)
    for class_id, name in enumerate(class_names, start=1):
        dataset.add_class(SemanticFolderDataset.source, class_id, name)
    skipped = []
    for image_path, mask_path in _pairs(Path(image_dir), Path(mask_dir), mask_suffix):
        try:
            size = _checked_size(image_path, mask_path)
        except DataError as e:
            if on_error == "raise":
                raise
            skipped.append(str(e))
            continue
        dataset.add_image(SemanticFolderDataset.source, image_id=image_path.stem,
                          path=str(image_path), mask_path=str(mask_path),
                          height=size[0], width=size[1])
    if skipped:
        warnings.warn(f"{mask_dir}: skipped {len(skipped)} image/mask pair(s), first: "
                      + " | ".join(skipped[:3]), stacklevel=2)
    dataset.prepare()
    if empty_images == "drop":
        _drop_empty(dataset, mask_dir)
    return dataset


def _drop_empty(dataset, mask_dir):
    """Remove the images whose mask decodes to background only, with one warning."""
    empty = [i for i in dataset.image_ids if not dataset.load_semantic_mask(i).any()]
    if not empty:
        return
    names = [Path(dataset.image_info[i]["mask_path"]).name for i in empty]
    shown = ", ".join(names[:5]) + (f", ... (+{len(names) - 5} more)" if len(names) > 5 else "")
    dataset.image_info = [info for i, info in enumerate(dataset.image_info) if i not in
                          set(empty)]
    dataset.prepare()
    warnings.warn(f"{mask_dir}: dropped {len(empty)} image(s) whose mask is empty "
                  f"(background only): {shown}; empty_images='keep' keeps them as negative "
                  f"images.", stacklevel=3)


def _default_names(class_names, mode, palette):
    if class_names:
        return list(class_names)
    if mode == "binary":
        return ["foreground"]
    if mode == "palette" and palette:
        return [f"class_{i}" for i in range(1, max(int(v) for v in palette.values()) + 1)]
    raise ValueError(f"mode={mode!r} needs class_names (without BG), e.g. ['road', 'car'].")


def _pairs(image_dir, mask_dir, mask_suffix):
    """Sorted (image path, mask path) pairs; the mask may not exist."""
    if not image_dir.is_dir():
        raise DataError(f"{image_dir}: image folder not found.")
    if not mask_dir.is_dir():
        raise DataError(f"{mask_dir}: mask folder not found.")
    images = sorted(p for p in image_dir.iterdir()
                    if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    stems = {}
    for path in images:
        if path.stem in stems:
            raise DataError(f"{path} and {stems[path.stem]} share the stem {path.stem!r}; "
                            f"expected one image per mask.")
        stems[path.stem] = path
    return [(path, mask_dir / (path.stem + mask_suffix)) for path in images]


def _checked_size(image_path, mask_path):
    """(height, width) of the image; DataError if the mask is missing or of another size."""
    if not mask_path.exists():
        raise DataError(f"image {image_path}: mask file {mask_path} not found; expected a mask "
                        f"named <image stem> + mask_suffix.")
    try:
        image_size, mask_size = header_size(image_path), header_size(mask_path)
    except OSError as e:
        raise DataError(f"image {image_path} / mask {mask_path}: cannot read the header "
                        f"({e}); expected image files.") from e
    if image_size != mask_size:
        raise DataError(_size_message(image_path, mask_path, image_size, mask_size))
    return image_size
