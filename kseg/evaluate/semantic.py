"""Semantic segmentation metrics (NumPy), KITTI road MaxF, table/JSON helpers.

Confusion matrices are ``[num_classes, num_classes]`` with rows = ground
truth and columns = prediction. Per-class scores are NaN for classes that
never occur in gt nor prediction (undefined); the means skip them.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

from kseg.utils.io import atomic_write_text

__all__ = [
    "confusion_matrix",
    "iou_per_class",
    "mean_iou",
    "dice_per_class",
    "mean_dice",
    "pixel_accuracy",
    "kitti_road_maxf",
    "format_table",
    "write_json",
]


def confusion_matrix(y_true, y_pred, num_classes, ignore_index=None):
    """Pixel confusion matrix (int64), rows = gt class, cols = predicted.

    Pixels whose gt equals ``ignore_index`` or lies outside
    ``[0, num_classes)`` are skipped. A predicted label outside that range
    on a counted pixel raises ``ValueError``.
    """
    t = np.asarray(y_true).reshape(-1).astype(np.int64)
    p = np.asarray(y_pred).reshape(-1).astype(np.int64)
    if t.shape != p.shape:
        raise ValueError(f"shape mismatch: {np.shape(y_true)} vs "
                         f"{np.shape(y_pred)}")
    valid = (t >= 0) & (t < num_classes)
    if ignore_index is not None:
        valid &= t != ignore_index
    t, p = t[valid], p[valid]
    if p.size and (p.min() < 0 or p.max() >= num_classes):
        raise ValueError(f"predicted labels outside [0, {num_classes})")
    counts = np.bincount(t * num_classes + p, minlength=num_classes ** 2)
    return counts.reshape(num_classes, num_classes)


def _safe_div(num, den):
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def iou_per_class(cm):
    """``TP / (TP + FP + FN)`` per class; NaN where the class is absent."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    return _safe_div(tp, cm.sum(axis=0) + cm.sum(axis=1) - tp)


def _nanmean(x):
    x = np.asarray(x, dtype=np.float64)
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else 0.0


def mean_iou(cm):
    """Mean of the defined per-class IoUs (0.0 if none is defined)."""
    return _nanmean(iou_per_class(cm))


