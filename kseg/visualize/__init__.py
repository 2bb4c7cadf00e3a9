"""Visualisation (matplotlib + NumPy), Matterport ``mrcnn/visualize.py`` API.

Output convention for the figure functions (``display_*``, ``draw_rois``,
``draw_boxes``, ``plot_*``):

* ``save_path`` given: the figure is written as PNG (size = ``figsize`` x
  figure dpi, 100 by default) and the path is returned;
* otherwise, if ``ax`` was passed in, the caller's figure is returned
  untouched (not shown, not closed);
* otherwise, without a display (non-interactive backend such as Agg) the
  PNG goes to a fresh temp file whose path is returned; with a display the
  figure is shown (``plt.show()``, like Matterport) and returned.

Figures created here are closed after saving. ``keras.visualization`` is
not used: ``draw_bounding_boxes`` needs OpenCV and the helpers work on
backend tensor batches, while everything here is plain NumPy.
"""

from __future__ import annotations

import colorsys
import os
import random
import sys
import tempfile

import matplotlib
import numpy as np


def _headless():
    if os.environ.get("MPLBACKEND") or "ipykernel" in sys.modules:
        return False
    if sys.platform.startswith("linux"):
        return not (os.environ.get("DISPLAY") or
                    os.environ.get("WAYLAND_DISPLAY"))
    return False


if "matplotlib.pyplot" not in sys.modules and _headless():
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import patches  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from kseg.utils.io import atomic_path  # noqa: E402

__all__ = [
    "random_colors",
    "apply_mask",
    "draw_box",
    "display_instances",
    "display_top_masks",
    "display_images",
    "draw_rois",
    "draw_boxes",
    "plot_precision_recall",
    "plot_overlaps",
    "display_differences",
    "colorize_class_map",
    "overlay_semantic",
    "save_overlay_png",
    "splash",
    "save_instances_png",
    "save_comparison_png",
    "save_semantic_comparison_png",
    "figure_to_array",
]

_NON_INTERACTIVE = {"agg", "cairo", "pdf", "pgf", "ps", "svg", "template"}


def _has_display():
    return matplotlib.get_backend().lower() not in _NON_INTERACTIVE


def _new_axes(figsize):
    fig, ax = plt.subplots(1, figsize=figsize)
    return fig, ax


def _finish(fig, save_path=None, own_figure=True):
    """Apply the module's save/return convention (see module docstring)."""
    if save_path is not None:
        save_path = os.fspath(save_path)
        with atomic_path(save_path) as tmp:
            fig.savefig(tmp, format="png")
        if own_figure:
            plt.close(fig)
        return save_path
    if not own_figure:
        return fig
    if not _has_display():
        fd, path = tempfile.mkstemp(prefix="kseg_", suffix=".png")
        os.close(fd)
        fig.savefig(path, format="png")
        plt.close(fig)
        return path
    plt.show()
    return fig


def figure_to_array(fig):
    """Render a matplotlib figure to a ``[H, W, 3]`` uint8 RGB array."""
    canvas = fig.canvas
    if not hasattr(canvas, "buffer_rgba"):
        canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


# ---------------------------------------------------------------------------
# Colours and masks
# ---------------------------------------------------------------------------

def random_colors(N, bright=True, seed=None):
    """``N`` distinct RGB colours (floats in [0, 1]), evenly spaced hues in
    HSV, shuffled (deterministically when ``seed`` is given)."""
    brightness = 1.0 if bright else 0.7
    colors = [colorsys.hsv_to_rgb(i / max(N, 1), 1.0, brightness)
              for i in range(N)]
    if seed is None:
        random.shuffle(colors)
    else:
        random.Random(seed).shuffle(colors)
    return colors


def _color255(color):
    c = np.asarray(color, dtype=np.float64).reshape(-1)[:3]
    return c if c.max(initial=0) > 1.0 else c * 255.0


def apply_mask(image, mask, color, alpha=0.5):
    """Blend ``color`` (RGB in [0, 1] or [0, 255]) into ``image`` where
    ``mask`` is set (> 0.5). Returns a new array of the input dtype (the
    input is not modified, unlike Matterport)."""
    image = np.asarray(image)
    m = np.asarray(mask) > 0.5
    c = _color255(color)
    out = image.astype(np.float64)
    for ch in range(3):
        out[..., ch] = np.where(m, out[..., ch] * (1 - alpha) + alpha * c[ch],
                                out[..., ch])
    if np.issubdtype(image.dtype, np.integer):
        out = np.clip(np.round(out), 0, np.iinfo(image.dtype).max)
    return out.astype(image.dtype)


