"""Molding and unmolding match Matterport's arithmetic to the pixel (the COCO weights were
trained with its molding): resize_image truncates skimage's float result, and detections
map back through norm_boxes / denorm_boxes. Landscape, portrait, up- and downscaled."""

import numpy as np
import pytest
import skimage.transform

from kseg.data.pipelines.molding import denorm_boxes, norm_boxes, resize_image
from kseg.models.mask_rcnn.inference import mold_inputs, unmold_detections
from kseg.models.mask_rcnn.presets import CocoConfig

# (original h, w, resize mode, IMAGE_MIN_DIM, IMAGE_MAX_DIM)
CASES = [(240, 320, "square", 256, 256),   # landscape, downscaled
         (320, 240, "square", 256, 256),   # portrait, downscaled
         (100, 150, "square", 200, 256),   # upscaled (x1.707) and padded
         (90, 150, "pad64", 128, 256),     # upscaled (x1.422), padded to 128x256
         (130, 70, "pad64", 64, 256)]      # no scaling, padded to 192x128


def matterport_resize(image, min_dim, max_dim, mode):
    """mrcnn.utils.resize_image, written out: scale rule, skimage resize with
    preserve_range, `astype(uint8)` (truncation), zero padding."""
    h, w = image.shape[:2]
    scale = max(1, min_dim / min(h, w))
    if mode == "square" and round(max(h, w) * scale) > max_dim:
        scale = max_dim / max(h, w)
    if scale != 1:
        image = skimage.transform.resize(
            image, (round(h * scale), round(w * scale)), order=1, mode="constant", cval=0,
            clip=True, preserve_range=True, anti_aliasing=False)
    image = image.astype(np.uint8)
    h, w = image.shape[:2]
    if mode == "square":
        top, left = (max_dim - h) // 2, (max_dim - w) // 2
        pads = [(top, max_dim - h - top), (left, max_dim - w - left)]
    else:
        pads = [((64 - n % 64) % 64 // 2, (64 - n % 64) % 64 - (64 - n % 64) % 64 // 2)
                for n in (h, w)]
    image = np.pad(image, pads + [(0, 0)])
    return image, (pads[0][0], pads[1][0], pads[0][0] + h, pads[1][0] + w)


def matterport_unmold(boxes, molded_hw, window, original_hw):
    """MaskRCNN.unmold_detections' box arithmetic, from its formulas."""
    mh, mw = molded_hw
    wy1, wx1 = window[0] / (mh - 1), window[1] / (mw - 1)
    wy2, wx2 = (window[2] - 1) / (mh - 1), (window[3] - 1) / (mw - 1)
    wy1, wx1, wy2, wx2 = np.float32([wy1, wx1, wy2, wx2])
    inside = (boxes - np.float32([wy1, wx1, wy1, wx1])) / np.float32(
        [wy2 - wy1, wx2 - wx1, wy2 - wy1, wx2 - wx1])
    oh, ow = original_hw
    return np.around(inside * np.array([oh - 1, ow - 1, oh - 1, ow - 1])
                     + np.array([0, 0, 1, 1])).astype(np.int32)


def matterport_full_mask(mask, box, original_hw):
    y1, x1, y2, x2 = box
    small = skimage.transform.resize(mask, (y2 - y1, x2 - x1), order=1, mode="constant",
                                     cval=0, clip=True, anti_aliasing=False)
    full = np.zeros(original_hw, bool)
    full[y1:y2, x1:x2] = small >= 0.5
    return full


def _photo(h, w, seed):
    """Smooth gradients plus noise: many resized values fall between integers."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    base = np.stack([yy * 255 / h, xx * 255 / w, (yy + xx) * 127 / (h + w)], -1)
    return np.clip(base + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("h,w,mode,min_dim,max_dim", CASES)
def test_resize_image_matches_matterport_to_the_pixel(h, w, mode, min_dim, max_dim):
    image = _photo(h, w, seed=h + w)
    ours, window, scale, _, _ = resize_image(image, min_dim, max_dim, mode=mode)
    expected, expected_window = matterport_resize(image, min_dim, max_dim, mode)
    assert tuple(window) == expected_window
    np.testing.assert_array_equal(ours, expected)
    if scale != 1:  # rounding instead of truncating would change many pixels here
        rounded = skimage.transform.resize(
            image, np.subtract(window[2:], window[:2]), order=1, mode="constant",
            preserve_range=True).round().astype(np.uint8)
        y1, x1, y2, x2 = window
        assert np.mean(rounded != ours[y1:y2, x1:x2]) > 0.2


@pytest.mark.parametrize("h,w,mode,min_dim,max_dim", CASES)
def test_detect_unmolds_boxes_and_masks_as_matterport(h, w, mode, min_dim, max_dim):
    config = CocoConfig(IMAGE_RESIZE_MODE=mode, IMAGE_MIN_DIM=min_dim, IMAGE_MAX_DIM=max_dim,
                        NUM_CLASSES=3)
    molded, _, windows = mold_inputs([_photo(h, w, 0)], config)
    molded_hw, window = molded.shape[1:3], windows[0]
    rng = np.random.default_rng(h * w)
    # detections inside the window (as the detection layer clips them), 3 classes
    win = norm_boxes(np.asarray(window)[None], molded_hw)[0]
    corners = rng.uniform(0, 1, (40, 2, 2))
    yx1, yx2 = corners.min(1), corners.max(1)
    boxes = np.concatenate([yx1, yx2], -1)
    boxes = win[[0, 1, 0, 1]] + boxes * (win[[2, 3, 2, 3]] - win[[0, 1, 0, 1]])
    detections = np.zeros((50, 6), np.float32)
    detections[:40, :4] = boxes
    detections[:40, 4] = rng.integers(1, 3, 40)
    detections[:40, 5] = np.linspace(0.99, 0.5, 40)
    masks = rng.uniform(0, 1, (50, 28, 28, 3)).astype(np.float32)
    r = unmold_detections(detections, masks, (h, w, 3), molded.shape[1:], window)
    expected = matterport_unmold(detections[:40, :4], molded_hw, window, (h, w))
    keep = (expected[:, 2] > expected[:, 0]) & (expected[:, 3] > expected[:, 1])
    np.testing.assert_array_equal(r["rois"], expected[keep])
    full = [matterport_full_mask(masks[i, :, :, int(detections[i, 4])], expected[i], (h, w))
            for i in np.flatnonzero(keep)]
    np.testing.assert_array_equal(r["masks"], np.stack(full, -1))


def test_unmold_worked_example_landscape_to_256():
    """240x320 molded to 256: scale 0.8, window (32, 0, 224, 256). A box whose bottom edge
    is molded row 150 (exclusive): normalized (150 - 1) / 255; in the window
    (149 - 32) / 191; in the original 117 / 191 * 239 + 1 = 147.40 -> 147 (the old
    (150 - 32) * 240 / 192 = 147.5 rounded to 148)."""
    molded = (256, 256, 3)
    window = (32, 0, 224, 256)
    box = norm_boxes(np.array([[100, 64, 150, 192]]), molded[:2])
    detections = np.zeros((1, 6), np.float32)
    detections[0, :4], detections[0, 4], detections[0, 5] = box[0], 1, 0.9
    r = unmold_detections(detections, np.ones((1, 4, 4, 2), np.float32), (240, 320, 3),
                          molded, window)
    # y1: 68 / 191 * 239 = 85.09 -> 85; x1: 64 / 255 * 319 = 80.06 -> 80;
    # x2: 191 / 255 * 319 + 1 = 239.94 -> 240
    np.testing.assert_array_equal(r["rois"], [[85, 80, 147, 240]])
    np.testing.assert_array_equal(denorm_boxes(norm_boxes(np.array([[5, 6, 70, 90]]),
                                                          (100, 120)), (100, 120)),
                                  [[5, 6, 70, 90]])
