"""COCO-format instance annotations (via pycocotools) as a `Dataset`, Matterport style.

    dataset = load_coco("annotations/instances_val2017.json", "val2017")
    dataset, coco = load_coco(path, image_dir, class_ids=[1, 3], return_coco=True)

Polygons, compressed RLE and uncompressed RLE segmentations are supported.
`image_info[i]["annotations"]` keeps the raw annotations (with `iscrowd`).
`load_mask` returns crowd instances with a negative class id, as Matterport does.

An annotation whose `category_id` is not among `categories` (or whose `image_id` is not
among `images`) is a `DataError` naming the annotation id. Images without any annotation
are dropped with a warning naming them (`empty_images="keep"` keeps them as negative
images, without instances).
"""

import contextlib
import io
import os
import warnings

import numpy as np

from kseg.data.dataset import DataError, Dataset, read_json


class CocoDataset(Dataset):
    """COCO images and annotations. Build it with `load_coco`."""

    def load_mask(self, image_id):
        """Masks [H, W, N] bool and class ids [N] int32 (crowd instances negative)."""
        info = self.image_info[image_id]
        if info["source"] != "coco":
            return super().load_mask(image_id)
        height, width = info["height"], info["width"]
        masks, class_ids = [], []
        for i, ann in enumerate(info["annotations"]):
            class_id = self.map_source_class_id(f"coco.{ann['category_id']}")
            mask = self._ann_to_mask(info, i, ann, height, width)
            if mask.max() < 1:
                continue
            if ann.get("iscrowd"):
                class_id = -class_id
                if mask.shape != (height, width):
                    mask = np.ones([height, width], dtype=bool)
            masks.append(mask)
            class_ids.append(class_id)
        if not masks:
            return super().load_mask(image_id)
        return np.stack(masks, axis=2).astype(bool), np.asarray(class_ids, dtype=np.int32)

    def load_semantic_mask(self, image_id):
        """Class map [H, W] int32; crowd regions stay background."""
        masks, class_ids = self.load_mask(image_id)
        class_map = np.zeros(masks.shape[:2], np.int32)
        for i, class_id in enumerate(class_ids):
            if class_id > 0:
                class_map[masks[..., i]] = class_id
        return class_map

    def _ann_to_mask(self, info, index, ann, height, width):
        try:
            return ann_to_mask(ann, height, width)
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise DataError(
                f"image {info['id']} ({info['path']}): annotations[{index}] (id "
                f"{ann.get('id')}) field 'segmentation' cannot be decoded ({e}); expected "
                f"polygons [[x1, y1, ...], ...] or an RLE {{'size': [h, w], 'counts': ...}}."
            ) from e

    def image_reference(self, image_id):
        info = self.image_info[image_id]
        if info["source"] == "coco":
            return f"http://cocodataset.org/#explore?id={info['id']} ({info['path']})"
        return super().image_reference(image_id)


def ann_to_rle(ann, height, width):
    """A COCO segmentation (polygons, RLE or uncompressed RLE) -> compressed RLE dict."""
    from pycocotools import mask as mask_utils

    segm = ann["segmentation"]
    if isinstance(segm, list):
        rles = mask_utils.frPyObjects(segm, height, width)
        return mask_utils.merge(rles)
    if isinstance(segm["counts"], list):
        return mask_utils.frPyObjects(segm, height, width)
    return segm


def ann_to_mask(ann, height, width):
    """A COCO annotation -> binary mask [h, w] uint8 (a compressed RLE keeps its own size)."""
    from pycocotools import mask as mask_utils

    return mask_utils.decode(ann_to_rle(ann, height, width))


def load_coco(annotation_json, image_dir, class_ids=None, return_coco=False,
              empty_images="drop"):
    """Load a COCO annotation file into a prepared `CocoDataset`.

    Args:
        annotation_json: path of the instances JSON.
        image_dir: folder holding the images named by `file_name`.
        class_ids: COCO category ids to load (None: all). Only images with at least one
            annotation of these categories are loaded, as in Matterport.
        return_coco: also return the `pycocotools.coco.COCO` object.
        empty_images: images with no annotation at all: "drop" (with a warning naming
            them) or "keep" (negative images without instances).
    Returns:
        dataset, or (dataset, coco) when return_coco.
    """
    if empty_images not in ("drop", "keep"):
        raise ValueError(f"empty_images={empty_images!r}: expected 'drop' or 'keep'.")
    coco = _open_coco(annotation_json)
    if not class_ids:
        class_ids = sorted(coco.getCatIds())
    image_ids = sorted({i for c in class_ids for i in coco.getImgIds(catIds=[c])})
    empty = sorted(i for i in coco.imgs if not coco.imgToAnns.get(i))
    if empty and empty_images == "keep":
        image_ids = sorted(set(image_ids) | set(empty))
    elif empty:
        names = ", ".join(repr(coco.imgs[i].get("file_name", i)) for i in empty[:5])
        more = f", ... (+{len(empty) - 5} more)" if len(empty) > 5 else ""
        warnings.warn(f"{annotation_json}: dropped {len(empty)} image(s) without annotations: "
                      f"{names}{more}; pass empty_images='keep' to keep them as negative "
                      f"images (no instances).", stacklevel=2)
    dataset = CocoDataset()
    for class_id in class_ids:
        dataset.add_class("coco", int(class_id), coco.loadCats(class_id)[0]["name"])
    for i in image_ids:
        img = coco.imgs[i]
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=[i], catIds=class_ids, iscrowd=None))
        dataset.add_image("coco", image_id=i, path=os.path.join(image_dir, img["file_name"]),
                          width=img["width"], height=img["height"], annotations=annotations)
    dataset.prepare()
    return (dataset, coco) if return_coco else dataset


def _check_references(data, annotation_json):
    """DataError naming the annotation whose category_id or image_id points nowhere."""
    categories = {c.get("id") for c in data["categories"] if isinstance(c, dict)}
    images = {i.get("id") for i in data["images"] if isinstance(i, dict)}
    for index, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict):
            raise DataError(f"{annotation_json}: annotations[{index}] is a "
                            f"{type(ann).__name__}; expected an object.")
        where = f"{annotation_json}: annotations[{index}] (id {ann.get('id')})"
        if ann.get("category_id") not in categories:
            raise DataError(f"{where}: category_id {ann.get('category_id')!r} is not among "
                            f"the 'categories' ids {sorted(categories)[:20]}.")
        if ann.get("image_id") not in images:
            raise DataError(f"{where}: image_id {ann.get('image_id')!r} is not among the "
                            f"'images' ids.")


def _open_coco(annotation_json):
    """A COCO object, with DataErrors naming the file for missing or malformed JSON."""
    from pycocotools.coco import COCO

    data = read_json(annotation_json, "expected a COCO JSON.",
                     "expected a COCO instances file.")
    for field in ("images", "annotations", "categories"):
        if not isinstance(data, dict) or not isinstance(data.get(field), list):
            raise DataError(f"{annotation_json}: field {field!r} is missing; expected a COCO "
                            f"instances file with 'images', 'annotations' and 'categories'.")
    _check_references(data, annotation_json)
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco
