"""Drawing instances (Matterport's `display_instances`, `draw_rois`, `draw_boxes`,
`display_differences`), their PNG writers and the color splash.
"""

from __future__ import annotations

import os

import numpy as np
from matplotlib import patches
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from kseg.utils.io import atomic_path
from kseg.visualize.figures import (
    _contours,
    _finish,
    _new_axes,
    _setup_image_axes,
    apply_mask,
    random_colors,
)
from kseg.visualize.plots import display_images


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
    from kseg.data.pipelines.molding import unmold_mask

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
