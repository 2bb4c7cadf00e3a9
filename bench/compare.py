"""kseg beside its peers, side by side on this machine; prints one table.

    python bench/compare.py                            # every row, 2 passes
    python bench/compare.py --rows mrcnn_train_512 --passes 1 --repeats 3
    KSEG_BENCH_PEER_PYTHON=/path/to/peer/venv/bin/python python bench/compare.py

Each row runs the peer and kseg in separate processes on identical inputs (the same
NumPy-generated image and instances), alternating peer, kseg, peer, kseg, with 2 threads,
random weights, 2 warm-ups and the median of `--repeats` timed runs. The peer runs in
its own venv (bench/README.md: torch, torchvision, segmentation-models-pytorch; never a
dependency of kseg). Columns: median and min-max seconds of each pass, kseg / peer ratio
of the medians, GFLOP/s where the FLOPs are counted (peer: torch's FlopCounterMode;
kseg: TensorFlow's graph FLOP count), peak resident memory of the process.

Rows:
    matmul_4096          float32 4096^2 matmul: NumPy, torch (peer) / NumPy, TF (kseg)
    mrcnn_infer_512      Mask R-CNN R50-FPN, 1 image, 1000 proposals, 100 detections with
    mrcnn_infer_1024     full-size masks (torchvision maskrcnn_resnet50_fpn / kseg detect())
    mrcnn_train_512      train step, 1 image 512^2, 3 instances, trainable BN, 512 sampled
                         ROIs (25% positive), SGD (kseg: train_on_batch on molded inputs)
    mrcnn_train_defaults kseg's defaults (200 ROIs, 33% positive), peer as above
    mrcnn_infer_512_rpn256, mrcnn_train_512_rpn256
                         the same rows with torchvision's architecture: kseg with
                         RPN_CONV_FILTERS=256 (torchvision's RPN head is 256 wide,
                         Matterport's, kseg's default and mask_rcnn_coco.h5's, 512)
    mrcnn_first_step     seconds from the training call to the first finished step
                         (kseg: MaskRCNN.train on a Dataset; peer: first step)
    unet_r34_infer       U-Net ResNet34 encoder, 4 x 256^2 (segmentation_models_pytorch)
    unet_r34_train       its train step (Adam, binary cross-entropy)
    fcn_r50_infer        FCN ResNet50 1 x 512^2 (torchvision fcn_resnet50: dilated,
    fcn_r50_train        stride 8; kseg FCN-8s-R50: stride 32: compare GFLOP/s)
    fcn_r50_os8_infer, fcn_r50_os8_train
                         the same peer against kseg's FCN with torchvision's layout:
                         FCN-32s on a ResNet50 dilated to output stride 8, 3x3 fc6 of 512
                         (kseg adds a 1x1 fc7 and learns its x8 upsampling: ~1% more FLOPs)
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THREADS = 2
ROWS = ["matmul_4096", "mrcnn_infer_512", "mrcnn_infer_1024", "mrcnn_train_512",
        "mrcnn_train_defaults", "mrcnn_infer_512_rpn256", "mrcnn_train_512_rpn256",
        "mrcnn_first_step", "unet_r34_infer", "unet_r34_train",
        "fcn_r50_infer", "fcn_r50_train", "fcn_r50_os8_infer", "fcn_r50_os8_train"]


# === Shared inputs (NumPy only: both sides build the same arrays) ===
def make_image(size, seed=0):
    import numpy as np

    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def make_instances(size, count=3, seed=0):
    """`count` elliptical instances: boxes [N, (y1, x1, y2, x2)] pixels, masks [N, H, W]."""
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    boxes, masks = [], []
    for _ in range(count):
        h, w = rng.integers(size // 8, size // 3, 2)
        y1, x1 = rng.integers(0, size - h), rng.integers(0, size - w)
        cy, cx = y1 + h / 2, x1 + w / 2
        mask = ((yy - cy) / (h / 2)) ** 2 + ((xx - cx) / (w / 2)) ** 2 <= 1
        ys, xs = np.nonzero(mask)
        boxes.append([ys.min(), xs.min(), ys.max() + 1, xs.max() + 1])
        masks.append(mask)
    return np.array(boxes, np.int32), np.stack(masks)


def timed(fn, warmup=2, repeats=7):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# === Peer side (torch, torchvision, segmentation_models_pytorch) ===
def _torch():
    import torch

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    return torch


def _torch_flops(fn):
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def _tv_maskrcnn(size, **kwargs):
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    return maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91,
                                 min_size=size, max_size=size, **kwargs)


def peer_matmul(repeats):
    import numpy as np

    torch = _torch()
    a = np.random.default_rng(0).random((4096, 4096), dtype=np.float32)
    flops = 2 * 4096 ** 3
    ta = torch.from_numpy(a)
    return {"times": timed(lambda: ta @ ta, 1, repeats), "flops": flops,
            "extra": {"numpy_s": statistics.median(timed(lambda: a @ a, 1, repeats))}}


def peer_mrcnn_infer(size, repeats):
    torch = _torch()
    model = _tv_maskrcnn(size, rpn_pre_nms_top_n_test=1000, rpn_post_nms_top_n_test=1000,
                         box_score_thresh=0.0, box_nms_thresh=0.5,
                         box_detections_per_img=100).eval()
    image = torch.from_numpy(make_image(size)).permute(2, 0, 1).float() / 255.0
    out = {}

    def run():
        with torch.no_grad():
            out["r"] = model([image])[0]
    times = timed(run, 2, repeats)
    flops = _torch_flops(run)
    return {"times": times, "flops": flops, "extra": {"detections": len(out["r"]["boxes"])}}


def _peer_targets(torch, size):
    boxes, masks = make_instances(size)
    return [{"boxes": torch.from_numpy(boxes[:, [1, 0, 3, 2]].astype("float32")),
             "labels": torch.tensor([1, 2, 3]),
             "masks": torch.from_numpy(masks.astype("uint8"))}]


def peer_mrcnn_train(size, repeats, first_only=False):
    torch = _torch()
    model = _tv_maskrcnn(size, box_batch_size_per_image=512, box_positive_fraction=0.25)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    images = [torch.from_numpy(make_image(size)).permute(2, 0, 1).float() / 255.0]
    targets = _peer_targets(torch, size)

    def step():
        losses = model(images, targets)
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
    if first_only:
        start = time.perf_counter()
        step()
        return {"times": [time.perf_counter() - start]}
    return {"times": timed(step, 2, repeats)}


def _smp_unet(torch):
    import segmentation_models_pytorch as smp

    return smp.Unet("resnet34", encoder_weights=None, classes=1)


def peer_unet(train, repeats):
    import numpy as np

    torch = _torch()
    model = _smp_unet(torch)
    x = torch.from_numpy(np.random.default_rng(0).random((4, 3, 256, 256), dtype=np.float32))
    y = (torch.rand(4, 1, 256, 256) > 0.9).float()
    return _peer_semantic(torch, model, x, y, train, repeats,
                          torch.nn.BCEWithLogitsLoss(), lambda out: out)


def peer_fcn(train, repeats):
    import numpy as np
    from torchvision.models.segmentation import fcn_resnet50

    torch = _torch()
    model = fcn_resnet50(weights=None, weights_backbone=None, num_classes=21, aux_loss=False)
    x = torch.from_numpy(np.random.default_rng(0).random((1, 3, 512, 512), dtype=np.float32))
    y = torch.randint(0, 21, (1, 512, 512))
    return _peer_semantic(torch, model, x, y, train, repeats, torch.nn.CrossEntropyLoss(),
                          lambda out: out["out"])


def _peer_semantic(torch, model, x, y, train, repeats, loss_fn, pick):
    if train:
        model.train()
        optimizer = torch.optim.Adam(model.parameters(), 1e-3)

        def run():
            loss = loss_fn(pick(model(x)), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        flops = _torch_flops(run)
    else:
        model.eval()

        def run():
            with torch.no_grad():
                pick(model(x))
        flops = _torch_flops(run)
    return {"times": timed(run, 2, repeats), "flops": flops}


# === kseg side ===
def _keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(int(os.environ.get("INTER", THREADS)))
    import keras

    keras.utils.set_random_seed(0)
    return keras


def _tf_flops(fn, *specs):
    """FLOPs of `fn` traced on `specs` (TensorFlow's per-op float_ops, static shapes)."""
    import tensorflow as tf

    graph = tf.function(fn).get_concrete_function(*specs).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops


def kseg_matmul(repeats):
    import numpy as np

    _keras()
    import tensorflow as tf

    a = tf.constant(np.random.default_rng(0).random((4096, 4096), dtype=np.float32))
    matmul = tf.function(lambda: tf.matmul(a, a))
    return {"times": timed(lambda: matmul().numpy(), 1, repeats), "flops": 2 * 4096 ** 3}


def _mrcnn_config(size, **overrides):
    from kseg import MaskRCNNConfig

    return MaskRCNNConfig(NAME="bench", NUM_CLASSES=91, BACKBONE="resnet50", IMAGES_PER_GPU=1,
                          IMAGE_MIN_DIM=size, IMAGE_MAX_DIM=size, **overrides)


def kseg_mrcnn_infer(size, repeats, **overrides):
    _keras()
    from kseg import MaskRCNN

    config = _mrcnn_config(size, POST_NMS_ROIS_INFERENCE=1000, PRE_NMS_LIMIT=5000,
                           DETECTION_MAX_INSTANCES=100, DETECTION_MIN_CONFIDENCE=0.0,
                           DETECTION_NMS_THRESHOLD=0.5, **overrides)
    model = MaskRCNN("inference", config, model_dir="/tmp/kseg_bench")
    image = make_image(size)
    out = {}

    def run():
        out["r"] = model.detect([image])[0]
    times = timed(run, 2, repeats)
    return {"times": times, "flops": _mrcnn_infer_flops(model, config),
            "extra": {"detections": len(out["r"]["rois"])}}


def _mrcnn_infer_flops(model, config):
    """FLOPs of the inference graph with every ROI row computed (fast paths off)."""
    import tensorflow as tf

    os.environ["KSEG_DISABLE_FAST_OPS"] = "1"
    try:
        specs = [tf.TensorSpec([1, *config.IMAGE_SHAPE], tf.float32),
                 tf.TensorSpec([1, config.IMAGE_META_SIZE], tf.float32)]
        return _tf_flops(lambda a, b: model.keras_model([a, b]), *specs)
    finally:
        del os.environ["KSEG_DISABLE_FAST_OPS"]


class _BenchDataset:
    """A one-image kseg Dataset holding the shared image and its 3 instances."""

    def __new__(cls, size):
        import numpy as np

        from kseg import Dataset

        class OneImage(Dataset):
            def load_image(self, image_id):
                return make_image(size)

            def load_mask(self, image_id):
                _, masks = make_instances(size)
                return np.transpose(masks, (1, 2, 0)), np.array([1, 2, 3], np.int32)

        dataset = OneImage()
        for i in range(1, 91):
            dataset.add_class("bench", i, f"class{i}")
        dataset.add_image("bench", 0, path=None, width=size, height=size)
        dataset.prepare()
        return dataset


def _train_config(size, defaults, **overrides):
    # torchvision fills every ROI slot with negatives and adds the ground truth to the
    # proposals: kseg's ROI_SAMPLING "fill" with ADD_GT_AS_PROPOSALS.
    rois = {} if defaults else {"TRAIN_ROIS_PER_IMAGE": 512, "ROI_POSITIVE_RATIO": 0.25,
                                "ROI_SAMPLING": "fill", "ADD_GT_AS_PROPOSALS": True}
    return _mrcnn_config(size, TRAIN_BN=True, OPTIMIZER="sgd", LEARNING_RATE=0.01,
                         LEARNING_MOMENTUM=0.9, STEPS_PER_EPOCH=1, VALIDATION_STEPS=0,
                         **rois, **overrides)


def kseg_mrcnn_train(size, repeats, defaults=False, **overrides):
    import numpy as np

    _keras()
    from kseg import MaskRCNN
    from kseg.data.pipelines.maskrcnn_pipeline import build_batch

    config = _train_config(size, defaults, **overrides)
    batch, _ = build_batch(_BenchDataset(size), config, [0], rng=np.random.default_rng(0))
    model = MaskRCNN("training", config, model_dir="/tmp/kseg_bench")
    model.compile(config.LEARNING_RATE, config.LEARNING_MOMENTUM)
    return {"times": timed(lambda: model.keras_model.train_on_batch(batch), 2, repeats)}


def kseg_first_step(size):
    import shutil

    keras = _keras()
    from kseg import MaskRCNN

    config = _train_config(size, defaults=False)
    shutil.rmtree("/tmp/kseg_bench_first", ignore_errors=True)
    model = MaskRCNN("training", config, model_dir="/tmp/kseg_bench_first")
    marks = {}

    class FirstStep(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            marks.setdefault("end", time.perf_counter())
            self.model.stop_training = True
    dataset = _BenchDataset(size)
    start = time.perf_counter()
    model.train(dataset, None, config.LEARNING_RATE, epochs=1, layers="all",
                custom_callbacks=[FirstStep()], verbose=0)
    return {"times": [marks["end"] - start]}


def kseg_unet(train, repeats):
    import numpy as np

    keras = _keras()
    from kseg.models.unet import UNet

    # smp's U-Net has one output channel for a binary task: so does this one.
    model = UNet(2, backbone="resnet34", output_activation="sigmoid",
                 input_shape=(256, 256, 3))
    x = np.random.default_rng(0).random((4, 256, 256, 3), dtype=np.float32)
    y = (np.random.default_rng(1).random((4, 256, 256, 1)) > 0.9).astype("float32")
    loss = keras.losses.BinaryCrossentropy()
    return _kseg_semantic(keras, model, x, y, train, repeats, loss)


def kseg_fcn(train, repeats, peer_layout=False):
    import numpy as np

    keras = _keras()
    from kseg.models.fcn import FCN

    layout = {"variant": "fcn8s"}
    if peer_layout:  # torchvision's fcn_resnet50: dilated to stride 8, 3x3 head of 512
        layout = {"variant": "fcn32s", "output_stride": 8, "fc_filters": 512,
                  "fc_kernel_size": 3, "dropout": 0.1}
    model = FCN(backbone="resnet50", num_classes=21, input_shape=(512, 512, 3),
                output_activation="logits", **layout)
    x = np.random.default_rng(0).random((1, 512, 512, 3), dtype=np.float32)
    y = np.random.default_rng(1).integers(0, 21, (1, 512, 512, 1))
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return _kseg_semantic(keras, model, x, y, train, repeats, loss)


def _kseg_semantic(keras, model, x, y, train, repeats, loss):
    import tensorflow as tf

    spec = tf.TensorSpec(x.shape, tf.float32)
    forward = _tf_flops(lambda a: model(a, training=False), spec)
    if train:
        from kseg.models.optimizers import Adam  # what kseg's trainers build (make_optimizer)

        model.compile(Adam(1e-3), loss)
        return {"times": timed(lambda: model.train_on_batch(x, y), 2, repeats),
                "flops": 3 * forward}  # forward + the two backward products
    return {"times": timed(lambda: model.predict_on_batch(x), 2, repeats), "flops": forward}


def run_worker(row, side, repeats):
    table = {
        "matmul_4096": (lambda: peer_matmul(repeats), lambda: kseg_matmul(repeats)),
        "mrcnn_infer_512": (lambda: peer_mrcnn_infer(512, repeats),
                            lambda: kseg_mrcnn_infer(512, repeats)),
        "mrcnn_infer_1024": (lambda: peer_mrcnn_infer(1024, repeats),
                             lambda: kseg_mrcnn_infer(1024, repeats)),
        "mrcnn_train_512": (lambda: peer_mrcnn_train(512, repeats),
                            lambda: kseg_mrcnn_train(512, repeats)),
        "mrcnn_train_defaults": (lambda: peer_mrcnn_train(512, repeats),
                                 lambda: kseg_mrcnn_train(512, repeats, defaults=True)),
        "mrcnn_infer_512_rpn256": (lambda: peer_mrcnn_infer(512, repeats),
                                   lambda: kseg_mrcnn_infer(512, repeats, RPN_CONV_FILTERS=256)),
        "mrcnn_train_512_rpn256": (lambda: peer_mrcnn_train(512, repeats),
                                   lambda: kseg_mrcnn_train(512, repeats, RPN_CONV_FILTERS=256)),
        "mrcnn_first_step": (lambda: peer_mrcnn_train(512, 1, first_only=True),
                             lambda: kseg_first_step(512)),
        "unet_r34_infer": (lambda: peer_unet(False, repeats), lambda: kseg_unet(False, repeats)),
        "unet_r34_train": (lambda: peer_unet(True, repeats), lambda: kseg_unet(True, repeats)),
        "fcn_r50_infer": (lambda: peer_fcn(False, repeats), lambda: kseg_fcn(False, repeats)),
        "fcn_r50_train": (lambda: peer_fcn(True, repeats), lambda: kseg_fcn(True, repeats)),
        "fcn_r50_os8_infer": (lambda: peer_fcn(False, repeats),
                              lambda: kseg_fcn(False, repeats, peer_layout=True)),
        "fcn_r50_os8_train": (lambda: peer_fcn(True, repeats),
                              lambda: kseg_fcn(True, repeats, peer_layout=True)),
    }
    result = table[row][0 if side == "peer" else 1]()
    result["peak_mb"] = peak_mb()
    print("RESULT " + json.dumps(result))


# === Driver ===
def run_side(row, side, repeats, peer_python):
    python = peer_python if side == "peer" else sys.executable
    env = {**os.environ, "OMP_NUM_THREADS": str(THREADS), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([python, __file__, "--worker", row, "--side", side,
                           "--repeats", str(repeats)], capture_output=True, text=True,
                          env=env, timeout=1800)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:]}


def _cell(result):
    if "error" in result:
        return "error: " + " ".join(result["error"])[:60]
    times = result["times"]
    med = statistics.median(times)
    return f"{med:.3f} ({min(times):.2f}-{max(times):.2f})"


def _gflops(results):
    rates = [r["flops"] / statistics.median(r["times"]) / 1e9 for r in results
             if "flops" in r and "times" in r]
    return f"{statistics.median(rates):.0f}" if rates else ""


def _median(results):
    values = [statistics.median(r["times"]) for r in results if "times" in r]
    return statistics.median(values) if values else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="*", default=ROWS, choices=ROWS)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--peer-python", default=os.environ.get(
        "KSEG_BENCH_PEER_PYTHON", str(ROOT.parent / "benchvenv" / "bin" / "python")))
    parser.add_argument("--worker")
    parser.add_argument("--side")
    parser.add_argument("--json", help="also write every result to this file")
    args = parser.parse_args()
    if args.worker:
        return run_worker(args.worker, args.side, args.repeats)
    header = ("| row | peer s, median (min-max) per pass | kseg s, median (min-max) per pass "
              "| kseg / peer | peer GFLOP/s | kseg GFLOP/s | peer / kseg peak MB |")
    print(header + "\n|" + "---|" * 7, flush=True)
    everything = {}
    for row in args.rows:
        runs = {"peer": [], "kseg": []}
        for _ in range(args.passes):
            for side in ("peer", "kseg"):
                runs[side].append(run_side(row, side, args.repeats, args.peer_python))
        everything[row] = runs
        ratio = _median(runs["kseg"]) / _median(runs["peer"])
        mem = "/".join(f"{max(r.get('peak_mb', 0) for r in runs[s]):.0f}" for s in runs)
        print(f"| {row} | {' / '.join(_cell(r) for r in runs['peer'])} | "
              f"{' / '.join(_cell(r) for r in runs['kseg'])} | {ratio:.2f} | "
              f"{_gflops(runs['peer'])} | {_gflops(runs['kseg'])} | {mem} |", flush=True)
        extras = {s: [r["extra"] for r in runs[s] if "extra" in r] for s in runs}
        if any(extras.values()):
            print(f"|   {row} details: {json.dumps(extras)} |" + " |" * 6, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(everything, indent=1))


if __name__ == "__main__":
    main()
