"""Input pipeline speed beside the model's training speed, per model; prints a table.

    python bench/pipeline.py                    # all rows (~5 minutes on 2 CPU cores)
    python bench/pipeline.py --only shapes      # shapes | car_damage | unet | fcn

Rows (each model's sample data and config):
    shapes: Mask R-CNN on generated shapes at the main job's ShapesConfig (128x128, batch 8);
    car_damage: Mask R-CNN on the car-damage VIA data (../shared/data) molded to 512x512
        (SmallDataConfig at 512, batch 2, no augmentation);
    unet: the smoke sample's U-Net on the FSS data, with its flip augmentation;
    fcn: the road sample's FCN-8s on CamVid, with its flip augmentation.
Columns: images / s of the input pipeline alone (batches pulled and thrown away) on three
paths: tf.data with num_parallel_calls=AUTOTUNE, tf.data with 1 parallel call, and the
PyDataset path (`MaskRCNNSequence` / `SemanticSequence` batches in one thread, what `fit`
gets with workers=1); images per CPU-second of the 1-call path (the per-core rate: CPU time
of the whole process, so it holds on a loaded machine where wall-clock rates do not); the
model's training images / s on batches already in memory (`train_on_batch`); how many
cores the pipeline needs to keep up (training rate / per-core rate); AUTOTUNE / training.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _rate(batches, count, warmup=1, cpu=False):
    """Images / s of pulling `count` batches from the iterator `batches` (after warm-up);
    with `cpu`, also images per CPU-second of this process (all its threads)."""
    for _ in range(warmup):
        next(batches)
    images, start, start_cpu = 0, time.perf_counter(), time.process_time()
    for _ in range(count):
        batch = next(batches)
        first = batch[0] if isinstance(batch, tuple) else batch["input_image"]
        images += len(first)
    wall = images / (time.perf_counter() - start)
    return (wall, images / (time.process_time() - start_cpu)) if cpu else wall


def _repeat(make):
    """An endless iterator over the epochs of `make()` (a tf.data dataset)."""
    data = make()
    while True:
        yield from data.as_numpy_iterator()


def _sequence_batches(sequence):
    while True:
        for index in range(len(sequence)):
            yield sequence[index]
        sequence.on_epoch_end()


def maskrcnn_row(name, config, dataset, batches, steps):
    from kseg import MaskRCNN
    from kseg.data.pipelines.maskrcnn_pipeline import MaskRCNNSequence, make_tf_dataset

    def make(parallel):
        return lambda: make_tf_dataset(dataset, config, seed=0, parallel=parallel)

    rates = [_rate(_repeat(make(None)), batches), *_rate(_repeat(make(1)), batches, cpu=True),
             _rate(_sequence_batches(MaskRCNNSequence(dataset, config, seed=0)), batches)]
    batch = next(make_tf_dataset(dataset, config, seed=0).as_numpy_iterator())
    model = MaskRCNN("training", config, model_dir="/tmp/kseg_bench_pipeline")
    model.compile(config.LEARNING_RATE, config.LEARNING_MOMENTUM)
    model.keras_model.train_on_batch(batch)  # trace
    start = time.perf_counter()
    for _ in range(steps):
        model.keras_model.train_on_batch(batch)
    train = steps * config.BATCH_SIZE / (time.perf_counter() - start)
    return (name, *rates, train)


def semantic_row(name, config, build, dataset, augmentation, batches, steps):
    from kseg.data.pipelines.semantic_pipeline import SemanticSequence, make_tf_dataset
    from kseg.semantic.train import compile_semantic

    def make(parallel):
        return lambda: make_tf_dataset(dataset, config, augmentation=augmentation,
                                       parallel=parallel, drop_remainder=True)

    sequence = SemanticSequence(dataset, config, augmentation=augmentation)
    rates = [_rate(_repeat(make(None)), batches), *_rate(_repeat(make(1)), batches, cpu=True),
             _rate(_sequence_batches(sequence), batches)]
    images, labels = next(make(None)().as_numpy_iterator())
    model = compile_semantic(build(config), config)
    model.train_on_batch(images, labels)  # trace
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, labels)
    train = steps * len(images) / (time.perf_counter() - start)
    return (name, *rates, train)


def shapes(batches, steps):
    from kseg.data import ShapesDataset
    from kseg.models.mask_rcnn.presets import ShapesConfig

    config = ShapesConfig()
    side = int(config.IMAGE_MAX_DIM)
    return maskrcnn_row(f"Mask R-CNN shapes {side} b{config.BATCH_SIZE}", config,
                        ShapesDataset(200, side, side, seed=1), batches, steps)


def car_damage(batches, steps):
    from kseg.data import load_via
    from kseg.data.paths import dataset_path
    from kseg.models.mask_rcnn.presets import SmallDataConfig

    config = SmallDataConfig(NAME="damage", NUM_CLASSES=2, IMAGE_MIN_DIM=512, IMAGE_MAX_DIM=512,
                             IMAGES_PER_GPU=2)
    train = load_via(dataset_path("car_damage", "dataset"), "train")
    return maskrcnn_row("Mask R-CNN car damage 512 b2", config, train, batches, steps)


def unet(batches, steps):
    from semantic import load_sample

    from kseg.data.paths import dataset_path
    from kseg.models.unet import build_unet

    smoke = load_sample("smoke")
    train, _ = smoke.load_smoke_datasets(dataset_path("smoke_fss", "FSS"))
    config = smoke.SmokeConfig()
    return semantic_row(f"U-Net smoke {config.IMAGE_MAX_DIM} b{config.BATCH_SIZE}", config,
                        build_unet, train, smoke.augmentation(config.SEED), batches, steps)


def fcn(batches, steps):
    from semantic import load_sample

    from kseg.data.paths import dataset_path
    from kseg.models.fcn import build_fcn

    road = load_sample("road")
    train, _ = road.load_road_datasets(dataset_path("road_camvid", "CamVid"))
    config = road.RoadConfig()
    return semantic_row(f"FCN-8s road {config.IMAGE_MAX_DIM} b{config.BATCH_SIZE}", config,
                        build_fcn, train, road.augmentation(config.SEED), batches, steps)


ROWS = {"shapes": shapes, "car_damage": car_damage, "unet": unet, "fcn": fcn}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", choices=sorted(ROWS), action="append", default=None)
    p.add_argument("--batches", type=int, default=8, help="batches timed per pipeline path")
    p.add_argument("--steps", type=int, default=3, help="training steps timed per model")
    args = p.parse_args(argv)
    from kseg.evaluate import format_table

    cores = len(os.sched_getaffinity(0))
    rows = []
    for name in args.only or list(ROWS):
        row = ROWS[name](args.batches, args.steps)
        auto, one, per_cpu, pydataset, train = row[1:]
        rows.append((row[0], f"{auto:.1f}", f"{one:.1f}", f"{per_cpu:.1f}", f"{pydataset:.1f}",
                     f"{train:.1f}", f"{train / per_cpu:.2f}", f"{auto / train:.1f}x"))
        print(rows[-1], flush=True)
    print(format_table(rows, ["model", "tf.data AUTOTUNE img/s", "tf.data 1 call img/s",
                              "img per CPU-s (1 call)", "PyDataset img/s", "training img/s",
                              "cores to feed training", "AUTOTUNE / training"]))
    print(f"{cores} cores; pipeline rows time {args.batches} batches after one warm-up, "
          f"training rows {args.steps} steps after the trace.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
