"""Matterport's `mrcnn.utils` names, in one place: `from kseg.models.mask_rcnn import utils`
replaces `from mrcnn import utils`. Each is the kseg function of the same name and
signature (re-exported, not copied):

    compute_ap, compute_ap_range, compute_matches, compute_recall, compute_overlaps,
    compute_overlaps_masks                          <- kseg.evaluate.matching
    extract_bboxes, resize_image, resize_mask, minimize_mask, expand_mask, unmold_mask,
    norm_boxes, denorm_boxes                        <- kseg.data.pipelines.molding
    Dataset                                         <- kseg.data.dataset
    download_trained_weights                        <- kseg.weights
"""

from kseg.data.dataset import Dataset
from kseg.data.pipelines.molding import (
                               denorm_boxes,
                               expand_mask,
                               extract_bboxes,
                               minimize_mask,
                               norm_boxes,
                               resize_image,
                               resize_mask,
                               unmold_mask,
)
from kseg.evaluate.matching import (
                               compute_ap,
                               compute_ap_range,
                               compute_matches,
                               compute_overlaps,
                               compute_overlaps_masks,
                               compute_recall,
)
from kseg.weights import download_trained_weights

__all__ = ["Dataset", "compute_ap", "compute_ap_range", "compute_matches", "compute_overlaps",
           "compute_overlaps_masks", "compute_recall", "denorm_boxes",
           "download_trained_weights", "expand_mask", "extract_bboxes", "minimize_mask",
           "norm_boxes", "resize_image", "resize_mask", "unmold_mask"]
