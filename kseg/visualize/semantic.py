"""Semantic segmentation pictures: colorized class maps, overlays with a legend, and
image / ground truth / prediction comparison sheets.
"""

from __future__ import annotations

import os

import numpy as np
from matplotlib import patches
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from kseg.utils.io import atomic_path
from kseg.visualize.figures import (
    figure_to_array,
)


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
