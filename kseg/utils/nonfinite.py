"""Stop (or skip the step) when a training loss turns NaN or Inf, saying where and why.

    guard = NonFiniteGuard(mode="stop", data=train_sequence, config=config,
                           checkpoint=writer)        # one of `fit`'s callbacks

"stop" raises `NonFiniteLossError` at the first step whose loss is NaN / Inf, naming the
losses, the epoch and step, the image ids (and files) of the batch, and the usual
causes; no checkpoint is written for that epoch, so the last good one is kept.
"skip" undoes the step instead (weights and optimizer state are copied before every
step, which costs memory and time), counts it and warns at the epoch end; more than
`max_skips` skipped steps in a run stop it. Config.NONFINITE_LOSS chooses the mode.
"""

import math
import warnings

import keras
import numpy as np

__all__ = ["NonFiniteGuard", "NonFiniteLossError", "batch_image_ids"]

CAUSES = ("the learning rate is too high (LEARNING_RATE={lr})",
          "no gradient clipping (GRADIENT_CLIP_NORM={clip})",
          "empty masks, zero-size boxes or NaN coordinates in the annotations of these images")


class NonFiniteLossError(FloatingPointError):
    """A training loss became NaN or Inf."""


def batch_image_ids(data, index):
    """The dataset image ids of batch `index` of a kseg training sequence ([] if unknown)."""
    sequence = getattr(data, "sequence", data)  # RepeatedSequence wraps one
    if hasattr(data, "sequence") and hasattr(sequence, "__len__") and len(sequence):
        index = index % len(sequence)
    if hasattr(sequence, "batch_image_ids"):
        return [int(i) for i in sequence.batch_image_ids(index)]
    return []


def _bad_values(logs):
    bad = {}
    for key, value in (logs or {}).items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if not math.isfinite(number):
            bad[key] = number
    return bad


class NonFiniteGuard(keras.callbacks.Callback):
    """Watch every training step's logged losses for NaN / Inf (see the module docstring).

    Args:
        mode: "stop" or "skip".
        data: the training sequence (for the image ids of a batch), or None.
        config: the run's Config (its LEARNING_RATE and GRADIENT_CLIP_NORM are quoted).
        checkpoint: the run's `CheckpointWriter` (its last path is quoted), or None.
        max_skips: "skip" mode stops after this many skipped steps.
    """

    def __init__(self, mode="stop", data=None, config=None, checkpoint=None, max_skips=100):
        super().__init__()
        if mode not in ("stop", "skip"):
            raise ValueError(f"NONFINITE_LOSS / mode = {mode!r}: expected 'stop' or 'skip'.")
        self.mode, self.data, self.config = mode, data, config
        self.checkpoint, self.max_skips = checkpoint, max_skips
        self.epoch, self.skipped, self.skipped_steps = 0, 0, []
        self._saved = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def _state(self):
        variables = list(self.model.weights)
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None:
            variables += list(optimizer.variables)
        return variables

    def on_train_batch_begin(self, batch, logs=None):
        if self.mode == "skip":
            self._saved = [(v, keras.ops.convert_to_numpy(v)) for v in self._state()]

    def on_train_batch_end(self, batch, logs=None):
        bad = _bad_values(logs)
        if not bad:
            return
        ids = batch_image_ids(self.data, batch)
        if self.mode == "skip" and self._saved is not None and self.skipped < self.max_skips:
            for variable, value in self._saved:
                variable.assign(np.asarray(value))
            self.model.reset_metrics()  # the epoch means restart without the NaN
            self.skipped += 1
            self.skipped_steps.append((self.epoch + 1, batch + 1, ids))
            return
        raise NonFiniteLossError(self.message(bad, batch, ids))

    def on_epoch_end(self, epoch, logs=None):
        steps = [s for s in self.skipped_steps if s[0] == epoch + 1]
        if steps:
            shown = ", ".join(f"step {s} (images {ids})" for _, s, ids in steps[:5])
            warnings.warn(f"epoch {epoch + 1}: skipped {len(steps)} step(s) whose loss was NaN "
                          f"/ Inf ({self.skipped} in this run): {shown}.", stacklevel=2)

    def message(self, bad, batch, ids):
        """The error text: which losses, where, which images, why, what was kept."""
        losses = ", ".join(f"{k}={v}" for k, v in sorted(bad.items()))
        text = f"non-finite loss at epoch {self.epoch + 1}, step {batch + 1}: {losses}"
        if ids:
            text += f"; images of this batch: ids {ids}{self._references(ids)}"
        lr = getattr(self.config, "LEARNING_RATE", "?")
        clip = getattr(self.config, "GRADIENT_CLIP_NORM", "?")
        causes = "; ".join(c.format(lr=lr, clip=clip) for c in CAUSES)
        last = getattr(self.checkpoint, "last_path", None)
        kept = f"the last good checkpoint {last} is kept" if last else \
            "no checkpoint of this run was written yet"
        if self.skipped:
            text += f" (after {self.skipped} skipped steps)"
        return (f"{text}. Usual causes: {causes}. Training stopped; {kept}. Lower the learning "
                f"rate, set GRADIENT_CLIP_NORM, check those images, or set NONFINITE_LOSS="
                f"'skip' to skip such steps.")

    def _references(self, ids):
        dataset = getattr(getattr(self.data, "sequence", self.data), "dataset", None)
        if dataset is None:
            return ""
        try:
            return " (" + ", ".join(str(dataset.image_reference(i)) for i in ids[:4]) + ")"
        except (IndexError, KeyError, AttributeError):
            return ""
