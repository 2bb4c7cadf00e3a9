"""Image grids and evaluation plots: `display_images`, precision-recall curves, the
ground-truth / prediction overlap matrix.
"""

from __future__ import annotations

import numpy as np

from kseg.visualize.figures import (
    _finish,
    _new_axes,
    plt,
)


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
