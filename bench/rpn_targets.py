"""RPN targets: the NumPy per-image reference (what the data pipeline computed before)
beside `RpnTargetLayer` in a tf.function (what the training step computes now), on CPU.

    nice -n 19 python bench/rpn_targets.py

Prints one JSON line: median milliseconds per batch for each (image side, batch, gt count),
with MAX_GT_INSTANCES = 100 padded gt rows (the layer matches only the used columns on TF).
"""

import json
import time

import numpy as np
import tensorflow as tf

from kseg import MaskRCNNConfig
from kseg.models.mask_rcnn.rpn_targets import RpnTargetLayer
from kseg.models.mask_rcnn.rpn_targets_numpy import build_rpn_targets
from kseg.ops.anchors import config_anchors

CASES = ((512, 1, 3), (512, 1, 30), (1024, 2, 3), (1024, 2, 30))  # side, batch, instances


def median_ms(fn, repeats=7):
    fn()
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(1000 * float(np.median(times)), 1)


def case(size, batch, count):
    config = MaskRCNNConfig(NAME="bench", NUM_CLASSES=4, IMAGES_PER_GPU=batch,
                            IMAGE_MIN_DIM=size, IMAGE_MAX_DIM=size)
    anchors = config_anchors(config)
    rng = np.random.default_rng(0)
    corner = rng.uniform(0, size * 0.8, (batch, count, 2))
    boxes = np.round(np.concatenate(
        [corner, corner + rng.uniform(16, size / 5, (batch, count, 2))], -1))
    gt_ids = np.zeros([batch, config.MAX_GT_INSTANCES], np.int32)
    gt_ids[:, :count] = 1
    gt_boxes = np.zeros([batch, config.MAX_GT_INSTANCES, 4], np.float32)
    gt_boxes[:, :count] = boxes
    layer = RpnTargetLayer(config.RPN_TRAIN_ANCHORS_PER_IMAGE, config.RPN_BBOX_STD_DEV, seed=0)
    graph = tf.function(lambda i, b: layer(tf.constant(anchors, tf.float32), i, b))
    numpy_ms = median_ms(lambda: [build_rpn_targets(anchors, gt_ids[k, :count], boxes[k],
                                                    config, rng) for k in range(batch)])
    graph_ms = median_ms(lambda: graph(gt_ids, gt_boxes)[0].numpy())
    return {"numpy_ms": numpy_ms, "graph_ms": graph_ms}


def main():
    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(2)
    print(json.dumps({f"{s}px_batch{b}_gt{n}": case(s, b, n) for s, b, n in CASES}))


if __name__ == "__main__":
    main()
