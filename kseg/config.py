"""The shared configuration of every kseg model.

A `Config` holds UPPER_CASE attributes with Matterport's names and semantics, so a
Matterport sample's `class BalloonConfig(Config)` ports by changing its import.
Subclass it and override attributes; derived values are computed once in
`__init__`, and `validate()` rejects settings that cannot work, naming the
attribute and what is allowed.

    class ShapesConfig(kseg.MaskRCNNConfig):
        NAME = "shapes"
        NUM_CLASSES = 1 + 3
        IMAGE_MIN_DIM = IMAGE_MAX_DIM = 128

Model-specific fields live in `FCNConfig`, `UNetConfig` and `MaskRCNNConfig`.
"""

import json
import math

import numpy as np

RESIZE_MODES = ("square", "pad64", "crop", "none")
DISTRIBUTIONS = (None, "mirrored", "multi_worker")
PRECISIONS = (None, "float32", "mixed_float16", "mixed_bfloat16")


class ConfigError(ValueError):
    """A configuration attribute has a value that cannot work."""


class Config:
    """Base configuration shared by FCN, U-Net and Mask R-CNN."""

    # Name of the configuration; used in log directory names.
    NAME = None
    # Number of replicas (GPUs), Matterport's meaning: more than 1 needs DISTRIBUTION.
    # Under "multi_worker" it counts the replicas of the whole cluster.
    GPU_COUNT = 1
    # Images per replica in one step. BATCH_SIZE = IMAGES_PER_GPU * GPU_COUNT (global batch).
    IMAGES_PER_GPU = 2
    # Several devices (see kseg/distribute.py): None (one device), "mirrored" (GPU_COUNT
    # devices of this machine: tf.distribute.MirroredStrategy on TensorFlow,
    # keras.distribution.DataParallel on JAX) or "multi_worker" (TensorFlow's
    # MultiWorkerMirroredStrategy over the TF_CONFIG cluster).
    DISTRIBUTION = None
    # Trained BatchNorm layers use global-batch statistics under DISTRIBUTION (TensorFlow:
    # synchronized BatchNorm; JAX's DataParallel always does). False: per-replica statistics.
    SYNC_BATCHNORM = True
    # Keras dtype policy: None (float32), "mixed_float16" (GPUs; dynamic loss scaling) or
    # "mixed_bfloat16" (TPUs, recent GPUs and CPUs). Losses, NMS, box decoding and RoIAlign
    # sampling stay float32.
    MIXED_PRECISION = None
    # Training steps per epoch and validation steps at the end of each epoch.
    STEPS_PER_EPOCH = 1000
    VALIDATION_STEPS = 50
    # Number of classes including background (class 0).
    NUM_CLASSES = 1
    # Input resizing: "square" (resize then pad to IMAGE_MAX_DIM square),
    # "pad64" (pad to a multiple of 64, no scaling unless IMAGE_MIN_DIM/SCALE),
    # "crop" (random IMAGE_MIN_DIM crops when training), "none".
    IMAGE_RESIZE_MODE = "square"
    IMAGE_MIN_DIM = 800
    IMAGE_MAX_DIM = 1024
    # Minimum up-scaling ratio, checked after IMAGE_MIN_DIM. 0 disables it.
    IMAGE_MIN_SCALE = 0
    # Number of color channels per image (RGB = 3).
    IMAGE_CHANNEL_COUNT = 3
    # Mean pixel (RGB) subtracted from images.
    MEAN_PIXEL = np.array([123.7, 116.8, 103.9])
    # Optimizer: SGD with momentum as in Matterport, or "adam"/"adamw".
    OPTIMIZER = "sgd"
    LEARNING_RATE = 0.001
    LEARNING_MOMENTUM = 0.9
    # Weight decay, applied once to every variable but BatchNorm gamma/beta: Mask R-CNN
    # with SGD/Adam adds Matterport's L2 term to the loss; AdamW and FCN/U-Net decay in
    # the optimizer (`kseg.models.optimizers.make_optimizer`).
    WEIGHT_DECAY = 0.0001
    # Gradient norm clipping.
    GRADIENT_CLIP_NORM = 5.0
    # Train or freeze batch normalization layers (None: train, False: freeze).
    TRAIN_BN = False
    # Random seed for data order and augmentation; None for nondeterministic.
    SEED = None
    # XLA: True compiles the train and predict steps with XLA (TensorFlow; JAX always jits),
    # False runs a graph function without XLA, None leaves it to Keras ("auto").
    JIT_COMPILE = False
    # A NaN / Inf training loss: "stop" (raise, naming the loss, step and images) or "skip"
    # (undo the step, count it, warn; costs a copy of the weights per step).
    NONFINITE_LOSS = "stop"

    def __init__(self, **overrides):
        for key, value in overrides.items():
            if not key.isupper():
                raise ConfigError(
                    f"Config attribute {key!r} must be UPPER_CASE like Matterport's "
                    f"(e.g. NUM_CLASSES)."
                )
            setattr(self, key, value)
        self.check_types()
        self.MEAN_PIXEL = np.asarray(self.MEAN_PIXEL, dtype=np.float32)
        self._compute_derived()
        self.validate()

    # === Derived values ===
    def _compute_derived(self):
        self.BATCH_SIZE = self.IMAGES_PER_GPU * self.GPU_COUNT
        channels = self.IMAGE_CHANNEL_COUNT
        if self.IMAGE_RESIZE_MODE == "crop":
            self.IMAGE_SHAPE = np.array([self.IMAGE_MIN_DIM, self.IMAGE_MIN_DIM, channels])
        else:
            self.IMAGE_SHAPE = np.array([self.IMAGE_MAX_DIM, self.IMAGE_MAX_DIM, channels])
        # Image meta: id, original shape (3), molded shape (3), window (4),
        # scale (1), active class ids (NUM_CLASSES).
        self.IMAGE_META_SIZE = 1 + 3 + 3 + 4 + 1 + self.NUM_CLASSES

    # === Validation ===
    def check_types(self):
        """Raise `ConfigError` naming the attribute, its value and the expected type when an
        attribute has the wrong type (e.g. NUM_CLASSES = "3"); see `kseg.config_types`."""
        from kseg.config_types import type_problem

        for key in sorted(k for k in dir(self) if k.isupper() and not k.startswith("_")):
            problem = type_problem(type(self), key, getattr(self, key))
            if problem:
                value = getattr(self, key)
                raise ConfigError(f"{type(self).__name__}.{key} = {value!r} "
                                  f"({type(value).__name__}) has the wrong type: expected "
                                  f"{problem}.")

    def validate(self):
        """Raise `ConfigError` naming the attribute when a value cannot work (types first)."""
        self.check_types()
        self._check(isinstance(self.NUM_CLASSES, (int, np.integer)) and self.NUM_CLASSES >= 2,
                    "NUM_CLASSES", "an int >= 2 (background + at least one class)")
        self._check(self.IMAGE_RESIZE_MODE in RESIZE_MODES, "IMAGE_RESIZE_MODE",
                    f"one of {', '.join(RESIZE_MODES)}")
        self._check(_positive_number(self.LEARNING_RATE), "LEARNING_RATE", "a number > 0")
        self._check(_positive_int(self.IMAGES_PER_GPU), "IMAGES_PER_GPU", "an int >= 1")
        self._check(_positive_int(self.GPU_COUNT), "GPU_COUNT", "an int >= 1")
        self._check(self.DISTRIBUTION in DISTRIBUTIONS, "DISTRIBUTION",
                    "None, 'mirrored' or 'multi_worker'")
        self._check(self.GPU_COUNT == 1 or self.DISTRIBUTION is not None, "GPU_COUNT",
                    "1 without DISTRIBUTION (set DISTRIBUTION = 'mirrored' to train on "
                    f"{self.GPU_COUNT} devices of this machine, or 'multi_worker' for a cluster)")
        self._check(self.MIXED_PRECISION in PRECISIONS, "MIXED_PRECISION",
                    "None, 'float32', 'mixed_float16' or 'mixed_bfloat16'")
        self._check(self.JIT_COMPILE in (None, True, False), "JIT_COMPILE",
                    "True (XLA), False or None (Keras' 'auto')")
        self._check(_positive_int(self.STEPS_PER_EPOCH), "STEPS_PER_EPOCH", "an int >= 1")
        self._check(isinstance(self.VALIDATION_STEPS, (int, np.integer))
                    and self.VALIDATION_STEPS >= 0, "VALIDATION_STEPS", "an int >= 0")
        self._check(self.WEIGHT_DECAY >= 0, "WEIGHT_DECAY", "a number >= 0")
        self._check(0 <= self.LEARNING_MOMENTUM < 1, "LEARNING_MOMENTUM", "a number in [0, 1)")
        self._check(self.GRADIENT_CLIP_NORM is None or self.GRADIENT_CLIP_NORM > 0,
                    "GRADIENT_CLIP_NORM", "None or a number > 0")
        self._check(self.NONFINITE_LOSS in ("stop", "skip"), "NONFINITE_LOSS", "stop or skip")
        self._check(self.OPTIMIZER in ("sgd", "adam", "adamw"), "OPTIMIZER",
                    "one of sgd, adam, adamw")
        self._check(self.MEAN_PIXEL.shape == (self.IMAGE_CHANNEL_COUNT,), "MEAN_PIXEL",
                    f"{self.IMAGE_CHANNEL_COUNT} values (one per channel)")
        if self.IMAGE_RESIZE_MODE in ("square", "pad64"):
            self._check(_positive_int(self.IMAGE_MAX_DIM) and self.IMAGE_MAX_DIM % 64 == 0,
                        "IMAGE_MAX_DIM",
                        f"a positive multiple of 64 for IMAGE_RESIZE_MODE="
                        f"{self.IMAGE_RESIZE_MODE!r} (got {self.IMAGE_MAX_DIM}); "
                        f"e.g. {max(64, 64 * round(_as_float(self.IMAGE_MAX_DIM) / 64))}")
        if self.IMAGE_RESIZE_MODE == "crop":
            self._check(_positive_int(self.IMAGE_MIN_DIM) and self.IMAGE_MIN_DIM % 64 == 0,
                        "IMAGE_MIN_DIM", "a positive multiple of 64 for IMAGE_RESIZE_MODE='crop'")
        if self.IMAGE_MIN_DIM and self.IMAGE_MAX_DIM:
            self._check(self.IMAGE_MIN_DIM <= self.IMAGE_MAX_DIM, "IMAGE_MIN_DIM",
                        f"<= IMAGE_MAX_DIM ({self.IMAGE_MAX_DIM})")

    def _check(self, ok, name, expected):
        if not ok:
            raise ConfigError(
                f"{type(self).__name__}.{name} = {getattr(self, name)!r} is invalid: "
                f"expected {expected}."
            )

    # === Display and serialization ===
    def to_dict(self):
        """All UPPER_CASE attributes (derived ones included) as plain Python values."""
        out = {}
        for key in sorted(dir(self)):
            if key.isupper() and not key.startswith("_"):
                value = getattr(self, key)
                if callable(value):
                    value = getattr(value, "__name__", repr(value))
                out[key] = _to_plain(value)
        return out

    @classmethod
    def from_dict(cls, values):
        """Build a config from `to_dict()` output; derived values are recomputed."""
        derived = {"BATCH_SIZE", "IMAGE_SHAPE", "IMAGE_META_SIZE"} | set(cls._DERIVED)
        derived |= {"MODEL", "PRESET"}  # what `write_run_config` adds to a run's config.json
        return cls(**{k: v for k, v in values.items() if k not in derived})

    _DERIVED = ()

    def to_json(self, path=None):
        """The JSON text; with `path`, also written there atomically (and the path returned)."""
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True)
        if path is not None:
            from kseg.utils.io import atomic_write_text

            return atomic_write_text(path, text)
        return text

    @classmethod
    def from_json(cls, text_or_path):
        text = text_or_path
        if not str(text_or_path).lstrip().startswith("{"):
            with open(text_or_path, encoding="utf-8") as f:
                text = f.read()
        return cls.from_dict(json.loads(text))

    def display(self):
        """Print every attribute, Matterport style."""
        print("\nConfigurations:")
        for key, value in self.to_dict().items():
            print(f"{key:30} {value}")
        print("\n")

    def __repr__(self):
        return f"{type(self).__name__}(NAME={self.NAME!r}, NUM_CLASSES={self.NUM_CLASSES})"


