"""Molding images in, unmolding detections out (Matterport's `detect` around the model).

Shape shorthand:
    detections [batch, D, (y1, x1, y2, x2, class_id, score)] normalized in the molded image
    mrcnn_mask [batch, D, mh, mw, C]
"""

import numpy as np

from kseg.data.pipelines.molding import (
    compose_image_meta,
    denorm_boxes,
    mold_image,
    norm_boxes,
    resize_image,
    unmold_mask,
)


def mold_inputs(images, config):
    """RGB images of any size -> (molded [N, S, S, 3], image_metas [N, META], windows [N, 4])."""
    molded, metas, windows = [], [], []
    for image in images:
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"detect expects RGB images [H, W, 3]; got shape {image.shape}")
        resized, window, scale, _, _ = resize_image(
            image, min_dim=config.IMAGE_MIN_DIM, max_dim=config.IMAGE_MAX_DIM,
            min_scale=config.IMAGE_MIN_SCALE, mode=config.IMAGE_RESIZE_MODE)
        molded.append(mold_image(resized, config))
        metas.append(compose_image_meta(0, image.shape, resized.shape, window, scale,
                                        np.ones([config.NUM_CLASSES], np.int32)))
        windows.append(window)
    return np.stack(molded), np.stack(metas), np.array(windows)


def window_to_original(boxes, molded_shape, window, original_shape):
    """Normalized boxes [N, 4] in the molded image -> int32 pixels of the original image.

    Matterport's arithmetic, to the pixel: the window is normalized with `norm_boxes`,
    boxes are expressed in it, and `denorm_boxes` maps them to the original size (so a
    length scales by about (H0 - 1) / (window_h - 1)).
    """
    wy1, wx1, wy2, wx2 = norm_boxes(np.asarray(window), molded_shape[:2])
    shift = np.array([wy1, wx1, wy1, wx1])
    wh, ww = wy2 - wy1, wx2 - wx1
    boxes = np.divide(np.asarray(boxes, np.float32) - shift, np.array([wh, ww, wh, ww]))
    return denorm_boxes(boxes, original_shape[:2])


def unmold_detections(detections, mrcnn_mask, original_shape, molded_shape, window):
    """One image's padded detections -> Matterport's result dict in original pixels."""
    count = int(np.sum(detections[:, 4] > 0))
    boxes = detections[:count, :4]
    class_ids = detections[:count, 4].astype(np.int32)
    scores = detections[:count, 5].astype(np.float32)
    masks = mrcnn_mask[np.arange(count), :, :, class_ids]
    boxes = window_to_original(boxes, molded_shape, window, original_shape)
    boxes = np.clip(boxes, 0, [original_shape[0], original_shape[1]] * 2)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    boxes, class_ids, scores, masks = boxes[keep], class_ids[keep], scores[keep], masks[keep]
    full = np.zeros((len(boxes), *original_shape[:2]), bool)
    for i, (mask, box) in enumerate(zip(masks, boxes)):
        unmold_mask(mask, box, original_shape, out=full[i])
    full = np.moveaxis(full, 0, -1)  # [H, W, N] (a view: each instance's mask is contiguous)
    return {"rois": boxes, "class_ids": class_ids, "scores": scores, "masks": full}


def _run_batch(keras_model, molded, metas, batch):
    """Model outputs (detections, masks) for <= batch molded images, padding the batch."""
    pad = batch - len(molded)
    if pad:
        molded = np.concatenate([molded, np.repeat(molded[-1:], pad, 0)])
        metas = np.concatenate([metas, np.repeat(metas[-1:], pad, 0)])
    outputs = keras_model.predict_on_batch([molded, metas])
    return np.asarray(outputs[0]), np.asarray(outputs[3])


def detect_images(keras_model, config, images, verbose=0):
    """Run the inference model over `images` in batches of BATCH_SIZE (last one padded).

    With IMAGE_RESIZE_MODE "pad64"/"none", images whose molded sizes differ run one by one.
    """
    images = [np.asarray(image) for image in images]
    results = []
    batch = config.BATCH_SIZE
    for start in range(0, len(images), batch):
        chunk = images[start:start + batch]
        groups = [chunk] if len({_molded_shape(i, config) for i in chunk}) == 1 \
            else [[image] for image in chunk]
        for group in groups:
            molded, metas, windows = mold_inputs(group, config)
            detections, masks = _run_batch(keras_model, molded, metas, batch)
            for i, image in enumerate(group):
                results.append(unmold_detections(detections[i], masks[i], image.shape,
                                                 molded.shape[1:], windows[i]))
        if verbose:
            print(f"detect: {min(start + batch, len(images))}/{len(images)} images")
    return results


def _molded_shape(image, config):
    if config.IMAGE_RESIZE_MODE in ("square", "crop"):
        return tuple(config.IMAGE_SHAPE[:2])
    return resize_image(image, config.IMAGE_MIN_DIM, config.IMAGE_MAX_DIM,
                        config.IMAGE_MIN_SCALE, config.IMAGE_RESIZE_MODE)[0].shape[:2]
