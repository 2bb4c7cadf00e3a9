"""Datasets, loaders for common annotation formats, and input pipelines.

Here: the `Dataset` core (dataset.py), image reading (image_io.py), data paths
(paths.py) and group-disjoint splits (splits.py). Subpackages: `formats/` (VIA, COCO,
mask folders, KITTI road, CamVid, polygons), `generated/` (shapes, road and smoke
scenes), `pipelines/` (molding, augmentation, PyDataset and tf.data pipelines). The old
flat module paths (`kseg.data.via`, `kseg.data.maskrcnn_pipeline`, ...) still import
(kseg._moved).

Keras-dependent pipelines (`SemanticSequence`, `make_semantic_tf_dataset`,
`load_semantic_sample`) are imported on first use, so `import kseg.data` stays light.

May import: kseg.config, kseg.ops, kseg.utils (never kseg.models, kseg.cli or anything above).
"""

import importlib

from kseg.data.dataset import DataError, Dataset
from kseg.data.formats.camvid import CAMVID_CLASSES, CamVidDataset, load_camvid
from kseg.data.formats.coco import CocoDataset, load_coco
from kseg.data.formats.folder import (
    SemanticFolderDataset,
    instances_from_class_map,
    load_mask_folder,
)
from kseg.data.formats.kitti import KittiRoadDataset, load_kitti_road
from kseg.data.formats.via import ViaDataset, load_via
from kseg.data.generated.shapes import ShapesDataset
from kseg.data.generated.synthetic import RoadScenesDataset, SmokeScenesDataset
from kseg.data.image_io import ImageReadError, list_images, read_image, read_label
from kseg.data.pipelines.augment import apply_augmentation, default_augmentation
from kseg.data.splits import (
    describe_split,
    file_prefix,
    group_split,
    grouped_split,
    image_groups,
    sequential_split,
    split_dataset,
    split_groups,
    split_ids,
    subset_dataset,
)

# name -> (module, attribute)
_LAZY = {
    "SemanticSequence": ("kseg.data.pipelines.semantic_pipeline", "SemanticSequence"),
    "load_semantic_sample": ("kseg.data.pipelines.semantic_pipeline", "load_semantic_sample"),
    "make_semantic_tf_dataset": ("kseg.data.pipelines.semantic_pipeline", "make_tf_dataset"),
    "scene_augmentation": ("kseg.data.pipelines.scene_augment", "scene_augmentation"),
    "RandomHaze": ("kseg.data.pipelines.scene_augment", "RandomHaze"),
}

__all__ = ["CAMVID_CLASSES", "CamVidDataset", "CocoDataset", "DataError", "Dataset",
           "ImageReadError", "KittiRoadDataset", "RoadScenesDataset", "SemanticFolderDataset",
           "ShapesDataset", "SmokeScenesDataset", "ViaDataset", "apply_augmentation",
           "default_augmentation", "instances_from_class_map", "load_camvid", "load_coco",
           "grouped_split", "list_images", "load_kitti_road", "load_mask_folder", "load_via",
           "read_image", "read_label", "sequential_split", "split_dataset", "split_ids",
           "subset_dataset", "describe_split", "file_prefix", "group_split", "image_groups",
           "split_groups", "scene_augmentation", "RandomHaze", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kseg.data' has no attribute {name!r}")