def draw_box(image, box, color):
    """Draw a 2-px box ``(y1, x1, y2, x2)`` into a copy of ``image``."""
    image = np.array(image, copy=True)
    h, w = image.shape[:2]
    y1, x1, y2, x2 = (int(v) for v in box)
    y1, y2 = np.clip([y1, y2], 0, h)
    x1, x2 = np.clip([x1, x2], 0, w)
    image[y1:y1 + 2, x1:x2] = color
    image[max(y2 - 2, 0):y2, x1:x2] = color
    image[y1:y2, x1:x1 + 2] = color
    image[y1:y2, max(x2 - 2, 0):x2] = color
    return image


def _contours(mask):
    from skimage.measure import find_contours

    padded = np.zeros((mask.shape[0] + 2, mask.shape[1] + 2), dtype=np.uint8)
    padded[1:-1, 1:-1] = mask
    # (row, col) -> (x, y), undo the padding offset
    return [np.fliplr(v) - 1 for v in find_contours(padded, 0.5)]


def _setup_image_axes(ax, height, width, title, margin=10):
    ax.set_ylim(height + margin, -margin)
    ax.set_xlim(-margin, width + margin)
    ax.axis("off")
    ax.set_title(title)


# ---------------------------------------------------------------------------
# Instance segmentation displays
# ---------------------------------------------------------------------------

def display_instances(image, boxes, masks, class_ids, class_names,
                      scores=None, title="", figsize=(16, 16), ax=None,
                      show_mask=True, show_bbox=True, colors=None,
                      captions=None, save_path=None):
    """Image with dashed boxes, captions, blended masks and mask outlines.

    ``boxes`` ``[N, (y1, x1, y2, x2)]``, ``masks`` ``[H, W, N]`` (or None),
    ``class_ids`` ``[N]``; ``captions`` overrides the "class score" text.
    """
    image = np.asarray(image)
    boxes = np.asarray(boxes).reshape(-1, 4)
    class_ids = np.asarray(class_ids).reshape(-1)
    n = boxes.shape[0]
    if masks is not None:
        masks = np.asarray(masks)
        if masks.ndim == 2:
            masks = masks[..., None]
    if n and (class_ids.shape[0] != n or
              (masks is not None and masks.shape[-1] != n)):
        raise ValueError(f"{n} boxes, {class_ids.shape[0]} class ids, "
                         f"{None if masks is None else masks.shape[-1]} masks")
    own = ax is None
    if own:
        fig, ax = _new_axes(figsize)
    else:
        fig = ax.figure
    colors = random_colors(n) if colors is None else list(colors)
    height, width = image.shape[:2]
    _setup_image_axes(ax, height, width, title)
    masked = image.astype(np.float64)
    if masked.ndim == 2:
        masked = np.stack([masked] * 3, axis=-1)
    if masked.max(initial=0) <= 1.0 and not np.issubdtype(image.dtype,
                                                          np.integer):
        masked = masked * 255.0
    for i in range(n):
        color = colors[i]
        if not np.any(boxes[i]):
            continue  # padding / instance lost in cropping
        y1, x1, y2, x2 = boxes[i]
        if show_bbox:
            ax.add_patch(patches.Rectangle(
                (x1, y1), x2 - x1, y2 - y1, linewidth=2, alpha=0.7,
                linestyle="dashed", edgecolor=color, facecolor="none"))
        if captions is not None:
            caption = captions[i]
        else:
            cid = int(class_ids[i])
            label = class_names[cid] if 0 <= cid < len(class_names) \
                else str(cid)
            caption = f"{label} {scores[i]:.3f}" if scores is not None \
                else label
        ax.text(x1, y1 + 8, caption, color="w", size=11,
                backgroundcolor="none")
        if masks is not None:
            mask = masks[:, :, i] > 0.5
            if show_mask:
                masked = apply_mask(masked, mask, color)
            for verts in _contours(mask):
                ax.add_patch(patches.Polygon(verts, facecolor="none",
                                             edgecolor=color))
    ax.imshow(np.clip(masked, 0, 255).astype(np.uint8))
    return _finish(fig, save_path, own)


