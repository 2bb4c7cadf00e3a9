"""SemanticSequence batches, shuffling, padding labels, bad samples, and tf.data."""

import keras
import numpy as np
import pytest

import kseg
from kseg.data import DataError, RoadScenesDataset, ShapesDataset, default_augmentation
from kseg.data.pipelines.semantic_pipeline import SemanticSequence, make_tf_dataset


def config(**overrides):
    values = {"NAME": "t", "NUM_CLASSES": 2, "IMAGE_MIN_DIM": 64, "IMAGE_MAX_DIM": 64,
              "IMAGES_PER_GPU": 3, "SEED": 0}
    values.update(overrides)
    return kseg.SemanticConfig(**values)


class BrokenRoads(RoadScenesDataset):
    """Image 2 has a semantic mask of the wrong size."""

    def load_semantic_mask(self, image_id):
        class_map = super().load_semantic_mask(image_id)
        return class_map[:10] if image_id == 2 else class_map


def test_batches_shapes_and_dtypes():
    ds = RoadScenesDataset(7, 48, 80, seed=0)
    seq = SemanticSequence(ds, config(), shuffle=False)
    assert isinstance(seq, keras.utils.PyDataset) and len(seq) == 3
    images, maps = seq[0]
    assert images.shape == (3, 64, 64, 3) and images.dtype == np.float32
    assert maps.shape == (3, 64, 64) and maps.dtype == np.int32
    assert images.max() > 1.0  # raw 0..255, not normalized
    assert seq[2][0].shape[0] == 1  # partial last batch
    assert (maps[:, :12] == 0).all()  # 48x80 -> 38x64 padded: top rows are padding
    with pytest.raises(IndexError):
        seq[3]


def test_padding_gets_ignore_index():
    ds = RoadScenesDataset(3, 48, 80, seed=0)
    _, maps = SemanticSequence(ds, config(IGNORE_INDEX=255), shuffle=False)[0]
    assert (maps[:, :12] == 255).all() and (maps[:, -12:] == 255).all()
    assert set(np.unique(maps[:, 20:40])) <= {0, 1}


def test_shuffle_is_seeded_per_epoch():
    ds = ShapesDataset(12, 32, 32, seed=0)
    cfg = config(NUM_CLASSES=4, IMAGE_MIN_DIM=32, IMAGE_MAX_DIM=64, IMAGES_PER_GPU=4, SEED=5)
    a, b = SemanticSequence(ds, cfg), SemanticSequence(ds, cfg)
    first = a.order.copy()
    np.testing.assert_array_equal(first, b.order)
    np.testing.assert_array_equal(a[0][0], b[0][0])
    a.on_epoch_end()
    assert not np.array_equal(first, a.order) and sorted(a.order) == list(range(12))
    assert not np.array_equal(first, SemanticSequence(ds, config(SEED=6)).order)
    np.testing.assert_array_equal(SemanticSequence(ds, cfg, shuffle=False).order, np.arange(12))


def test_other_resize_modes_pad_the_batch():
    ds = ShapesDataset(2, 40, 72, seed=0)
    images, maps = SemanticSequence(ds, config(IMAGE_RESIZE_MODE="pad64", IMAGES_PER_GPU=2,
                                               NUM_CLASSES=4, IMAGE_MIN_DIM=None),
                                    shuffle=False)[0]
    assert images.shape == (2, 64, 128, 3) and maps.shape == (2, 64, 128)
    images, maps = SemanticSequence(ds, config(IMAGE_RESIZE_MODE="crop", IMAGE_MIN_DIM=64,
                                               IMAGE_MAX_DIM=64, NUM_CLASSES=4))[0]
    assert images.shape == (2, 64, 64, 3)


def test_augmentation_keeps_labels():
    ds = RoadScenesDataset(3, 64, 64, seed=0)
    seq = SemanticSequence(ds, config(), augmentation=default_augmentation(seed=0))
    images, maps = seq[0]
    assert images.shape == (3, 64, 64, 3) and set(np.unique(maps)) <= {0, 1}
    assert maps.sum() > 0


def test_bad_sample_raises_naming_image():
    ds = BrokenRoads(4, 32, 32, seed=0)
    seq = SemanticSequence(ds, config(), shuffle=False)
    with pytest.raises(DataError, match=r"image 2 \(road_scenes:2\).*size"):
        seq[0]


def test_bad_sample_skipped_with_one_warning_per_epoch():
    ds = BrokenRoads(4, 32, 32, seed=0)
    seq = SemanticSequence(ds, config(), shuffle=False, on_error="skip")
    images, _ = seq[0]
    assert images.shape[0] == 3 and seq.skipped == ["road_scenes:2"]  # filled from image 3
    with pytest.warns(UserWarning, match=r"skipped 1 bad sample.*road_scenes:2"):
        seq[1]
    seq.on_epoch_end()  # already warned for this epoch
    assert seq.skipped == [] and seq.epoch == 1


def test_fit_consumes_the_sequence():
    ds = RoadScenesDataset(4, 32, 32, seed=0)
    seq = SemanticSequence(ds, config(IMAGE_MIN_DIM=32, IMAGE_MAX_DIM=64, IMAGES_PER_GPU=2),
                           workers=2, use_multiprocessing=False)
    inputs = keras.Input([64, 64, 3])
    outputs = keras.layers.Conv2D(2, 1)(keras.layers.Rescaling(1 / 255)(inputs))
    model = keras.Model(inputs, outputs)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(seq, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and seq.epoch >= 2  # keras may add one call


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.data needs TensorFlow")
def test_make_tf_dataset():
    ds = RoadScenesDataset(5, 32, 32, seed=0)
    data = make_tf_dataset(ds, config(IMAGES_PER_GPU=2), shuffle=True)
    assert data.element_spec[0].shape.as_list() == [None, 64, 64, 3]
    batches = [(x.numpy(), y.numpy()) for x, y in data]
    assert [b[0].shape[0] for b in batches] == [2, 2, 1]
    assert batches[0][1].dtype == np.int32


def test_labels_beyond_num_classes_are_an_error():
    ds = ShapesDataset(2, 32, 32, seed=0)  # classes 0..3
    with pytest.raises(DataError, match=r"image 0 .*labels \[\d\].*NUM_CLASSES=2"):
        SemanticSequence(ds, config(), shuffle=False)[0]
