"""scene_augmentation / RandomHaze: geometry moves masks, color leaves them; batch augmenting."""

import keras
import numpy as np
import pytest

from kseg.data import RandomHaze, apply_augmentation, scene_augmentation
from kseg.data.pipelines.augment import apply_batch_augmentation


def scene():
    """A 64x64 image whose red channel draws the road class map (bottom-left block)."""
    class_map = np.zeros([64, 64], np.int32)
    class_map[36:60, 4:40] = 1
    image = np.full([64, 64, 3], 90, np.uint8)
    image[..., 0] = class_map * 255
    return image, class_map


def test_random_haze_is_the_scattering_model():
    images = np.stack([np.zeros([8, 8, 3]), np.full([8, 8, 3], 255.0)]).astype("float32")
    layer = RandomHaze(0.5, airlight=(200, 200), seed=0)
    out = keras.ops.convert_to_numpy(layer(images))
    amount = out[0, 0, 0, 0] / 200.0          # black pixels become 200 * amount
    assert 0 < amount <= 0.5 and np.allclose(out[0], 200 * amount)
    other = (255.0 - out[1, 0, 0, 0]) / 55.0  # white ones 255 - 55 * amount (own draw)
    assert 0 < other <= 0.5 and not np.isclose(amount, other)
    masks = np.ones([2, 8, 8, 1], "float32")
    result = layer({"images": images, "segmentation_masks": masks})
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(result["segmentation_masks"]), masks)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(images, training=False)), images)
    assert RandomHaze.from_config(layer.get_config()).factor == 0.5
    with pytest.raises(ValueError, match="factor"):
        RandomHaze(1.5)


def test_geometry_moves_the_class_map_with_the_image():
    image, class_map = scene()
    aug = scene_augmentation(seed=1, scale=0.3, shift=0.15, brightness=0, contrast=0)
    moved = 0
    for _ in range(4):
        out_image, _, out_map = apply_augmentation(aug, image, class_map=class_map)
        assert out_map.dtype == np.int32 and set(np.unique(out_map)) <= {0, 1}
        agree = np.mean((out_image[..., 0] > 127) == (out_map == 1))
        assert agree > 0.97, agree
        moved += not np.array_equal(out_map, class_map)
    assert moved >= 3


def test_color_changes_leave_the_class_map_alone():
    image, class_map = scene()
    aug = scene_augmentation(seed=0, flip=False, scale=0, shift=0, brightness=0.3,
                             contrast=0.3, hue=0.1, saturation=0.2, blur=1.0, haze=0.5)
    names = [layer.name for layer in aug.layers]
    assert any("gaussian_blur" in n for n in names) and any("haze" in n for n in names)
    out_image, _, out_map = apply_augmentation(aug, image, class_map=class_map)
    np.testing.assert_array_equal(out_map, class_map)
    assert out_image.dtype == np.uint8 and not np.array_equal(out_image, image)


def test_batch_augmentation_draws_per_image_and_keeps_alignment():
    image, class_map = scene()
    images = np.stack([image] * 4).astype(np.float32)
    maps = np.stack([class_map] * 4)
    aug = scene_augmentation(seed=3, scale=0.3, shift=0.15, brightness=0, contrast=0)
    out_images, out_maps = apply_batch_augmentation(aug, images, maps)
    assert out_images.shape == images.shape and out_maps.dtype == maps.dtype
    assert len({out_maps[i].tobytes() for i in range(4)}) >= 3   # each image its own draw
    for i in range(4):
        assert np.mean((out_images[i, ..., 0] > 127) == (out_maps[i] == 1)) > 0.97
    with pytest.raises(TypeError, match="Keras layers"):
        apply_batch_augmentation(lambda image, mask: {"image": image}, images, maps)
