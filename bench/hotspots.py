"""Where the time goes: TensorFlow-profiler hot spots of each model's step; prints tables.

    python bench/hotspots.py                          # every model, top 12 each
    python bench/hotspots.py --models mrcnn_train --top 20

Each model runs the same inputs as `bench/compare.py` (random weights, 2 threads), warms
up, then one step runs under `tf.profiler`. Op time on TensorFlow's executor threads is
summed by layer (the op's name scope, e.g. `mrcnn_mask_conv1`, with `gradient_tape/`
for its backward ops) and by op type. The numbers are CPU time of the ops that TF
launched (ops of the two executor threads overlap, so they add up to more than the
step's wall time); read them as shares.
"""

import argparse
import collections
import glob
import os
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare  # noqa: E402  (the same models and inputs as the side-by-side table)


def _steps():
    """name -> (setup returning a zero-argument step function)."""
    import numpy as np

    def mrcnn_train():
        from kseg import MaskRCNN
        from kseg.data.pipelines.maskrcnn_pipeline import build_batch

        config = compare._train_config(512, defaults=False)
        batch, _ = build_batch(compare._BenchDataset(512), config, [0],
                               rng=np.random.default_rng(0))
        model = MaskRCNN("training", config, model_dir=tempfile.mkdtemp())
        model.compile(config.LEARNING_RATE, config.LEARNING_MOMENTUM)
        return lambda: model.keras_model.train_on_batch(batch)

    def mrcnn_infer():
        from kseg import MaskRCNN

        config = compare._mrcnn_config(512, POST_NMS_ROIS_INFERENCE=1000, PRE_NMS_LIMIT=5000,
                                       DETECTION_MAX_INSTANCES=100,
                                       DETECTION_MIN_CONFIDENCE=0.0,
                                       DETECTION_NMS_THRESHOLD=0.5)
        model = MaskRCNN("inference", config, model_dir=tempfile.mkdtemp())
        image = compare.make_image(512)
        return lambda: model.detect([image])

    def semantic(builder, x, y, loss):
        from kseg.models.optimizers import Adam  # as bench/compare.py

        model = builder()
        model.compile(Adam(1e-3), loss)
        return lambda: model.train_on_batch(x, y)

    def unet_train():
        import keras

        from kseg.models.unet import UNet

        rng = np.random.default_rng(0)
        return semantic(lambda: UNet(2, backbone="resnet34", output_activation="sigmoid",
                                     input_shape=(256, 256, 3)),
                        rng.random((4, 256, 256, 3), dtype=np.float32),
                        (rng.random((4, 256, 256, 1)) > 0.9).astype("float32"),
                        keras.losses.BinaryCrossentropy())

    def fcn_train():
        import keras

        from kseg.models.fcn import FCN

        rng = np.random.default_rng(0)
        return semantic(lambda: FCN("fcn8s", backbone="resnet50", num_classes=21,
                                    input_shape=(512, 512, 3), output_activation="logits"),
                        rng.random((1, 512, 512, 3), dtype=np.float32),
                        rng.integers(0, 21, (1, 512, 512, 1)),
                        keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    return {"mrcnn_train": mrcnn_train, "mrcnn_infer": mrcnn_infer,
            "unet_train": unet_train, "fcn_train": fcn_train}


def _layer_of(op_name):
    """`model/mrcnn_mask_conv1/...` -> `mrcnn_mask_conv1`; backward ops get a prefix."""
    parts = op_name.split(":")[0].split("/")
    backward = parts[0] == "gradient_tape"
    parts = parts[1:] if backward else parts
    layer = parts[1] if len(parts) > 2 else parts[0]
    layer = re.sub(r"(_\d+)+$", "", layer)  # Keras' call suffixes: rpn_model_3 -> rpn_model
    return ("backward " if backward else "") + layer


def profile(step, logdir):
    """{(layer, op type): milliseconds} of one profiled `step()`."""
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    tf.profiler.experimental.start(logdir)
    step()
    tf.profiler.experimental.stop()
    path = sorted(glob.glob(os.path.join(logdir, "plugins/profile/*/*.xplane.pb")))[-1]
    space = xplane_pb2.XSpace()
    space.ParseFromString(Path(path).read_bytes())
    times = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" not in name or "::" in name:  # executor bookkeeping, not an op
                    continue
                times[(_layer_of(name), name.split(":")[-1])] += event.duration_ps / 1e9
    return times


def print_table(model_name, times, top):
    total = sum(times.values())
    by_layer, by_type = collections.Counter(), collections.Counter()
    for (layer, op_type), ms in times.items():
        by_layer[layer] += ms
        by_type[op_type] += ms
    print(f"\n{model_name}: {total:.0f} ms of op time\n")
    print("| layer (name scope) | ms | share | | op type | ms | share |\n|---|---|---|---|---|---|---|")
    layers, types = by_layer.most_common(top), by_type.most_common(top)
    for i in range(top):
        left = f"{layers[i][0]} | {layers[i][1]:.0f} | {layers[i][1] / total:.0%}" \
            if i < len(layers) else " | | "
        right = f"{types[i][0]} | {types[i][1]:.0f} | {types[i][1] / total:.0%}" \
            if i < len(types) else " | | "
        print(f"| {left} | | {right} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=list(_steps()), choices=list(_steps()))
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    compare._keras()
    for name in args.models:
        step = _steps()[name]()
        for _ in range(3):
            step()
        print_table(name, profile(step, tempfile.mkdtemp()), args.top)


if __name__ == "__main__":
    main()
