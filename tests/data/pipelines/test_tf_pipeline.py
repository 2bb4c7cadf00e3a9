"""tf.data pipelines (kseg.data.pipelines.tf_pipeline): seeded batches repeat bitwise whatever the
parallelism, the PyDataset path's images per epoch, disjoint covering shards, files named
in errors, and PyDataset workers giving the same batches as none."""

import keras
import numpy as np
import pytest

import kseg
from kseg.data import DataError, ImageReadError, RoadScenesDataset, ShapesDataset, read_image
from kseg.data.pipelines.maskrcnn_pipeline import MaskRCNNSequence, batch_spec
from kseg.data.pipelines.maskrcnn_pipeline import make_tf_dataset as maskrcnn_tf_dataset
from kseg.data.pipelines.semantic_pipeline import SemanticSequence
from kseg.data.pipelines.semantic_pipeline import make_tf_dataset as semantic_tf_dataset
from kseg.models.mask_rcnn.config import MaskRCNNConfig

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="tf.data needs TensorFlow")


class TinyConfig(MaskRCNNConfig):
    NAME = "tiny"
    NUM_CLASSES = 4
    IMAGE_MIN_DIM = 64
    IMAGE_MAX_DIM = 64
    IMAGES_PER_GPU = 2
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    RPN_TRAIN_ANCHORS_PER_IMAGE = 32
    MINI_MASK_SHAPE = (28, 28)
    MAX_GT_INSTANCES = 3  # some images have more: the kept subset is a random draw


def semantic_config(**overrides):
    values = {"NAME": "t", "NUM_CLASSES": 3, "IMAGE_MIN_DIM": 64, "IMAGE_MAX_DIM": 64,
              "IMAGES_PER_GPU": 2, "SEED": 5, "IMAGE_RESIZE_MODE": "crop"}  # crop: random
    values.update(overrides)
    return kseg.SemanticConfig(**values)


def epochs(data, count=2):
    """`count` passes over a tf.data dataset as lists of numpy batches."""
    return [list(data.as_numpy_iterator()) for _ in range(count)]


def assert_same_batches(a, b):
    assert len(a) == len(b) and all(len(x) == len(y) for x, y in zip(a, b))
    for epoch_a, epoch_b in zip(a, b):
        for x, y in zip(epoch_a, epoch_b):
            for key in (x.keys() if isinstance(x, dict) else range(len(x))):
                np.testing.assert_array_equal(x[key], y[key], err_msg=str(key))


def image_ids(batches):
    return [[int(i) for i in batch["input_image_meta"][:, 0]] for batch in batches]


def test_maskrcnn_batches_repeat_bitwise_whatever_the_parallelism():
    dataset, config = ShapesDataset(8, 80, 100, seed=1), TinyConfig(IMAGE_RESIZE_MODE="crop")
    parallel = epochs(maskrcnn_tf_dataset(dataset, config, seed=4))
    again = epochs(maskrcnn_tf_dataset(dataset, config, seed=4))
    serial = epochs(maskrcnn_tf_dataset(dataset, config, seed=4, parallel=1))
    assert_same_batches(parallel, again)
    assert_same_batches(parallel, serial)
    spec = batch_spec(config)
    assert set(parallel[0][0]) == set(spec)
    for name, (shape, dtype) in spec.items():
        assert parallel[0][0][name].shape == shape and parallel[0][0][name].dtype == dtype
    other = epochs(maskrcnn_tf_dataset(dataset, config, seed=5), 1)
    assert image_ids(other[0]) != image_ids(parallel[0])  # the seed matters
    # The random parts ("crop" mode's crop, RPN sampling) are drawn anew every epoch.
    crops = [{i: image for batch in epoch for i, image in
              zip(batch["input_image_meta"][:, 0].astype(int), batch["input_image"])}
             for epoch in parallel]
    assert any(not np.array_equal(crops[0][i], crops[1][i]) for i in crops[0])


def test_maskrcnn_augmented_batches_repeat_whatever_the_parallelism():
    dataset, config = ShapesDataset(6, 80, 100, seed=1), TinyConfig()

    def run(parallel):
        flip = keras.layers.RandomFlip("horizontal", seed=3)  # its own random state
        return epochs(maskrcnn_tf_dataset(dataset, config, seed=4, augmentation=flip,
                                          parallel=parallel))

    augmented = run(None)
    assert_same_batches(augmented, run(None))
    assert_same_batches(augmented, run(1))
    plain = epochs(maskrcnn_tf_dataset(dataset, config, seed=4), 1)
    assert image_ids(plain[0]) == image_ids(augmented[0])
    flipped = [not np.array_equal(a["input_image"][k], b["input_image"][k])
               for a, b in zip(plain[0], augmented[0]) for k in range(2)]
    assert any(flipped) and not all(flipped)