def display_images(images, titles=None, cols=4, cmap=None, norm=None,
                   interpolation=None, save_path=None):
    """Grid of images with optional titles (no ``ax``: it makes a grid)."""
    images = list(images)
    titles = list(titles) if titles is not None else [""] * len(images)
    cols = max(1, min(cols, len(images) or 1))
    rows = max(1, int(np.ceil(len(images) / cols)))
    fig = plt.figure(figsize=(14, max(14 * rows / cols, 2.5)))
    for i, (image, title) in enumerate(zip(images, titles), start=1):
        ax = fig.add_subplot(rows, cols, i)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
        ax.imshow(np.asarray(image).astype(np.uint8), cmap=cmap, norm=norm,
                  interpolation=interpolation)
    return _finish(fig, save_path, True)


def display_top_masks(image, mask, class_ids, class_names, limit=4,
                      save_path=None):
    """The image plus, per most-covering class, the union of its masks."""
    image = np.asarray(image)
    mask = np.asarray(mask)
    class_ids = np.asarray(class_ids).reshape(-1)
    to_display = [image]
    titles = ["H x W={}x{}".format(*image.shape[:2])]
    unique_ids = np.unique(class_ids)
    areas = [mask[:, :, np.where(class_ids == c)[0]].sum() for c in unique_ids]
    top = [c for a, c in sorted(zip(areas, unique_ids), key=lambda t: -t[0])
           if a > 0]
    for i in range(limit):
        cid = top[i] if i < len(top) else -1
        m = mask[:, :, np.where(class_ids == cid)[0]]
        m = np.sum(m * np.arange(1, m.shape[-1] + 1), axis=-1) \
            if m.shape[-1] else np.zeros(mask.shape[:2])
        to_display.append(m)
        titles.append(class_names[cid] if cid != -1 else "-")
    return display_images(to_display, titles=titles, cols=limit + 1,
                          cmap="Blues_r", save_path=save_path)


def _unmold_mask(mask, bbox, image_shape):
    """Paste a small float mask into a full-size bool mask at ``bbox``
    (full-size masks are passed through)."""
    from kseg.data.molding import unmold_mask

    mask = np.asarray(mask, dtype=np.float32)
    if mask.shape == tuple(image_shape[:2]):
        return mask > 0.5
    return unmold_mask(mask, bbox, image_shape)


def draw_rois(image, rois, refined_rois, mask, class_ids, class_names,
              limit=10, ax=None, save_path=None, seed=None):
    """Anchors/proposals (dashed) with their refined boxes (solid) and
    masks. ``mask`` is ``[N, mh, mw]`` per-ROI masks (pasted into the ROI)
    or ``[N, H, W]`` full-size masks."""
    image = np.asarray(image)
    rois = np.asarray(rois).reshape(-1, 4)
    refined_rois = np.asarray(refined_rois).reshape(-1, 4)
    class_ids = np.asarray(class_ids).reshape(-1)
    rng = np.random.default_rng(seed)
    ids = np.arange(rois.shape[0], dtype=np.int32)
    if ids.shape[0] > limit:
        ids = np.sort(rng.choice(ids, limit, replace=False))
    own = ax is None
    if own:
        fig, ax = _new_axes((12, 12))
    else:
        fig = ax.figure
    title = (f"Showing {len(ids)} random ROIs out of {rois.shape[0]}"
             if rois.shape[0] > limit else f"{len(ids)} ROIs")
    _setup_image_axes(ax, image.shape[0], image.shape[1], title, margin=20)
    masked = image.astype(np.float64)
    colors = random_colors(len(ids), seed=seed)
    for color, i in zip(colors, ids):
        cid = int(class_ids[i])
        y1, x1, y2, x2 = rois[i]
        ax.add_patch(patches.Rectangle(
            (x1, y1), x2 - x1, y2 - y1, linewidth=2,
            edgecolor=color if cid else "gray", facecolor="none",
            linestyle="dashed"))
        if cid:
            ry1, rx1, ry2, rx2 = refined_rois[i]
            ax.add_patch(patches.Rectangle(
                (rx1, ry1), rx2 - rx1, ry2 - ry1, linewidth=2,
                edgecolor=color, facecolor="none"))
            ax.plot([x1, rx1], [y1, ry1], color=color)
            ax.text(rx1, ry1 + 8, class_names[cid], color="w", size=11,
                    backgroundcolor="none")
            if mask is not None:
                m = _unmold_mask(mask[i], rois[i], image.shape)
                masked = apply_mask(masked, m, color)
    ax.imshow(np.clip(masked, 0, 255).astype(np.uint8))
    return _finish(fig, save_path, own)


