"""The figure machinery every drawing shares: a headless-safe matplotlib backend, where a
figure goes (`_finish`: save_path, the caller's axes, a temp PNG or `plt.show()`), colors,
and the NumPy drawing primitives (`apply_mask`, `draw_box`, `random_colors`).
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
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402

from kseg.utils.io import atomic_path  # noqa: E402

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
