"""Issue 10: the mask loss picks each ROI's true-class channel; three ways, timed.

    nice -n 19 python bench/mask_loss_pick.py [--rois 128] [--classes 81] [--repeats 7]

Times loss + gradient (the train step's share) on [batch, M, 28, 28, C] logits, TF
backend, in a tf.function: `take_along_axis` on the class axis, a one-hot multiply-sum,
and a gather on the flattened row-major layout (kseg's `losses.true_class_channel`, what
the training model runs). Prints each median and its ratio to take_along_axis, and checks
that the three give the same loss and gradient.
"""

import argparse
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402

from kseg.models.mask_rcnn.losses import true_class_channel  # noqa: E402


def pick_take_along_axis(pred, class_ids):
    return ops.take_along_axis(pred, class_ids[:, :, None, None, None], axis=4)[..., 0]


def pick_one_hot(pred, class_ids):
    one_hot = ops.one_hot(class_ids, pred.shape[-1], dtype=pred.dtype)
    return ops.sum(pred * one_hot[:, :, None, None, :], axis=-1)


PICKS = {"take_along_axis": pick_take_along_axis, "one_hot_sum": pick_one_hot,
         "flat_gather": true_class_channel}


def step_fn(pick):
    @tf.function
    def step(logits, target, class_ids):
        with tf.GradientTape() as tape:
            tape.watch(logits)
            chosen = pick(logits, class_ids)
            bce = ops.binary_crossentropy(target, chosen, from_logits=True)
            loss = ops.mean(bce)
        return loss, tape.gradient(loss, logits)
    return step


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rois", type=int, default=128)
    parser.add_argument("--classes", type=int, default=81)
    parser.add_argument("--side", type=int, default=28)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    shape = (args.batch, args.rois, args.side, args.side, args.classes)
    logits = tf.constant(rng.normal(0, 3, shape).astype(np.float32))
    target = tf.constant((rng.random(shape[:4]) > 0.5).astype(np.float32))
    class_ids = tf.constant(rng.integers(1, args.classes, shape[:2]).astype(np.int32))
    steps = {name: step_fn(pick) for name, pick in PICKS.items()}
    results = {name: [[], *step(logits, target, class_ids)]  # trace + warm-up
               for name, step in steps.items()}
    for _ in range(args.repeats):  # interleaved: a busy machine slows every variant alike
        for name, step in steps.items():
            start = time.perf_counter()
            loss, grad = step(logits, target, class_ids)
            grad.numpy()
            results[name][0].append(time.perf_counter() - start)
    results = {name: (float(np.median(times)), float(loss), grad.numpy())
               for name, (times, loss, grad) in results.items()}
    base_time, base_loss, base_grad = results["take_along_axis"]
    print(f"logits {list(shape)}, loss + gradient, median of {args.repeats} "
          "(interleaved)")
    for name, (t, loss, grad) in results.items():
        same = loss == base_loss and np.array_equal(grad, base_grad)
        print(f"{name:16s} {t * 1e3:8.2f} ms  ratio {t / base_time:5.2f}  same numbers: {same}")


if __name__ == "__main__":
    main()