def dice_per_class(cm):
    """``2 TP / (2 TP + FP + FN)`` per class; NaN where the class is absent."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    return _safe_div(2 * tp, cm.sum(axis=0) + cm.sum(axis=1))


def mean_dice(cm):
    """Mean of the defined per-class Dice scores (0.0 if none)."""
    return _nanmean(dice_per_class(cm))


def pixel_accuracy(cm):
    """Correct pixels / counted pixels (0.0 for an empty matrix)."""
    cm = np.asarray(cm, dtype=np.float64)
    total = cm.sum()
    return float(np.trace(cm) / total) if total > 0 else 0.0


def _as_list(x):
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x]


def kitti_road_maxf(prob_road, gt_road, num_thresholds=256, valid_mask=None):
    """KITTI road benchmark MaxF and AP (devkit ``evalExp`` semantics).

    ``prob_road``: road probability in [0, 1]; ``gt_road``: bool road gt;
    both a single ``[H, W]`` array or lists of them (counts are summed over
    images, like the benchmark). ``valid_mask`` (same structure) excludes
    void pixels. A pixel is predicted road when ``prob >= t`` for
    thresholds ``t = k / (num_thresholds - 1)``. Points with precision =
    recall = 0 are dropped; AP is the 11-point Pascal VOC average of the
    maximum precision at recall >= 0, 0.1, ..., 1.0 (0 where no point
    reaches the level); F is the F1 score.

    Returns a dict with ``MaxF``, ``AP``, ``PRE`` / ``REC`` at MaxF,
    ``threshold`` (best), and the curves ``precision``, ``recall``,
    ``thresholds``. With no road pixels in gt everything is 0.0.
    """
    probs = _as_list(prob_road)
    gts = _as_list(gt_road)
    valids = _as_list(valid_mask) if valid_mask is not None else \
        [None] * len(probs)
    if not (len(probs) == len(gts) == len(valids)):
        raise ValueError("prob_road, gt_road and valid_mask lengths differ")
    thresholds = np.arange(num_thresholds, dtype=np.float64) / \
        max(num_thresholds - 1, 1)
    edges = np.concatenate([[-np.inf], thresholds, [np.inf]])
    fn = np.zeros(num_thresholds, dtype=np.int64)
    fp = np.zeros(num_thresholds, dtype=np.int64)
    pos = neg = 0
    for prob, gt, valid in zip(probs, gts, valids):
        prob = np.asarray(prob, dtype=np.float64)
        gt = np.asarray(gt).astype(bool)
        if prob.shape != gt.shape:
            raise ValueError(f"prob {prob.shape} vs gt {gt.shape}")
        v = np.ones(gt.shape, bool) if valid is None else \
            np.asarray(valid).astype(bool)
        p_pos = prob[gt & v]
        p_neg = prob[~gt & v]
        pos += p_pos.size
        neg += p_neg.size
        # FN(t): positives with prob < t; FP(t): negatives with prob >= t.
        fn += np.cumsum(np.histogram(p_pos, bins=edges)[0])[:num_thresholds]
        fp += np.cumsum(np.histogram(p_neg, bins=edges)[0][::-1])[::-1][
            1:num_thresholds + 1]
    zero = {"MaxF": 0.0, "AP": 0.0, "PRE": 0.0, "REC": 0.0,
            "threshold": 0.0, "precision": np.zeros(0),
            "recall": np.zeros(0), "thresholds": np.zeros(0)}
    if pos == 0:
        return zero
    tp = pos - fn
    recall = tp / float(pos)
    precision = tp / (tp + fp + 1e-10)
    keep = ~((recall == 0) & (precision == 0))
    recall, precision, thr = recall[keep], precision[keep], thresholds[keep]
    if recall.size == 0:
        return zero
    levels = np.arange(11) / 10.0
    ap = float(np.mean([precision[recall >= r].max() if np.any(recall >= r)
                        else 0.0 for r in levels]))
    f = 2 * precision * recall / (precision + recall + 1e-10)
    best = int(np.argmax(f))
    return {"MaxF": float(f[best]), "AP": ap, "PRE": float(precision[best]),
            "REC": float(recall[best]), "threshold": float(thr[best]),
            "precision": precision, "recall": recall, "thresholds": thr}


def _fmt(value, floatfmt):
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "n/a"
        return format(float(value), floatfmt)
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def format_table(rows, headers, floatfmt=".4f"):
    """Plain-text table: header, dashed rule, one line per row.

    Floats use ``floatfmt`` (NaN prints ``n/a``); text columns are left
    aligned, numeric ones right aligned.
    """
    headers = [str(h) for h in headers]
    cells = [[_fmt(v, floatfmt) for v in row] for row in rows]
    ncol = max([len(headers)] + [len(r) for r in cells])
    headers += [""] * (ncol - len(headers))
    cells = [r + [""] * (ncol - len(r)) for r in cells]
    widths = [max([len(headers[c])] + [len(r[c]) for r in cells])
              for c in range(ncol)]
    numeric = [all(isinstance(row[c], (int, float, np.number))
                   for row in rows if c < len(row)) and bool(rows)
               for c in range(ncol)]

    def line(values):
        parts = [v.rjust(w) if num else v.ljust(w)
                 for v, w, num in zip(values, widths, numeric)]
        return "  ".join(parts).rstrip()

    out = [line(headers), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    return "\n".join(out)


def _json_default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, bytes):
        return obj.decode("utf-8")
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _sanitize(obj):
    """Replace non-finite floats by None so the output is strict JSON."""
    if isinstance(obj, dict):
        return {str(k) if not isinstance(k, (str, int, float, bool)) else k:
                _sanitize(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_sanitize(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _sanitize(obj.tolist())
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def write_json(obj, path, indent=2):
    """Write ``obj`` as strict JSON atomically (temp file in the same dir,
    then ``os.replace``). NumPy scalars/arrays are converted, NaN/inf become
    ``null``. Returns ``path``."""
    text = json.dumps(_sanitize(obj), indent=indent, default=_json_default,
                      allow_nan=False)
    atomic_write_text(path, text + "\n")
    return path
