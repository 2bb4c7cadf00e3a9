"""Small layers and an initializer shared by the semantic models (FCN, U-Net).

All are registered with `keras.saving.register_keras_serializable(package="kseg")`
and written with `keras.ops`, so a `.keras` file loads with `safe_mode=True` and
the models run on every backend.

Shape shorthand:
    B: batch, H, W: input height and width, C: channels.
    Conv2DTranspose kernels: [kh, kw, out_channels, in_channels].
"""

import keras
import numpy as np
from keras import ops

# ImageNet statistics on the 0..255 scale (RGB).
IMAGENET_MEAN_RGB = (123.675, 116.28, 103.53)
IMAGENET_STD_RGB = (58.395, 57.12, 57.375)
# Keras-applications "caffe" preprocessing (VGG16, ResNet50): BGR, mean subtracted.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def bilinear_kernel(size):
    """The 1-D bilinear upsampling filter of Long et al.'s `surgery.upsample_filt`, [size]."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    positions = np.arange(size, dtype=np.float64)
    return 1.0 - np.abs(positions - center) / factor


@keras.saving.register_keras_serializable(package="kseg")
class BilinearUpsampling(keras.initializers.Initializer):
    """Initializer of a Conv2DTranspose kernel to channel-wise bilinear interpolation.

    For stride f use kernel size 2f - f % 2 with padding="same": output pixel centres
    then fall where bilinear (half-pixel, align_corners=False) resizing puts them.

    Kernel shape [kh, kw, out_channels, in_channels]; channel i maps to channel i
    only (out_channels must equal in_channels).
    """

    def __call__(self, shape, dtype=None):
        kh, kw, out_channels, in_channels = shape
        if out_channels != in_channels:
            raise ValueError(
                f"BilinearUpsampling needs as many filters as input channels, got kernel "
                f"shape {tuple(shape)}; use Conv2DTranspose(filters=input channels).")
        filt = np.outer(bilinear_kernel(kh), bilinear_kernel(kw))
        weights = np.zeros(shape, dtype=np.float32)
        for channel in range(out_channels):
            weights[:, :, channel, channel] = filt
        return ops.convert_to_tensor(weights, dtype=dtype or "float32")

    def get_config(self):
        return {}


@keras.saving.register_keras_serializable(package="kseg")
class InputNormalization(keras.layers.Layer):
    """Raw RGB 0..255 [B, H, W, 3] -> normalized [B, H, W, 3] float.

    `(x[..., ::-1] if channel_order == "bgr" else x) - mean) / std`, mean and std given
    in the OUTPUT channel order. `InputNormalization.for_mode("caffe")` matches the
    Keras-applications ImageNet weights of VGG16 / ResNet50; "standard" is the RGB
    ImageNet mean / std (for training from scratch).
    """

    def __init__(self, mean, std=(1.0, 1.0, 1.0), channel_order="rgb", **kwargs):
        super().__init__(**kwargs)
        if channel_order not in ("rgb", "bgr"):
            raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
        self.mean = [float(v) for v in mean]
        self.std = [float(v) for v in std]
        self.channel_order = channel_order

    @classmethod
    def for_mode(cls, mode, **kwargs):
        """"caffe" (BGR, mean subtracted), "standard" (RGB mean/std), "scale" (x / 255)."""
        if mode == "caffe":
            return cls(CAFFE_MEAN_BGR, channel_order="bgr", **kwargs)
        if mode == "standard":
            return cls(IMAGENET_MEAN_RGB, IMAGENET_STD_RGB, **kwargs)
        if mode == "scale":
            return cls((0.0, 0.0, 0.0), (255.0, 255.0, 255.0), **kwargs)
        raise ValueError(f"normalization mode must be caffe, standard or scale, got {mode!r}")

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.channel_order == "bgr":
            x = ops.flip(x, axis=-1)
        mean = ops.convert_to_tensor(self.mean, dtype=x.dtype)
        std = ops.convert_to_tensor(self.std, dtype=x.dtype)
        return (x - mean) / std

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(mean=self.mean, std=self.std, channel_order=self.channel_order)
        return config


@keras.saving.register_keras_serializable(package="kseg")
class PadToMultiple(keras.layers.Layer):
    """Zero-pad [B, H, W, C] at the bottom/right to [B, H', W', C], H' and W' multiples of
    `multiple` (a no-op when they already are). Undo with `CropToMatch`."""

    def __init__(self, multiple, **kwargs):
        super().__init__(**kwargs)
        self.multiple = int(multiple)

    def call(self, inputs):
        shape = ops.shape(inputs)
        pad_h = (self.multiple - shape[1] % self.multiple) % self.multiple
        pad_w = (self.multiple - shape[2] % self.multiple) % self.multiple
        return ops.pad(inputs, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]])

    def compute_output_shape(self, input_shape):
        def up(size):
            return None if size is None else -(-size // self.multiple) * self.multiple

        return (input_shape[0], up(input_shape[1]), up(input_shape[2]), input_shape[3])

    def get_config(self):
        config = super().get_config()
        config.update(multiple=self.multiple)
        return config


@keras.saving.register_keras_serializable(package="kseg")
class CropToMatch(keras.layers.Layer):
    """[x, reference] -> x[:, :H_ref, :W_ref]: crops x [B, H, W, C] (H >= H_ref, W >= W_ref)
    at the top-left to the height and width of reference [B, H_ref, W_ref, *]."""

    def call(self, inputs):
        x, reference = inputs
        ref_shape = ops.shape(reference)
        return x[:, : ref_shape[1], : ref_shape[2], :]

    def compute_output_shape(self, input_shapes):
        x_shape, ref_shape = input_shapes
        return (x_shape[0], ref_shape[1], ref_shape[2], x_shape[3])


@keras.saving.register_keras_serializable(package="kseg")
class CoordChannels(keras.layers.Layer):
    """Append the pixel's position: [B, H, W, C] -> [B, H, W, C + 2], channels (y, x)
    running from -1 (top / left) to 1 (bottom / right) over the feature map; a cheap
    position prior (CoordConv, Liu et al. 2018), e.g. "road is at the bottom"."""

    def call(self, inputs):
        shape = ops.shape(inputs)
        height, width = shape[1], shape[2]
        ys = ops.linspace(-1.0, 1.0, height)
        xs = ops.linspace(-1.0, 1.0, width)
        grid_y = ops.broadcast_to(ops.reshape(ys, (1, -1, 1, 1)), (shape[0], height, width, 1))
        grid_x = ops.broadcast_to(ops.reshape(xs, (1, 1, -1, 1)), (shape[0], height, width, 1))
        coords = ops.cast(ops.concatenate([grid_y, grid_x], axis=-1), inputs.dtype)
        return ops.concatenate([inputs, coords], axis=-1)

    def compute_output_shape(self, input_shape):
        channels = None if input_shape[-1] is None else input_shape[-1] + 2
        return (*input_shape[:-1], channels)


def output_activation_layer(activation, name="output"):
    """The model's last layer for "softmax", "sigmoid" or "logits" (linear), float32."""
    if activation not in ("softmax", "sigmoid", "logits"):
        raise ValueError(f"output_activation must be softmax, sigmoid or logits, "
                         f"got {activation!r}")
    keras_name = "linear" if activation == "logits" else activation
    return keras.layers.Activation(keras_name, dtype="float32", name=name)


def output_channels(num_classes, activation):
    """Channels of the score maps: 1 for a sigmoid (or 1-channel logit) binary model."""
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2 (background + classes), got {num_classes}")
    if activation == "sigmoid":
        if num_classes != 2:
            raise ValueError("output_activation='sigmoid' needs num_classes == 2 "
                             f"(background + one class), got {num_classes}")
        return 1
    return num_classes
