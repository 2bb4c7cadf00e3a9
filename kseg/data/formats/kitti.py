"""The KITTI road benchmark layout as a semantic road / non-road `Dataset`.

    <root>/training/image_2/um_000000.png
    <root>/training/gt_image_2/um_road_000000.png   (road = magenta (255, 0, 255))

Classes: 0 BG (non-road), 1 road. Ground truth black pixels are KITTI's "don't
care" area: background unless `ignore_index` is given. `gt_type="lane"` reads
the `_lane_` files (only `um_` images have them). The testing subset has no
ground truth; its images load, `load_semantic_mask` raises `DataError`.
"""

from pathlib import Path

import numpy as np

from kseg.data.dataset import DataError, Dataset
from kseg.data.formats.folder import header_size, instances_from_class_map
from kseg.data.image_io import read_image


class KittiRoadDataset(Dataset):
    """KITTI road images with `gt_path` (or None) in `image_info`. Build it with `load_kitti_road`."""

    source = "kitti_road"

    def __init__(self, ignore_index=None):
        super().__init__()
        self.ignore_index = ignore_index

    def load_semantic_mask(self, image_id):
        """Class map [H, W] int32: 1 where the ground truth is magenta (blue and red high)."""
        info = self.image_info[image_id]
        if not info.get("gt_path"):
            raise DataError(f"image {image_id} ({info['path']}): no ground truth "
                            f"(field 'gt_path'); expected a gt_image_2/*_{info['gt_type']}_* file.")
        gt = read_image(info["gt_path"], image_id).astype(np.int32)
        if gt.shape[:2] != (info["height"], info["width"]):
            raise DataError(f"ground truth {info['gt_path']} is {gt.shape[1]}x{gt.shape[0]} but "
                            f"image {info['path']} is {info['width']}x{info['height']}; "
                            f"expected the same size.")
        class_map = ((gt[..., 2] > 127) & (gt[..., 0] > 127)).astype(np.int32)
        if self.ignore_index is not None:
            class_map[gt.max(axis=2) <= 127] = self.ignore_index
        return class_map

    def load_mask(self, image_id):
        """Road regions as instances: masks [H, W, N] bool, class ids [N] int32."""
        class_map = self.load_semantic_mask(image_id)
        return instances_from_class_map(np.where(class_map == 1, 1, 0), 2)


def gt_name(image_name, gt_type="road"):
    """"um_000000.png" -> "um_road_000000.png"."""
    stem, _, number = Path(image_name).stem.rpartition("_")
    return f"{stem}_{gt_type}_{number}{Path(image_name).suffix}"


def load_kitti_road(root, subset="training", gt_type="road", ignore_index=None):
    """Prepared `KittiRoadDataset` of `<root>/<subset>/image_2` (classes BG, road).

    Args:
        root: the folder holding `training/` (and `testing/`).
        subset: "training" or "testing".
        gt_type: "road" (default) or "lane"; images without such a file are left out
            of the training subset.
        ignore_index: label for KITTI's black "don't care" ground truth pixels.
    """
    if gt_type not in ("road", "lane"):
        raise ValueError(f"gt_type={gt_type!r}: expected 'road' or 'lane'.")
    image_dir = Path(root) / subset / "image_2"
    gt_dir = Path(root) / subset / "gt_image_2"
    if not image_dir.is_dir():
        raise DataError(f"{image_dir}: folder not found; expected the KITTI road layout "
                        f"<root>/{subset}/image_2/*.png.")
    dataset = KittiRoadDataset(ignore_index)
    dataset.add_class(KittiRoadDataset.source, 1, "road")
    for path in sorted(image_dir.glob("*.png")):
        gt_path = gt_dir / gt_name(path.name, gt_type)
        if not gt_path.exists():
            if gt_dir.is_dir() and subset == "training":
                continue  # e.g. no lane ground truth for uu_/umm_ images
            gt_path = None
        height, width = header_size(path)
        dataset.add_image(KittiRoadDataset.source, image_id=path.stem, path=str(path),
                          gt_path=str(gt_path) if gt_path else None, gt_type=gt_type,
                          height=height, width=width)
    dataset.prepare()
    return dataset