class SemanticConfig(Config):
    """Fields shared by the semantic models (FCN, U-Net)."""

    IMAGE_RESIZE_MODE = "square"
    IMAGE_MIN_DIM = 256
    IMAGE_MAX_DIM = 256
    IMAGES_PER_GPU = 4
    STEPS_PER_EPOCH = 100
    VALIDATION_STEPS = 10
    OPTIMIZER = "adam"
    LEARNING_RATE = 1e-3
    WEIGHT_DECAY = 0.0
    GRADIENT_CLIP_NORM = None
    TRAIN_BN = True
    # Encoder backbone name and weights ("imagenet", a path, or None).
    BACKBONE = "vgg16"
    ENCODER_WEIGHTS = None
    ENCODER_FREEZE = False
    # Encoder filter multiplier (1.0 = published widths; ImageNet weights need 1.0).
    ENCODER_WIDTH = 1.0
    # "logits", "softmax" or "sigmoid" (sigmoid needs NUM_CLASSES == 2 -> 1 channel).
    OUTPUT_ACTIVATION = "softmax"
    # Loss: "ce", "dice", "focal", "lovasz_hinge" (binary), or sums like "ce+dice".
    # CLASS_WEIGHTS: None or list.
    LOSS = "ce"
    CLASS_WEIGHTS = None
    # Class index ignored by loss and metrics (None: none).
    IGNORE_INDEX = None
    # Class names including "BG" (for tables and overlays; None: class_0, class_1, ...).
    CLASS_NAMES = None
    # Focal loss focusing parameter (used when LOSS contains "focal").
    FOCAL_GAMMA = 2.0
    # Learning-rate schedule: "plateau" (ReduceLROnPlateau), "cosine" or None.
    LR_SCHEDULE = "plateau"
    # Stop after this many epochs without val_loss improvement (None: never).
    EARLY_STOPPING_PATIENCE = None
    # None: Keras' "auto" (XLA on a GPU without tf.distribute); True / False force it.
    JIT_COMPILE = None

    def validate(self):
        super().validate()
        self._check(self.OUTPUT_ACTIVATION in ("logits", "softmax", "sigmoid"),
                    "OUTPUT_ACTIVATION", "one of logits, softmax, sigmoid")
        self._check(self.OUTPUT_ACTIVATION != "sigmoid" or self.NUM_CLASSES == 2,
                    "OUTPUT_ACTIVATION", "'sigmoid' only with NUM_CLASSES == 2")
        self._check(self.CLASS_WEIGHTS is None or len(self.CLASS_WEIGHTS) == self.NUM_CLASSES,
                    "CLASS_WEIGHTS", f"None or {self.NUM_CLASSES} numbers (one per class)")
        parts = str(self.LOSS).split("+")
        self._check(all(p.strip() in ("ce", "dice", "focal", "lovasz_hinge") for p in parts),
                    "LOSS", "ce, dice, focal, lovasz_hinge or a sum such as 'ce+dice'")
        self._check(self.LR_SCHEDULE in (None, "plateau", "cosine"), "LR_SCHEDULE",
                    "None, plateau or cosine")
        self._check(_positive_number(self.ENCODER_WIDTH), "ENCODER_WIDTH", "a number > 0")


