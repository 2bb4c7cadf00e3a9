"""Small helpers shared across kseg, and Matterport's `mrcnn.utils` names.

A Matterport script ports with `from kseg import utils` in place of `from mrcnn import
utils`: `utils.compute_ap`, `utils.extract_bboxes`, `utils.resize_image`, `utils.Dataset`,
... are the kseg functions of the same name and signature, re-exported here (loaded on
first use, so importing `kseg.utils.io` stays light):

    compute_ap, compute_ap_range, compute_matches, compute_recall, compute_overlaps,
    compute_overlaps_masks                          -> kseg.evaluate.matching
    extract_bboxes, resize_image, resize_mask, minimize_mask, expand_mask, unmold_mask,
    norm_boxes, denorm_boxes                        -> kseg.data.molding
    Dataset                                         -> kseg.data.dataset
    download_trained_weights                        -> kseg.weights
"""

import importlib

_MATTERPORT_NAMES = {
    "compute_ap": "kseg.evaluate.matching",
    "compute_ap_range": "kseg.evaluate.matching",
    "compute_matches": "kseg.evaluate.matching",
    "compute_recall": "kseg.evaluate.matching",
    "compute_overlaps": "kseg.evaluate.matching",
    "compute_overlaps_masks": "kseg.evaluate.matching",
    "extract_bboxes": "kseg.data.molding",
    "resize_image": "kseg.data.molding",
    "resize_mask": "kseg.data.molding",
    "minimize_mask": "kseg.data.molding",
    "expand_mask": "kseg.data.molding",
    "unmold_mask": "kseg.data.molding",
    "norm_boxes": "kseg.data.molding",
    "denorm_boxes": "kseg.data.molding",
    "Dataset": "kseg.data.dataset",
    "download_trained_weights": "kseg.weights",
}

__all__ = sorted(_MATTERPORT_NAMES)


def __getattr__(name):
    module = _MATTERPORT_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'kseg.utils' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__():
    return sorted(set(globals()) | set(_MATTERPORT_NAMES))