def test_maskrcnn_epochs_show_the_pydataset_paths_images():
    dataset, config = ShapesDataset(7, 80, 100, seed=1), TinyConfig()
    pipeline = maskrcnn_tf_dataset(dataset, config, seed=2, pipeline=True)
    sequence = MaskRCNNSequence(dataset, config, seed=2)
    for _ in range(2):
        got = image_ids(pipeline.tf_dataset.as_numpy_iterator())
        want = [sequence.batch_image_ids(i) for i in range(len(sequence))]
        assert got == want  # 4 batches: one pass of 7 images + 1 wrapped
        assert sorted(set(sum(got, []))) == list(range(7))
        assert [pipeline.batch_image_ids(i) for i in range(len(pipeline))] == want
        sequence.on_epoch_end()
    assert pipeline.epoch == 1


def test_keras_epoch_numbers_start_the_epochs():
    dataset, config = ShapesDataset(6, 80, 100, seed=1), TinyConfig()
    pipeline = maskrcnn_tf_dataset(dataset, config, seed=2, pipeline=True)
    first = image_ids(pipeline.tf_dataset.as_numpy_iterator())
    second = image_ids(pipeline.tf_dataset.as_numpy_iterator())
    callback = pipeline.epoch_callback()
    callback.on_epoch_begin(0)  # e.g. after Keras pulled a batch to build the model
    assert image_ids(pipeline.tf_dataset.as_numpy_iterator()) == first
    callback.on_epoch_begin(1)  # a run resumed at epoch 1 sees what it would have seen
    assert image_ids(pipeline.tf_dataset.as_numpy_iterator()) == second != first


def test_maskrcnn_shards_of_two_workers_are_disjoint_and_make_the_global_batches():
    import tensorflow as tf

    dataset, config = ShapesDataset(8, 80, 100, seed=1), TinyConfig()

    whole = image_ids(maskrcnn_tf_dataset(dataset, config, seed=6).as_numpy_iterator())
    shards = []
    for worker in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=worker,
                                             num_replicas_in_sync=2)
        data = maskrcnn_tf_dataset(dataset, config, seed=6, input_context=context)
        assert data.element_spec["input_image"].shape[0] == 1  # per-replica batch
        shards.append(image_ids(data.as_numpy_iterator()))
    flat = [sum(s, []) for s in shards]
    assert not set(flat[0]) & set(flat[1])
    assert sorted(flat[0] + flat[1]) == list(range(8))
    assert [a + b for a, b in zip(*shards)] == whole  # step s: replicas = global batch s


def test_semantic_batches_repeat_and_follow_the_sequence_order():
    dataset, config = RoadScenesDataset(7, 48, 80, seed=0), semantic_config()
    parallel = epochs(semantic_tf_dataset(dataset, config))
    serial = epochs(semantic_tf_dataset(dataset, config, parallel=1))
    assert_same_batches(parallel, serial)
    assert [len(b[0]) for b in parallel[0]] == [2, 2, 2, 1]  # as SemanticSequence
    sequence = SemanticSequence(dataset, config)
    pipeline = semantic_tf_dataset(dataset, config, pipeline=True)
    for _ in range(2):
        list(pipeline.tf_dataset.as_numpy_iterator())
        assert [pipeline.batch_image_ids(i) for i in range(3)] == \
            [sequence.batch_image_ids(i) for i in range(3)]
        sequence.on_epoch_end()
    full = semantic_tf_dataset(dataset, config, steps=5)
    assert full.element_spec[0].shape.as_list() == [2, 64, 64, 3]
    assert len(list(full)) == 5


def test_semantic_keras_augmentation_runs_per_batch_and_repeats():
    dataset, config = RoadScenesDataset(4, 48, 80, seed=0), semantic_config()

    def run():
        aug = kseg.data.default_augmentation(seed=0)
        return epochs(semantic_tf_dataset(dataset, config, augmentation=aug), 1)

    first, second = run(), run()
    assert_same_batches(first, second)
    plain = epochs(semantic_tf_dataset(dataset, config), 1)
    assert not np.array_equal(first[0][0][0], plain[0][0][0])  # it did augment


