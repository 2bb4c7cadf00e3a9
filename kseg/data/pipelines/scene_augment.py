"""Augmentation that matches how outdoor scenes vary, from Keras preprocessing layers.

    aug = scene_augmentation(seed=0, scale=0.25, hue=0.05, blur=0.5)        # road
    aug = scene_augmentation(seed=0, haze=0.4)                              # smoke
    image, _, class_map = apply_augmentation(aug, image, class_map=class_map)

`scene_augmentation` returns a `keras.Sequential` that `apply_augmentation` (and so
`SemanticSequence` / `train_semantic`) calls on `{"images", "segmentation_masks"}`:
geometric layers (flip, zoom, translation) move the masks with nearest interpolation,
color layers (brightness, contrast, hue, saturation, blur, haze) leave them alone.

`RandomHaze` is the one layer Keras lacks: the atmospheric scattering model
`image * t + airlight * (1 - t)` (a veil of bright air over the scene), which lowers
contrast the way distance, fog and thin smoke do.
"""

import keras

__all__ = ["RandomHaze", "scene_augmentation"]


class RandomHaze(keras.layers.Layer):
    """Blend each image toward a bright grey "airlight": `x * t + a * (1 - t)`.

    Args:
        factor: the largest haze amount; `1 - t` is drawn in [0, factor] per image
            (0: off, 1: the image can vanish into the airlight).
        airlight: (low, high) range of the airlight grey level, in `value_range` units.
        value_range: (low, high) of the pixel values (0..255 for kseg pipelines).
        seed: int for reproducible draws, or None.
    Input: images [B, H, W, C] or [H, W, C], or a dict with "images" (other entries, such
    as "segmentation_masks", pass unchanged). Output: the same structure.
    """

    def __init__(self, factor=0.4, airlight=(170.0, 255.0), value_range=(0.0, 255.0),
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= float(factor) <= 1:
            raise ValueError(f"RandomHaze factor={factor!r}: expected a number in [0, 1].")
        self.factor, self.airlight = float(factor), tuple(float(a) for a in airlight)
        self.value_range, self.seed = tuple(float(v) for v in value_range), seed
        self.generator = keras.random.SeedGenerator(seed)

    def _haze(self, images):
        ops = keras.ops
        images = ops.convert_to_tensor(images, self.compute_dtype)
        batched = len(images.shape) == 4
        x = images if batched else images[None]
        shape = (ops.shape(x)[0], 1, 1, 1)
        amount = keras.random.uniform(shape, 0.0, self.factor, seed=self.generator)
        light = keras.random.uniform(shape, self.airlight[0], self.airlight[1],
                                     seed=self.generator)
        out = ops.clip(x * (1.0 - amount) + light * amount, *self.value_range)
        return out if batched else out[0]

    def call(self, inputs, training=True):
        if not training or self.factor == 0:
            return inputs
        if isinstance(inputs, dict):
            return {**inputs, "images": self._haze(inputs["images"])}
        return self._haze(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "airlight": self.airlight,
                "value_range": self.value_range, "seed": self.seed}


def scene_augmentation(seed=None, flip=True, scale=0.2, shift=0.1, brightness=0.2,
                       contrast=0.3, hue=0.0, saturation=0.0, blur=0.0, haze=0.0,
                       name="scene_augmentation"):
    """A `keras.Sequential` of outdoor-scene augmentations; 0 / False leaves a step out.

    Args:
        seed: int for reproducible draws (each layer gets seed + k), or None.
        flip: horizontal flips (a street or a plume is no less one mirrored).
        scale: random scale in [1 - scale, 1 + scale] about the centre (`RandomZoom`;
            zoomed-out borders are filled with 0, label 0, like the molding padding).
        shift: random translation of up to this fraction of height / width (with a
            zoom-in: a random crop).
        brightness: `RandomBrightness` factor (fraction of 255).
        contrast: `RandomContrast` factor (contrast x [1 - c, 1 + c]).
        hue: `RandomHue` factor (0..1); saturation: `RandomSaturation` spread about 0.5.
        blur: `RandomGaussianBlur` factor (0..1), 5x5 kernel, sigma 0.1..1.5.
        haze: `RandomHaze` factor (0..1).
    """
    layers, stack = keras.layers, []

    def s(k):
        return None if seed is None else seed + k

    if flip:
        stack.append(layers.RandomFlip("horizontal", seed=s(0)))
    if scale:
        stack.append(layers.RandomZoom((-scale, scale), fill_mode="constant", seed=s(1)))
    if shift:
        stack.append(layers.RandomTranslation(shift, shift, fill_mode="constant", seed=s(2)))
    if brightness:
        stack.append(layers.RandomBrightness(brightness, value_range=(0, 255), seed=s(3)))
    if contrast:
        stack.append(layers.RandomContrast(contrast, value_range=(0, 255), seed=s(4)))
    if hue:
        stack.append(layers.RandomHue(hue, value_range=(0, 255), seed=s(5)))
    if saturation:
        stack.append(layers.RandomSaturation((0.5 - saturation, 0.5 + saturation),
                                             value_range=(0, 255), seed=s(6)))
    if blur:
        stack.append(layers.RandomGaussianBlur(blur, kernel_size=5, sigma=(0.1, 1.5),
                                               value_range=(0, 255), seed=s(7)))
    if haze:
        stack.append(RandomHaze(haze, seed=s(8)))
    return keras.Sequential(stack, name=name)