def draw_boxes(image, boxes=None, refined_boxes=None, masks=None,
               captions=None, visibilities=None, title="", ax=None,
               save_path=None):
    """Boxes (dotted/solid by ``visibilities`` 0/1/2), refined boxes joined
    to their originals, captions and ``[H, W, N]`` masks."""
    image = np.asarray(image)
    if boxes is None and refined_boxes is None:
        raise ValueError("need boxes or refined_boxes")
    boxes = None if boxes is None else np.asarray(boxes).reshape(-1, 4)
    refined_boxes = None if refined_boxes is None else \
        np.asarray(refined_boxes).reshape(-1, 4)
    n = boxes.shape[0] if boxes is not None else refined_boxes.shape[0]
    own = ax is None
    if own:
        fig, ax = _new_axes((12, 12))
    else:
        fig = ax.figure
    colors = random_colors(n)
    _setup_image_axes(ax, image.shape[0], image.shape[1], title)
    masked = image.astype(np.float64)
    for i in range(n):
        visibility = visibilities[i] if visibilities is not None else 1
        if visibility == 0:
            color, style, alpha = "gray", "dotted", 0.5
        elif visibility == 1:
            color, style, alpha = colors[i], "dotted", 1.0
        else:
            color, style, alpha = colors[i], "solid", 1.0
        if boxes is not None:
            if not np.any(boxes[i]):
                continue
            y1, x1, y2, x2 = boxes[i]
            ax.add_patch(patches.Rectangle(
                (x1, y1), x2 - x1, y2 - y1, linewidth=2, alpha=alpha,
                linestyle=style, edgecolor=color, facecolor="none"))
        if refined_boxes is not None and visibility > 0:
            ry1, rx1, ry2, rx2 = refined_boxes[i].astype(np.int32)
            ax.add_patch(patches.Rectangle(
                (rx1, ry1), rx2 - rx1, ry2 - ry1, linewidth=2,
                edgecolor=color, facecolor="none"))
            if boxes is not None:
                ax.plot([x1, rx1], [y1, ry1], color=color)
        if captions is not None:
            if refined_boxes is not None:
                y1, x1, y2, x2 = ry1, rx1, ry2, rx2
            ax.text(x1, y1, captions[i], size=11, verticalalignment="top",
                    color="w", backgroundcolor="none",
                    bbox={"facecolor": color, "alpha": 0.5, "pad": 2,
                          "edgecolor": "none"})
        if masks is not None:
            m = np.asarray(masks)[:, :, i] > 0.5
            masked = apply_mask(masked, m, color if visibility else (.5,) * 3)
            for verts in _contours(m):
                ax.add_patch(patches.Polygon(verts, facecolor="none",
                                             edgecolor=color))
    ax.imshow(np.clip(masked, 0, 255).astype(np.uint8))
    return _finish(fig, save_path, own)


def plot_precision_recall(AP, precisions, recalls, ax=None, save_path=None):
    """Precision-recall curve (as returned by ``compute_ap``)."""
    own = ax is None
    if own:
        fig, ax = _new_axes((6, 6))
    else:
        fig = ax.figure
    ax.set_title(f"Precision-Recall Curve. AP@50 = {AP:.3f}")
    ax.set_ylim(0, 1.1)
    ax.set_xlim(0, 1.1)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.plot(recalls, precisions)
    return _finish(fig, save_path, own)


def plot_overlaps(gt_class_ids, pred_class_ids, pred_scores, overlaps,
                  class_names, threshold=0.5, ax=None, save_path=None):
    """IoU grid between predictions (rows) and gt (columns)."""
    gt_class_ids = np.asarray(gt_class_ids).reshape(-1)
    pred_class_ids = np.asarray(pred_class_ids).reshape(-1)
    pred_scores = np.asarray(pred_scores).reshape(-1)
    overlaps = np.asarray(overlaps).reshape(len(pred_class_ids),
                                            len(gt_class_ids))
    own = ax is None
    if own:
        fig, ax = _new_axes((12, 10))
    else:
        fig = ax.figure
    ax.imshow(overlaps, cmap="Blues", vmin=0, vmax=1)
    ax.set_yticks(np.arange(len(pred_class_ids)))
    ax.set_yticklabels([f"{class_names[int(c)]} ({s:.2f})"
                        for c, s in zip(pred_class_ids, pred_scores)])
    ax.set_xticks(np.arange(len(gt_class_ids)))
    ax.set_xticklabels([class_names[int(c)] for c in gt_class_ids],
                       rotation=90)
    for i in range(overlaps.shape[0]):
        for j in range(overlaps.shape[1]):
            v = overlaps[i, j]
            text = ""
            if v > threshold:
                text = "match" if gt_class_ids[j] == pred_class_ids[i] \
                    else "wrong"
            ax.text(j, i, f"{v:.3f}\n{text}", ha="center", va="center",
                    fontsize=9, color="white" if v > 0.5 else "black")
    ax.set_ylabel("Predictions")
    ax.set_xlabel("Ground Truth")
    return _finish(fig, save_path, own)


