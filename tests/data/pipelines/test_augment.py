"""apply_augmentation with Keras layers, an imgaug-style fake, and an albumentations-style callable."""

import keras
import numpy as np
import pytest

from kseg.data import apply_augmentation, default_augmentation


def sample():
    image = np.zeros([48, 64, 3], np.uint8)
    masks = np.zeros([48, 64, 2], bool)
    masks[5:20, 5:25, 0] = True
    masks[25:45, 30:60, 1] = True
    image[..., 0] = masks[..., 0] * 255
    image[..., 1] = masks[..., 1] * 255
    class_map = (masks[..., 0] * 1 + masks[..., 1] * 7).astype(np.int32)
    return image, masks, class_map


def test_none_is_identity():
    image, masks, class_map = sample()
    out = apply_augmentation(None, image, masks, class_map)
    assert out[0] is image and out[1] is masks and out[2] is class_map


@pytest.mark.parametrize("kind", ["semantic", "instance"])
def test_default_augmentation_keeps_dtypes_and_alignment(kind):
    image, masks, class_map = sample()
    aug = default_augmentation(kind, seed=0)
    assert isinstance(aug, keras.Sequential)
    geometric = keras.Sequential([layer for layer in aug.layers if "flip" in layer.name
                                  or "rotation" in layer.name or "zoom" in layer.name])
    for _ in range(3):
        out_image, out_masks, out_map = apply_augmentation(geometric, image, masks, class_map)
        assert out_image.dtype == np.uint8 and out_image.shape == image.shape
        assert out_masks.dtype == bool and out_masks.shape == masks.shape
        assert out_map.dtype == np.int32 and set(np.unique(out_map)) <= {0, 1, 7}
        for c in range(2):  # the image channel drawn from mask c moved with the mask
            drawn = out_image[..., c] > 127
            iou = (drawn & out_masks[..., c]).sum() / max((drawn | out_masks[..., c]).sum(), 1)
            assert iou > 0.9
        np.testing.assert_array_equal(out_map == 7, out_masks[..., 1])
    out_image, out_masks, out_map = apply_augmentation(aug, image, masks, class_map)
    assert out_masks.shape == masks.shape and out_map.shape == class_map.shape


def test_keras_seeds_make_runs_reproducible():
    image, masks, class_map = sample()
    a = apply_augmentation(default_augmentation(seed=3), image, masks, class_map)
    b = apply_augmentation(default_augmentation(seed=3), image, masks, class_map)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_list_of_layers_and_semantic_only():
    image, _, class_map = sample()
    flip = [keras.layers.RandomFlip("horizontal", seed=1), keras.layers.RandomFlip("vertical")]
    out_image, out_masks, out_map = apply_augmentation(flip, image, class_map=class_map)
    assert out_masks is None
    np.testing.assert_array_equal(out_map == 1, out_image[..., 0] > 127)


def test_shape_change_is_an_error_naming_the_augmenter():
    image, masks, _ = sample()
    with pytest.raises(ValueError, match="random_crop.*image shape"):
        apply_augmentation(keras.layers.RandomCrop(32, 32, name="random_crop"), image, masks)

    def crop_masks(image, masks):
        return {"image": image, "masks": [m[:10] for m in masks]}

    with pytest.raises(ValueError, match="crop_masks.*mask shape"):
        apply_augmentation(crop_masks, image, masks)


# --- A tiny imgaug look-alike (imgaug itself is not imported) ---
class Fliplr:
    def __init__(self, flip=True):
        self.flip = flip

    def augment_image(self, image, hooks=None):
        if hooks is not None and not hooks.is_activated(image, self, [], default=True):
            return image
        return image[:, ::-1] if self.flip else image


class Add:
    def __init__(self, value):
        self.value = value

    def augment_image(self, image, hooks=None):
        if hooks is not None and not hooks.is_activated(image, self, [], default=True):
            return image
        return np.clip(image.astype(np.int32) + self.value, 0, 255).astype(image.dtype)


class Sequential:
    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)
        self.children = None

    def to_deterministic(self):
        det = Sequential()
        det.children = [Fliplr(bool(self.rng.random() < 0.5)), Add(int(self.rng.integers(20, 40)))]
        return det

    def augment_image(self, image, hooks=None):
        if hooks is not None and not hooks.is_activated(image, self, [], default=True):
            return image
        for child in self.children:
            image = child.augment_image(image, hooks)
        return image


def test_imgaug_style_color_ops_skip_masks():
    image, masks, class_map = sample()
    flips = 0
    aug = Sequential(seed=0)
    for _ in range(6):
        out_image, out_masks, out_map = apply_augmentation(aug, image, masks, class_map)
        assert out_masks.dtype == bool and set(np.unique(out_map)) <= {0, 1, 7}
        np.testing.assert_array_equal(out_image[..., 0] > 127, out_masks[..., 0])
        assert out_image[..., 2].min() >= 20  # color op reached the image only
        flips += not np.array_equal(out_masks, masks)
    assert 0 < flips < 6


def test_albumentations_style_callable():
    image, masks, class_map = sample()

    def hflip(image, mask=None, masks=None):
        out = {"image": image[:, ::-1]}
        if mask is not None:
            out["mask"] = mask[:, ::-1]
        if masks is not None:
            out["masks"] = [m[:, ::-1] for m in masks]
        return out

    out_image, out_masks, out_map = apply_augmentation(hflip, image, masks, class_map)
    np.testing.assert_array_equal(out_masks, masks[:, ::-1])
    np.testing.assert_array_equal(out_map, class_map[:, ::-1])
    out_image, none, out_map = apply_augmentation(hflip, image, class_map=class_map)
    assert none is None and out_map.dtype == np.int32
    np.testing.assert_array_equal(out_image, image[:, ::-1])
    with pytest.raises(TypeError, match="augmentation"):
        apply_augmentation(42, image, masks)
