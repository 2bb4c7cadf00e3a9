"""Train options shared by every model: devices, precision, XLA (see `kseg.distribute`).

    kseg train unet ... --strategy mirrored --gpus 2 --precision mixed_float16 --xla
"""


def add_scaling_arguments(parser):
    group = parser.add_argument_group("scale out")
    group.add_argument("--strategy", choices=("none", "mirrored", "multi_worker"),
                       default=None, help="DISTRIBUTION: mirrored (the GPUs of this machine) "
                       "or multi_worker (the TF_CONFIG cluster)")
    group.add_argument("--gpus", type=int, default=None,
                       help="GPU_COUNT: replicas (default: 1, or 2 with --strategy mirrored "
                       "when not given); the batch options count images per replica")
    group.add_argument("--precision", default=None,
                       choices=("float32", "mixed_float16", "mixed_bfloat16"),
                       help="MIXED_PRECISION")
    group.add_argument("--xla", action="store_true", help="JIT_COMPILE=True")


def scaling_overrides(args):
    """Config values for the scale-out options that were given."""
    out = {}
    strategy = getattr(args, "strategy", None)
    if strategy:
        out["DISTRIBUTION"] = None if strategy == "none" else strategy
    if getattr(args, "gpus", None):
        out["GPU_COUNT"] = args.gpus
    elif strategy == "mirrored":
        out["GPU_COUNT"] = _local_gpus() or 1
    if getattr(args, "precision", None):
        out["MIXED_PRECISION"] = None if args.precision == "float32" else args.precision
    if getattr(args, "xla", False):
        out["JIT_COMPILE"] = True
    return out


def _local_gpus():
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return len(tf.config.list_physical_devices("GPU"))
    if keras.backend.backend() == "jax":
        import jax

        return len(jax.devices())
    return 0