def display_differences(image, gt_box, gt_class_id, gt_mask,
                        pred_box, pred_class_id, pred_score, pred_mask,
                        class_names, title="", ax=None, show_mask=True,
                        show_box=True, iou_threshold=0.5,
                        score_threshold=0.5, figsize=(16, 16),
                        save_path=None):
    """Gt (green) against predictions (red, captioned "score / IoU").

    Predictions scoring below ``score_threshold`` are not drawn; the rest
    are matched with :func:`kseg.evaluate.compute_matches`.
    """
    from kseg.evaluate.matching import (
        _prepare_gt,
        _prepare_predictions,
        compute_matches,
    )

    gt_box, gt_class_id, gt_mask = _prepare_gt(gt_box, gt_class_id, gt_mask)
    pred_box, pred_class_id, pred_score, pred_mask, _ = _prepare_predictions(
        pred_box, pred_class_id, pred_score, pred_mask, score_threshold)
    gt_match, pred_match, overlaps = compute_matches(
        gt_box, gt_class_id, gt_mask, pred_box, pred_class_id, pred_score,
        pred_mask, iou_threshold=iou_threshold)
    n_gt, n_pred = len(gt_match), len(pred_match)
    colors = [(0, 1, 0, .8)] * n_gt + [(1, 0, 0, 1)] * n_pred
    class_ids = np.concatenate([gt_class_id, pred_class_id]).astype(np.int64)
    scores = np.concatenate([np.zeros(n_gt), pred_score])
    boxes = np.concatenate([gt_box.reshape(-1, 4), pred_box.reshape(-1, 4)])
    h, w = np.asarray(image).shape[:2]
    gm = gt_mask if gt_mask is not None else np.zeros((h, w, 0), bool)
    pm = pred_mask if pred_mask is not None else np.zeros((h, w, 0), bool)
    masks = np.concatenate([gm.reshape(h, w, -1), pm.reshape(h, w, -1)],
                           axis=-1)
    captions = [""] * n_gt
    for i in range(n_pred):
        iou = overlaps[i, int(pred_match[i])] if pred_match[i] > -1 else \
            (overlaps[i].max() if overlaps.shape[1] else 0.0)
        captions.append(f"{pred_score[i]:.2f} / {iou:.2f}")
    title = title or ("Ground Truth and Detections\n"
                      " GT=green, pred=red, captions: score/IoU")
    return display_instances(image, boxes, masks, class_ids, class_names,
                             scores, title=title, figsize=figsize, ax=ax,
                             show_mask=show_mask, show_bbox=show_box,
                             colors=colors, captions=captions,
                             save_path=save_path)


def save_instances_png(path, image, det, class_names, figsize=None,
                       **kwargs):
    """``display_instances`` of a Matterport detect dict, written to
    ``path`` (PNG). ``figsize`` defaults to the image size at 100 dpi,
    clipped to 4-16 inches on the long side. Returns ``path``."""
    image = np.asarray(image)
    if figsize is None:
        h, w = image.shape[:2]
        scale = float(np.clip(max(h, w) / 100.0, 4.0, 16.0)) / max(h, w)
        figsize = (max(w * scale, 1.0), max(h * scale, 1.0))
    return display_instances(image, det["rois"], det.get("masks"),
                             det["class_ids"], class_names,
                             det.get("scores"), figsize=figsize,
                             save_path=path, **kwargs)