class FCNConfig(SemanticConfig):
    """FCN (Long et al.) settings."""

    NAME = "fcn"
    # "fcn32s", "fcn16s" or "fcn8s".
    FCN_VARIANT = "fcn8s"
    IMAGE_MIN_DIM = 512
    IMAGE_MAX_DIM = 512
    IMAGES_PER_GPU = 1
    # fc6 (7x7) / fc7 (1x1) width (None: 4096 for vgg16, no fc6/fc7 for resnet50) and
    # their dropout rate.
    FCN_FC_FILTERS = None
    FCN_DROPOUT = 0.5
    # Append (y, x) position channels to pool5 before fc6 (`CoordChannels`): a position prior.
    FCN_COORD_CHANNELS = False
    # 32; 16 or 8 dilate a ResNet encoder's last stages instead of striding (torchvision's
    # fcn_resnet50 is 8): the same weights, finer scores, more work.
    FCN_OUTPUT_STRIDE = 32
    # fc6's kernel size (Long's 7; torchvision's FCN head is 3).
    FCN_FC_KERNEL_SIZE = 7

    def validate(self):
        super().validate()
        self._check(self.FCN_VARIANT in ("fcn32s", "fcn16s", "fcn8s"), "FCN_VARIANT",
                    "one of fcn32s, fcn16s, fcn8s")
        self._check(self.BACKBONE in ("vgg16", "resnet18", "resnet34", "resnet50", "resnet101"),
                    "BACKBONE", "vgg16, resnet18, resnet34, resnet50 or resnet101")
        self._check(self.FCN_OUTPUT_STRIDE in (8, 16, 32), "FCN_OUTPUT_STRIDE", "8, 16 or 32")
        self._check(self.FCN_OUTPUT_STRIDE == 32 or str(self.BACKBONE).startswith("resnet"),
                    "FCN_OUTPUT_STRIDE", "32 for the vgg16 backbone (only ResNets dilate)")
        self._check(_positive_int(self.FCN_FC_KERNEL_SIZE), "FCN_FC_KERNEL_SIZE", "an int >= 1")


