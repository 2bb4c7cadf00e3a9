"""CamVid (SegNet tutorial layout) as a semantic `Dataset` with remapped classes.

    <root>/val/0016E5_07959.png, <root>/valannot/0016E5_07959.png, <root>/val.txt

Labels are class indices 0..11 (`CAMVID_CLASSES`; 11 = Unlabelled). `class_map`
maps CamVid classes to kseg classes; every other class becomes 0 (BG), and
Unlabelled becomes `ignore_index` when given. The default is road vs non-road.
"""

from pathlib import Path

import numpy as np

from kseg.data.dataset import DataError, Dataset
from kseg.data.formats.folder import header_size, instances_from_class_map
from kseg.data.image_io import read_label

CAMVID_CLASSES = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol",
                  "Fence", "Car", "Pedestrian", "Bicyclist", "Unlabelled")
UNLABELLED = 11


class CamVidDataset(Dataset):
    """CamVid image/label pairs (`path`, `label_path`). Build it with `load_camvid`."""

    source = "camvid"

    def __init__(self, class_map, ignore_index=None):
        super().__init__()
        self.lookup = np.zeros(256, np.int32)
        for src, dst in class_map.items():
            self.lookup[int(src)] = int(dst)
        if ignore_index is not None:
            self.lookup[UNLABELLED] = ignore_index
        self.ignore_index = ignore_index

    def load_semantic_mask(self, image_id):
        """Class map [H, W] int32 of kseg classes."""
        info = self.image_info[image_id]
        label = read_label(info["label_path"], image_id)
        if label.ndim != 2 or label.shape != (info["height"], info["width"]):
            raise DataError(f"label {info['label_path']} has shape {label.shape} but image "
                            f"{info['path']} is {info['height']}x{info['width']} (HxW); "
                            f"expected a single-channel label of the same size.")
        return self.lookup[np.clip(label.astype(np.int64), 0, 255)]

    def load_mask(self, image_id):
        """Connected components per class: masks [H, W, N] bool, class ids [N] int32."""
        class_map = self.load_semantic_mask(image_id)
        if self.ignore_index is not None:
            class_map = np.where(class_map == self.ignore_index, 0, class_map)
        return instances_from_class_map(class_map, self.num_classes)


def load_camvid(root, split="val", class_map=None, class_names=None, ignore_index=None):
    """Prepared `CamVidDataset` of `<root>/<split>` and `<root>/<split>annot`.

    Args:
        root: the CamVid folder.
        split: "train", "val", "test", or several joined by "+" ("train+val") or as a list.
        class_map: {CamVid class index: kseg class id}; default {3: 1} (road).
        class_names: kseg class names without BG; default ["road"].
        ignore_index: label of Unlabelled (11) pixels; None: background.
    Pairs come from `<split>.txt` when present (paths resolved by basename), else from
    matching file names in the two folders.
    """
    class_map = {3: 1} if class_map is None else dict(class_map)
    class_names = ["road"] if class_names is None else list(class_names)
    if class_map and max(class_map.values()) > len(class_names):
        raise ValueError(f"class_map {class_map} uses class ids above len(class_names) = "
                         f"{len(class_names)}; name every kseg class (without BG).")
    dataset = CamVidDataset(class_map, ignore_index)
    for class_id, name in enumerate(class_names, start=1):
        dataset.add_class(CamVidDataset.source, class_id, name)
    splits = split.split("+") if isinstance(split, str) else list(split)
    pairs = [pair for name in splits for pair in camvid_pairs(Path(root), name)]
    for image_path, label_path in pairs:
        for path in (image_path, label_path):
            if not path.exists():
                raise DataError(f"{path}: file not found; listed for split {split!r} in {root}.")
        height, width = header_size(image_path)
        dataset.add_image(CamVidDataset.source, image_id=image_path.stem, path=str(image_path),
                          label_path=str(label_path), height=height, width=width)
    dataset.prepare()
    return dataset


def camvid_pairs(root, split):
    """[(image path, label path)] for a split, from `<split>.txt` or the folders."""
    image_dir, label_dir = root / split, root / f"{split}annot"
    listing = root / f"{split}.txt"
    if listing.exists():
        pairs = []
        for number, line in enumerate(listing.read_text().splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2:
                raise DataError(f"{listing}: line {number} {line!r}; expected "
                                f"'<image path> <label path>'.")
            pairs.append((image_dir / Path(parts[0]).name, label_dir / Path(parts[1]).name))
        return pairs
    if not image_dir.is_dir():
        raise DataError(f"{image_dir}: folder not found (and no {listing.name}); expected "
                        f"the SegNet CamVid layout <root>/{split}/, <root>/{split}annot/.")
    return [(p, label_dir / p.name) for p in sorted(image_dir.glob("*.png"))]


def camvid_splits(root):
    """The labelled training splits present under `root` ("train", "val" with their
    `annot` folder), joined by "+" for `load_camvid`, e.g. "train+val"."""
    root = Path(root)
    found = [s for s in ("train", "val") if (root / f"{s}annot").is_dir()]
    if not found:
        raise DataError(f"{root}: no train/, val/ or test/ with its annot/ folder; expected "
                        f"the SegNet CamVid layout <root>/<split>/, <root>/<split>annot/.")
    return "+".join(found)