def test_semantic_shards_are_disjoint_and_cover():
    import tensorflow as tf

    dataset, config = RoadScenesDataset(8, 48, 80, seed=0), semantic_config()

    seen = []
    for worker in range(2):
        context = tf.distribute.InputContext(2, worker, 2)
        pipeline = semantic_tf_dataset(dataset, config, input_context=context, pipeline=True)
        batches = list(pipeline.tf_dataset.as_numpy_iterator())
        assert len(batches) == 4 and all(len(b[0]) == 1 for b in batches)
        order = pipeline.order
        seen.append([int(order[p]) for p in range(8) if (p // 1) % 2 == worker])
    assert not set(seen[0]) & set(seen[1]) and sorted(seen[0] + seen[1]) == list(range(8))


class BadFile(ShapesDataset):
    """Image 1 is read from a file that is not an image."""

    def __init__(self, bad_path, **kwargs):
        super().__init__(**kwargs)
        self.bad_path = bad_path

    def load_image(self, image_id):
        return read_image(self.bad_path) if image_id == 1 else super().load_image(image_id)


def test_bad_image_file_is_named(tmp_path):
    import tensorflow as tf

    bad = tmp_path / "broken_photo.jpg"
    bad.write_bytes(b"not a jpeg at all")
    dataset = BadFile(bad, count=4, height=80, width=100, seed=1)
    pipeline = maskrcnn_tf_dataset(dataset, TinyConfig(), seed=0, pipeline=True)
    with pytest.raises(tf.errors.OpError, match="broken_photo.jpg") as error:
        list(pipeline.tf_dataset)
    with pytest.raises(ImageReadError, match="broken_photo.jpg"):
        pipeline.reraise(error.value)
    skipping = maskrcnn_tf_dataset(dataset, TinyConfig(), seed=0, on_error="skip",
                                   pipeline=True)
    ids = sum(image_ids(skipping.tf_dataset.as_numpy_iterator()), [])
    assert 1 not in ids and len(ids) == 4
    with pytest.warns(UserWarning, match=r"epoch 0: skipped 1 bad sample.*shapes:1"):
        skipping.epoch_callback().on_epoch_end(0)


def test_semantic_bad_sample_is_named_or_skipped():
    class Broken(RoadScenesDataset):
        def load_semantic_mask(self, image_id):
            class_map = super().load_semantic_mask(image_id)
            return class_map[:10] if image_id == 2 else class_map

    import tensorflow as tf

    dataset, config = Broken(5, 48, 80, seed=0), semantic_config()
    pipeline = semantic_tf_dataset(dataset, config, pipeline=True)
    with pytest.raises(tf.errors.OpError, match=r"image 2 \(") as error:
        list(pipeline.tf_dataset)
    with pytest.raises(DataError, match=r"image 2 \("):
        pipeline.reraise(error.value)
    skipping = semantic_tf_dataset(dataset, config, on_error="skip")
    assert sum(len(b[0]) for b in skipping) == 5  # the bad one replaced by the next good one


def _pydataset_batches(sequence):
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    adapter = PyDatasetAdapter(sequence, shuffle=False)
    batches = list(adapter.get_numpy_iterator())
    adapter.on_epoch_end()
    return batches


def test_pydataset_workers_give_the_batches_of_no_workers():
    dataset, config = ShapesDataset(6, 80, 100, seed=1), TinyConfig()
    plain = _pydataset_batches(MaskRCNNSequence(dataset, config, seed=3, workers=0))
    threads = _pydataset_batches(MaskRCNNSequence(dataset, config, seed=3, workers=2))
    processes = _pydataset_batches(MaskRCNNSequence(dataset, config, seed=3, workers=2,
                                                    use_multiprocessing=True))
    assert_same_batches([plain], [threads])
    assert_same_batches([plain], [processes])
    sem_config = semantic_config()
    road = RoadScenesDataset(6, 48, 80, seed=0)
    plain = _pydataset_batches(SemanticSequence(road, sem_config, workers=0))
    threads = _pydataset_batches(SemanticSequence(road, sem_config, workers=2))
    assert_same_batches([plain], [threads])


class SquareLoss(keras.layers.Layer):
    def call(self, x):
        self.add_loss(keras.ops.mean(keras.ops.square(x)) * 1e-6)
        return x


def test_keras_fit_trains_on_the_augmented_pipeline():
    dataset, config = ShapesDataset(4, 80, 100, seed=1), TinyConfig()
    flip = keras.layers.RandomFlip("horizontal", seed=3)
    pipeline = maskrcnn_tf_dataset(dataset, config, seed=0, augmentation=flip, pipeline=True)
    inputs = {name: keras.Input(shape[1:], batch_size=shape[0], dtype=np.dtype(dtype).name,
                                name=name) for name, (shape, dtype) in batch_spec(config).items()}
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3)(
        inputs["input_image"]))
    model = keras.Model(inputs, SquareLoss()(pooled))
    model.compile(optimizer="sgd")
    history = model.fit(pipeline.tf_dataset, epochs=2, verbose=0, shuffle=False,
                        callbacks=[pipeline.epoch_callback()])
    assert len(history.history["loss"]) == 2 and pipeline.epoch == 1
    assert np.isfinite(history.history["loss"]).all()