def save_comparison_png(path, rows, class_names, titles=("ground truth", "detections"),
                        panel_inches=4.0):
    """One PNG with a row per image: ground truth beside detections.

    Args:
        path: the PNG to write (atomically).
        rows: list of (image [H, W, 3], gt, det); gt / det are Matterport detect dicts
            (`rois`, `class_ids`, `masks` [H, W, N], `scores` or None for ground truth).
        class_names: names by class id.
        titles: the two column titles.
        panel_inches: width of one panel.
    Returns:
        `path`.
    """
    rows = list(rows)
    if not rows:
        raise ValueError("save_comparison_png needs at least one (image, gt, det) row")
    aspect = max(np.asarray(image).shape[0] / np.asarray(image).shape[1]
                 for image, _, _ in rows)
    fig = Figure(figsize=(2 * panel_inches, len(rows) * panel_inches * aspect))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(rows), 2, squeeze=False)
    for (image, gt, det), (left, right) in zip(rows, axes):
        for ax, result, title in ((left, gt, titles[0]), (right, det, titles[1])):
            display_instances(image, result["rois"], result.get("masks"),
                              result["class_ids"], class_names, result.get("scores"),
                              title=title, ax=ax, colors=_class_colors(result["class_ids"]))
    fig.tight_layout()
    path = os.fspath(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight", pad_inches=0.05)
    return path


def save_semantic_comparison_png(path, rows, class_names, titles=None, panel_inches=3.5):
    """One PNG with a row per image: the image, its ground truth and the prediction
    (class maps blended over the image, background left as is).

    Args:
        path: the PNG to write (atomically).
        rows: list of (image [H, W, 3], gt [H, W] class ids, prediction [H, W] class ids).
        class_names: names by class id (index 0 = background, not drawn).
        titles: the three column titles (default image / ground truth / prediction).
    Returns:
        `path`.
    """
    rows = list(rows)
    if not rows:
        raise ValueError("save_semantic_comparison_png needs at least one row")
    titles = titles or ("image", "ground truth", "prediction")
    aspect = max(np.asarray(image).shape[0] / np.asarray(image).shape[1]
                 for image, _, _ in rows)
    fig = Figure(figsize=(3 * panel_inches, len(rows) * panel_inches * aspect))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(rows), 3, squeeze=False)
    for (image, gt, pred), row_axes in zip(rows, axes):
        panels = (_to_rgb_uint8(image),
                  overlay_semantic(image, gt, class_names, legend=None),
                  overlay_semantic(image, pred, class_names, legend=None))
        for ax, panel, title in zip(row_axes, panels, titles):
            ax.imshow(panel)
            ax.set_title(title, fontsize=10)
            ax.axis("off")
    pal = _palette(None, len(class_names))
    handles = [patches.Patch(color=pal[i] / 255.0, label=name)
               for i, name in enumerate(class_names) if i > 0]
    fig.legend(handles=handles, loc="lower center", ncol=max(1, len(handles)),
               frameon=False)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    path = os.fspath(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight", pad_inches=0.05)
    return path


def _class_colors(class_ids):
    """One fixed color per class id, so a class looks the same in every panel."""
    palette = random_colors(16, seed=0)
    return [palette[int(c) % len(palette)] for c in np.asarray(class_ids).reshape(-1)]


def splash(image, masks):
    """Matterport "color splash": grayscale image, original colours kept
    inside the union of ``masks`` (``[H, W, N]`` or ``[H, W]``). uint8."""
    image = np.asarray(image)
    rgb = image.astype(np.float64)
    if rgb.ndim == 2:
        rgb = np.stack([rgb] * 3, axis=-1)
    rgb = rgb[..., :3]
    gray = rgb @ np.array([0.2125, 0.7154, 0.0721])
    out = np.repeat(gray[..., None], 3, axis=-1)
    masks = np.asarray(masks) if masks is not None else None
    if masks is not None and masks.size:
        if masks.ndim == 3:
            union = np.any(masks > 0.5, axis=-1)
        else:
            union = masks > 0.5
        out = np.where(union[..., None], rgb, out)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------
# Semantic segmentation
# ---------------------------------------------------------------------------

def _default_palette(n):
    """Pascal VOC palette: class 0 black, then well-separated colours."""
    palette = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette[i] = (r, g, b)
    return palette


def _palette(colors, n):
    if colors is None:
        return _default_palette(max(n, 1))
    pal = np.asarray(colors, dtype=np.float64).reshape(-1, 3)
    if pal.max(initial=0) <= 1.0:
        pal = pal * 255.0
    return np.clip(np.round(pal), 0, 255).astype(np.uint8)


def colorize_class_map(class_map, colors=None):
    """``[H, W]`` class ids -> ``[H, W, 3]`` uint8 RGB.

    ``colors``: ``[K, 3]`` RGB (floats in [0, 1] or 0-255); ids outside
    ``[0, K)`` are black. Default: the Pascal VOC palette, sized to cover
    every id present (so an ignore label 255 gets VOC's void colour
    (224, 224, 192)); negative ids are black.
    """
    class_map = np.asarray(class_map).astype(np.int64)
    n = int(class_map.max(initial=0)) + 1
    pal = _palette(colors, n)
    valid = (class_map >= 0) & (class_map < len(pal))
    out = pal[np.where(valid, class_map, 0)]
    out[~valid] = 0
    return out


def _to_rgb_uint8(image):
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    image = image[..., :3]
    if not np.issubdtype(image.dtype, np.integer) and \
            image.max(initial=0) <= 1.0:
        image = image * 255.0
    return np.clip(np.round(image.astype(np.float64)), 0, 255).astype(
        np.uint8)


def _legend_panel(names, colors, min_height, dpi=100):
    """Render a legend (colour swatch + name per row) to a uint8 array."""
    row = 18
    height = max(int(min_height), row * len(names) + 12)
    width = 40 + 7 * max((len(n) for n in names), default=4)
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    for k, (name, color) in enumerate(zip(names, colors)):
        y = 6 + k * row
        ax.add_patch(patches.Rectangle((8, y), 12, 12,
                                       facecolor=np.asarray(color) / 255.0,
                                       edgecolor="black", linewidth=0.5))
        ax.text(26, y + 6, name, va="center", ha="left", fontsize=9)
    arr = figure_to_array(fig)
    out = np.full((height, width, 3), 255, dtype=np.uint8)
    h, w = min(height, arr.shape[0]), min(width, arr.shape[1])
    out[:h, :w] = arr[:h, :w]
    return out


def overlay_semantic(image, class_map, class_names, colors=None, alpha=0.5,
                     background_index=0, legend="present"):
    """Blend a class map over ``image`` and append a legend on the right.

    Pixels of ``background_index`` (None: none) and ids outside
    ``class_names`` stay as in the image. ``legend``: ``"present"`` (classes
    found in ``class_map``), ``"all"`` or None (no legend; output then has
    the image's size). Returns uint8 RGB ``[max(H, legend_h), W + legend_w,
    3]``; the overlay sits at the top-left, padding is white.
    """
    rgb = _to_rgb_uint8(image)
    class_map = np.asarray(class_map).astype(np.int64)
    if class_map.shape != rgb.shape[:2]:
        raise ValueError(f"class_map {class_map.shape} vs image "
                         f"{rgb.shape[:2]}")
    n = len(class_names)
    pal = _palette(colors, n)
    if len(pal) < n:
        pal = np.concatenate([pal, _default_palette(n)[len(pal):]])
    sel = (class_map >= 0) & (class_map < n)
    if background_index is not None:
        sel &= class_map != background_index
    blended = rgb.astype(np.float64)
    color_img = colorize_class_map(class_map, pal).astype(np.float64)
    blended[sel] = (1 - alpha) * blended[sel] + alpha * color_img[sel]
    blended = np.clip(np.round(blended), 0, 255).astype(np.uint8)
    if not legend:
        return blended
    if legend == "all":
        ids = list(range(n))
    else:
        ids = [int(c) for c in np.unique(class_map) if 0 <= c < n]
    if not ids:
        return blended
    panel = _legend_panel([str(class_names[i]) for i in ids],
                          [pal[i] for i in ids], rgb.shape[0])
    h = max(rgb.shape[0], panel.shape[0])
    out = np.full((h, rgb.shape[1] + panel.shape[1], 3), 255, dtype=np.uint8)
    out[:rgb.shape[0], :rgb.shape[1]] = blended
    out[:panel.shape[0], rgb.shape[1]:] = panel
    return out


def save_overlay_png(path, image, class_map, class_names, colors=None,
                     alpha=0.5, **kwargs):
    """Write :func:`overlay_semantic` as a PNG; returns ``path``."""
    from matplotlib.image import imsave

    path = os.fspath(path)
    arr = overlay_semantic(image, class_map, class_names, colors=colors,
                           alpha=alpha, **kwargs)
    with atomic_path(path) as tmp:
        imsave(tmp, arr, format="png")
    return path
