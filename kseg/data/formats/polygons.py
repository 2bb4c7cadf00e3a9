"""Polygon helpers for annotation loaders: VIA shapes as vertices, clipping to the image.

    xs, ys = shape_to_polygon({"name": "circle", "cx": 10, "cy": 8, "r": 4})
    xs, ys = clip_polygon(xs, ys, width=40, height=30)   # [P'] vertices inside the image
"""

import math

import numpy as np
from skimage.draw import polygon as draw_polygon

SHAPES = ("polygon", "polyline", "rect", "circle", "ellipse")


def _number(shape, key):
    """shape[key] as a finite float; ValueError naming the field otherwise."""
    if key not in shape:
        raise KeyError(key)
    value = shape[key]
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise ValueError(f"field '{key}' = {value!r}; expected a finite number.")
    return number


def _coordinates(shape, key):
    """shape[key] as float64 [P]; ValueError naming the first null / NaN / non-number."""
    values = shape[key]
    if not isinstance(values, (list, tuple)):
        raise ValueError(f"field '{key}' is a {type(values).__name__}; expected a list of "
                         f"numbers.")
    out = np.empty(len(values), np.float64)
    for i, value in enumerate(values):
        try:
            out[i] = float(value)
        except (TypeError, ValueError):
            out[i] = np.nan
        if isinstance(value, bool) or not np.isfinite(out[i]):
            raise ValueError(f"field '{key}'[{i}] = {value!r}; expected a finite number "
                             f"(null / NaN / text would give an empty mask).")
    return out


def shape_to_polygon(shape, points=64):
    """VIA shape_attributes -> (xs [P] float64, ys [P] float64) polygon vertices.

    Raises KeyError (missing field) or ValueError naming the field (null, NaN, text,
    mismatched lengths, unknown shape name).
    """
    name = shape.get("name")
    if name in ("polygon", "polyline"):
        xs, ys = _coordinates(shape, "all_points_x"), _coordinates(shape, "all_points_y")
        if xs.shape != ys.shape or len(xs) < 3:
            raise ValueError(f"all_points_x/all_points_y have {xs.size}/{ys.size} values; "
                             f"expected two lists of the same length >= 3.")
        return xs, ys
    if name == "rect":
        x, y, w, h = (_number(shape, k) for k in ("x", "y", "width", "height"))
        x2, y2 = x + max(w - 1, 0), y + max(h - 1, 0)  # w x h pixels, edges inclusive
        return np.array([x, x2, x2, x]), np.array([y, y, y2, y2])
    if name in ("circle", "ellipse"):
        cx, cy = _number(shape, "cx"), _number(shape, "cy")
        rx = _number(shape, "r" if name == "circle" else "rx")
        ry = _number(shape, "r" if name == "circle" else "ry")
        theta = _number(shape, "theta") if "theta" in shape else 0.0
        t = np.linspace(0, 2 * np.pi, points, endpoint=False)
        dx, dy = rx * np.cos(t), ry * np.sin(t)
        return (cx + dx * np.cos(theta) - dy * np.sin(theta),
                cy + dx * np.sin(theta) + dy * np.cos(theta))
    raise ValueError(f"name {name!r} is not supported; expected one of {', '.join(SHAPES)}.")


def _clip_edge(points, inside, cross):
    """One Sutherland-Hodgman pass: keep `points` [(x, y)] on the inside of one edge."""
    out = []
    for i, current in enumerate(points):
        previous = points[i - 1]
        if inside(current):
            if not inside(previous):
                out.append(cross(previous, current))
            out.append(current)
        elif inside(previous):
            out.append(cross(previous, current))
    return out


def _at_x(x):
    def cross(p, q):
        t = (x - p[0]) / (q[0] - p[0])
        return (x, p[1] + t * (q[1] - p[1]))
    return cross


def _at_y(y):
    def cross(p, q):
        t = (y - p[1]) / (q[1] - p[1])
        return (p[0] + t * (q[0] - p[0]), y)
    return cross


def clip_polygon(xs, ys, width, height):
    """The part of a polygon inside the image, [0, width-1] x [0, height-1].

    Args:
        xs, ys: vertices [P] (pixel coordinates).
    Returns:
        (xs [P'], ys [P']) float64; P' == 0 when the polygon lies wholly outside.
    """
    right, bottom = float(width - 1), float(height - 1)
    points = list(zip(np.asarray(xs, float).tolist(), np.asarray(ys, float).tolist()))
    for inside, cross in ((lambda p: p[0] >= 0, _at_x(0.0)),
                          (lambda p: p[0] <= right, _at_x(right)),
                          (lambda p: p[1] >= 0, _at_y(0.0)),
                          (lambda p: p[1] <= bottom, _at_y(bottom))):
        points = _clip_edge(points, inside, cross) if points else []
    if not points:
        return np.zeros([0]), np.zeros([0])
    clipped = np.asarray(points, np.float64)
    return clipped[:, 0], clipped[:, 1]


def pixel_count(xs, ys, height, width):
    """Number of image pixels a polygon covers (as `load_mask` draws it)."""
    if len(xs) < 3:
        return 0
    rr, _ = draw_polygon(ys, xs, shape=(height, width))
    return int(rr.size)
