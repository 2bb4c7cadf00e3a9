"""The one checkpoint writer of every kseg model, and the CSV log: never half-written.

    writer = CheckpointWriter("logs/run/kseg_unet_{epoch:04d}.weights.h5")     # FCN / U-Net
    writer = CheckpointWriter(template, save_fn=save_weights_by_name, target=keras_model)
    log = AtomicCSVLogger("logs/run/history.csv")

Each checkpoint goes to a temporary file in the same folder, then `os.replace` moves it
into place, so a crash or SIGKILL leaves either the previous file or the new one, never a
partial one; temporary files a killed run left behind are removed when training starts.
A failed write (disk full) raises `CheckpointError` naming the file and the previous
checkpoint, which is intact. Weights holding NaN / Inf are not written.
"""

import csv
import io
import math
import os
import warnings
from pathlib import Path

import keras
import numpy as np

from kseg.utils.io import atomic_path, atomic_write_text

__all__ = ["AtomicCSVLogger", "CheckpointError", "CheckpointWriter", "check_writable",
           "remove_stale_temporaries"]


class CheckpointError(OSError):
    """A run folder or checkpoint cannot be written."""


def check_writable(folder):
    """Create `folder` if needed and prove a file can be written in it (then removed).

    Raises CheckpointError naming the folder before any training starts.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / ".kseg-write-test") as tmp:
            Path(tmp).write_bytes(b"ok")
        os.remove(folder / ".kseg-write-test")
    except OSError as e:
        raise CheckpointError(
            f"{folder}: cannot write checkpoints there ({e.strerror or e}); choose a "
            f"writable model_dir / --logs folder, or free disk space.") from e
    return folder


def remove_stale_temporaries(folder):
    """Delete `.tmp-*` files a killed run left in `folder`; returns their names."""
    folder = Path(folder)
    stale = sorted(folder.glob(".tmp-*")) if folder.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return [p.name for p in stale]


def _finite_logs(logs):
    """False when any logged value is NaN or Inf."""
    for value in (logs or {}).values():
        try:
            if not math.isfinite(float(value)):
                return False
        except (TypeError, ValueError):
            continue
    return True


class CheckpointWriter(keras.callbacks.Callback):
    """Save weights after every epoch to `path_for(epoch)` (epoch counted from 1), atomically.

    Args:
        path_for: a template with `{epoch}` (e.g. "run/mask_rcnn_x_{epoch:04d}.h5") or a
            callable epoch -> path.
        save_fn: `save_fn(model, path)`; default `model.save_weights(path)`.
        target: the model to save (default: the model being fitted).
    """

    def __init__(self, path_for, save_fn=None, target=None):
        super().__init__()
        template = None if callable(path_for) else os.fspath(path_for)
        self.path_for = path_for if template is None else (
            lambda epoch: template.format(epoch=epoch))
        self.save_fn, self.target = save_fn, target
        self.last_path = None

    def on_train_begin(self, logs=None):
        first = Path(self.path_for(1))
        check_writable(first.parent)
        self.last_path = self.last_path or _newest(first)
        stale = remove_stale_temporaries(first.parent)
        if stale:
            warnings.warn(f"{first.parent}: removed {len(stale)} temporary file(s) left by an "
                          f"interrupted run: {', '.join(stale[:3])}.", stacklevel=2)

    def on_epoch_end(self, epoch, logs=None):
        path = Path(self.path_for(epoch + 1))
        if not _finite_logs(logs):
            warnings.warn(f"epoch {epoch + 1}: the loss is NaN / Inf, so {path.name} was not "
                          f"written; the last good checkpoint is {self.last_path}.",
                          stacklevel=2)
            return
        model = self.target if self.target is not None else self.model
        try:
            with atomic_path(path) as tmp:
                if self.save_fn is None:
                    model.save_weights(tmp)
                else:
                    self.save_fn(model, tmp)
        except OSError as e:
            previous = self.last_path or _previous(path)
            raise CheckpointError(
                f"could not write checkpoint {path} ({e.strerror or e}); nothing was "
                         f"left half-written and the previous checkpoint "
                         f"{previous or '(none)'} is intact. Free disk space or choose "
                         f"another model_dir, then resume from it.") from e
        self.last_path = path


def _siblings(path):
    """Checkpoint files beside `path` with its suffix, oldest first."""
    path = Path(path)
    suffix = ".weights.h5" if path.name.endswith(".weights.h5") else path.suffix
    return sorted(p for p in path.parent.glob(f"*{suffix}") if not p.name.startswith("."))


def _newest(path):
    found = _siblings(path)
    return found[-1] if found else None


def _previous(path):
    """The newest other checkpoint file beside `path`, or None."""
    others = [p for p in _siblings(path) if p != Path(path)]
    return others[-1] if others else None


class AtomicCSVLogger(keras.callbacks.Callback):
    """Keras' CSVLogger, but every epoch rewrites the whole file atomically.

    Rows of epochs at or after the current one (left by a run that was killed after
    its CSV write but before finishing) are replaced, so a resumed run's log has one
    row per epoch. The optimizer's learning rate is logged as `learning_rate`.
    """

    def __init__(self, filename, append=True):
        super().__init__()
        self.filename, self.append = Path(filename), append
        self._fresh = not append

    def _rows(self):
        if self._fresh or not self.filename.exists():
            return None, []
        with open(self.filename, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            return reader.fieldnames, list(reader)

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        optimizer = getattr(self.model, "optimizer", None)
        if "learning_rate" not in logs and optimizer is not None:
            logs["learning_rate"] = float(np.asarray(optimizer.learning_rate))
        header, rows = self._rows()
        self._fresh = False
        header = header or ["epoch"] + sorted(logs)
        rows = [r for r in rows if _int(r.get("epoch")) < epoch]
        rows.append({"epoch": epoch, **{k: _plain(v) for k, v in logs.items()}})
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=header, extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.filename, out.getvalue())


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _plain(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return value