class UNetConfig(SemanticConfig):
    """U-Net (Ronneberger et al.) settings."""

    NAME = "unet"
    BACKBONE = None  # None: the paper's plain encoder; or vgg16, resnet18/34/50/101.
    # Number of down-sampling steps and filters of the first level (doubled per level).
    UNET_DEPTH = 4
    UNET_BASE_FILTERS = 64
    # "same" (default) or "valid" (the paper's variant with cropped skips).
    UNET_PADDING = "same"
    UNET_BATCHNORM = True
    # Dropout rate at the bottleneck (0 disables it).
    UNET_DROPOUT = 0.0
    # Binary models (NUM_CLASSES == 2): the untrained model's foreground probability (set
    # through the classifier bias); None: zero bias (p = 0.5).
    UNET_FOREGROUND_PRIOR = None

    def validate(self):
        super().validate()
        self._check(_positive_int(self.UNET_DEPTH), "UNET_DEPTH", "an int >= 1")
        self._check(_positive_int(self.UNET_BASE_FILTERS), "UNET_BASE_FILTERS", "an int >= 1")
        self._check(self.UNET_PADDING in ("same", "valid"), "UNET_PADDING", "same or valid")
        self._check(self.BACKBONE in (None, "vgg16", "resnet18", "resnet34", "resnet50",
                                      "resnet101"), "BACKBONE",
                    "None, vgg16, resnet18, resnet34, resnet50 or resnet101")
        prior = self.UNET_FOREGROUND_PRIOR
        self._check(prior is None or (self.NUM_CLASSES == 2 and _positive_number(prior)
                                      and prior < 1), "UNET_FOREGROUND_PRIOR",
                    "None, or a probability in (0, 1) with NUM_CLASSES == 2")


def _positive_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


def _positive_number(value):
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool) \
        and math.isfinite(value) and value > 0


def _as_float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return 64.0


def _to_plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return [_to_plain(v) for v in value]
    if isinstance(value, list):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    return value
