"""Scale out: the config's DISTRIBUTION, GPU_COUNT, MIXED_PRECISION, SYNC_BATCHNORM and
JIT_COMPILE turned into engine settings. kseg builds no parallel machinery of its own.

    config = kseg.MaskRCNNConfig(DISTRIBUTION="mirrored", GPU_COUNT=2, IMAGES_PER_GPU=2)
    model = kseg.MaskRCNN("training", config)   # built, compiled and fitted in `scope`

- TensorFlow: "mirrored" is `tf.distribute.MirroredStrategy` over GPU_COUNT local devices
  (GPUs, else logical CPU devices); "multi_worker" is `MultiWorkerMirroredStrategy` over
  the TF_CONFIG cluster, where GPU_COUNT counts the replicas of the whole cluster.
- JAX: "mirrored" is `keras.distribution.DataParallel` over GPU_COUNT devices; the step is
  one program over the global batch, so losses and BatchNorm statistics are global.
- GPU_COUNT is the number of replicas (Matterport's meaning), IMAGES_PER_GPU the batch of
  one replica, BATCH_SIZE = IMAGES_PER_GPU * GPU_COUNT the global batch the pipeline yields.
- Losses are means over the global batch: a replica's loss is its share of the global mean
  (`replica_sum` of the normalizers on TF), so the summed gradients equal one device's.
- BatchNorm: with SYNC_BATCHNORM (default) trained BatchNorm layers use global-batch
  statistics (TF: `synchronized=True`, an all-reduce per layer and step); without it each
  replica normalizes with its own statistics. Frozen BatchNorm (TRAIN_BN=False) uses its
  moving statistics either way.
- Checkpoints, logs and progress bars come from the chief only (`is_chief`).
- MIXED_PRECISION: a Keras dtype policy applied while the model is built; float16 wraps the
  optimizer in `LossScaleOptimizer`. Layers that decode boxes, run NMS, sample RoIAlign
  coordinates or compute losses run in float32.
"""

import contextlib
import json
import os

import keras

from kseg.config import DISTRIBUTIONS, PRECISIONS

_STRATEGIES = {}


class DistributionError(RuntimeError):
    """The machine or cluster does not offer what the config's DISTRIBUTION asks for."""


# === Strategies ===
def _tf_devices(count):
    """The first `count` GPUs, else logical CPU devices (names), or DistributionError."""
    import tensorflow as tf

    for kind in ("GPU", "CPU"):
        devices = [d.name for d in tf.config.list_logical_devices(kind)]
        if kind == "GPU" and not devices:
            continue
        if len(devices) < count:
            raise DistributionError(
                f"GPU_COUNT = {count} replicas but this machine shows {len(devices)} {kind} "
                f"device(s) ({', '.join(devices) or 'none'}); lower GPU_COUNT"
                + (" or split the CPU with tf.config.set_logical_device_configuration"
                   if kind == "CPU" else "") + ".")
        return devices[:count]
    return []


def get_strategy(config):
    """The engine object for config.DISTRIBUTION (cached: one per process and setting).

    TF: a `tf.distribute.Strategy`; JAX: a `keras.distribution.DataParallel`; None when
    DISTRIBUTION is None.
    """
    kind = config.DISTRIBUTION
    if kind is None:
        return None
    backend = keras.backend.backend()
    key = (backend, kind, int(config.GPU_COUNT))
    if key not in _STRATEGIES:
        _STRATEGIES[key] = _new_strategy(backend, kind, int(config.GPU_COUNT))
    return _STRATEGIES[key]


def _new_strategy(backend, kind, count):
    if backend == "tensorflow":
        import tensorflow as tf

        if kind == "mirrored":
            return tf.distribute.MirroredStrategy(devices=_tf_devices(count))
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        if strategy.num_replicas_in_sync != count:
            raise DistributionError(
                f"GPU_COUNT = {count} but the TF_CONFIG cluster has "
                f"{strategy.num_replicas_in_sync} replicas (workers x local devices); "
                f"set GPU_COUNT to the cluster's replica count.")
        return strategy
    if backend == "jax" and kind == "mirrored":
        import jax

        devices = jax.devices()
        if len(devices) < count:
            raise DistributionError(
                f"GPU_COUNT = {count} replicas but JAX shows {len(devices)} device(s); on a "
                f"CPU set XLA_FLAGS=--xla_force_host_platform_device_count={count}.")
        return keras.distribution.DataParallel(devices=devices[:count])
    raise DistributionError(
        f"DISTRIBUTION = {kind!r} is not available on the {backend} backend (TensorFlow: "
        f"mirrored, multi_worker; JAX: mirrored).")


def num_replicas(config):
    """Replicas one training step runs on under the config (1 without DISTRIBUTION)."""
    strategy = get_strategy(config)
    if strategy is None:
        return 1
    if keras.backend.backend() == "jax":
        return int(strategy.device_mesh.devices.size)
    return int(strategy.num_replicas_in_sync)


def replica_count():
    """Replicas the current TF replica context sums over (1 elsewhere)."""
    if keras.backend.backend() != "tensorflow":
        return 1
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    return 1 if context is None else int(context.num_replicas_in_sync)


def replica_sum(value):
    """`value` summed over the replicas of a TF replica context (unchanged elsewhere).

    Loss normalizers go through it so that each replica divides by the global count.
    """
    if replica_count() == 1:
        return value
    import tensorflow as tf

    return tf.distribute.get_replica_context().all_reduce("sum", tf.stop_gradient(value))


# === Scope ===
@contextlib.contextmanager
def precision(config):
    """The config's MIXED_PRECISION as the global Keras dtype policy inside the block."""
    wanted = getattr(config, "MIXED_PRECISION", None) or "float32"
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(wanted)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@contextlib.contextmanager
def scope(config, distribute=True):
    """Build, compile and fit inside this block: the dtype policy and the strategy's scope."""
    strategy = get_strategy(config) if distribute else None
    with precision(config):
        if strategy is None:
            yield None
        else:
            with strategy.scope():
                yield strategy


def fit_scope(config):
    """The block `fit` runs in: the JAX distribution (it shards each batch); nothing on TF,
    where the model keeps its strategy (and callbacks must not create variables in it)."""
    if keras.backend.backend() == "jax" and config.DISTRIBUTION:
        return get_strategy(config).scope()
    return contextlib.nullcontext()


def model_strategy(model):
    """The tf.distribute strategy a Keras model was built under (None elsewhere)."""
    if keras.backend.backend() != "tensorflow":
        return None
    strategy = getattr(model, "_distribute_strategy", None)
    return strategy


def check_model(model, config):
    """Raise when a TF model was not built under the config's strategy."""
    wanted = get_strategy(config)
    if keras.backend.backend() != "tensorflow" or wanted is None:
        return
    if model_strategy(model) is not wanted:
        raise DistributionError(
            f"config.DISTRIBUTION = {config.DISTRIBUTION!r} but the model was built outside "
            f"its strategy: build it with the config's builder (build_fcn / build_unet / "
            f"MaskRCNN) or inside `with kseg.distribute.scope(config):`.")


def prepare_model(model, config):
    """A model built under the config's strategy, made ready for it (TF, DISTRIBUTION set):
    BatchNorm layers get global-batch statistics (SYNC_BATCHNORM), the model builds itself
    from a local batch (`symbolic_build_from_local_batch`), and under multi_worker the
    steps return their logs in the shape Keras can reduce over workers."""
    if keras.backend.backend() != "tensorflow" or not config.DISTRIBUTION:
        return model
    if getattr(config, "SYNC_BATCHNORM", True):
        for layer in model._flatten_layers(include_self=False):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.synchronized = True
    if not hasattr(type(model), "_builds_from_local_batch"):
        model._maybe_symbolic_build = symbolic_build_from_local_batch.__get__(model)
    if config.DISTRIBUTION == "multi_worker":
        # Keras (3.x) reduces each step's logs over the workers with a mean along axis 0,
        # which fails on scalars (tensorflow/tensorflow#72388): the steps return [1] vectors
        # (the metric values are global on every replica, so the mean is the value).
        model.train_step = _vector_logs(model.train_step)
        model.test_step = _vector_logs(model.test_step)
    return model


def _vector_logs(step):
    def step_with_vector_logs(data):
        logs = step(data)
        return {name: keras.ops.reshape(value, (1,)) if len(value.shape) == 0 else value
                for name, value in logs.items()}

    return step_with_vector_logs


def symbolic_build_from_local_batch(model, iterator=None, data_batch=None):
    """Replaces Keras' TF `_maybe_symbolic_build` for distributed models.

    Keras (3.x) averages the first distributed batch over the replicas only to learn its
    shapes, which fails on boolean inputs (MirroredStrategy) and on any batch under
    MultiWorkerMirroredStrategy; this builds from this worker's first local batch.
    """
    import tensorflow as tf

    strategy = model.distribute_strategy
    if iterator is not None:
        for _, _, batches in iterator:
            data_batch = next(batches)
            break
        data_batch = keras.tree.map_structure(
            lambda v: strategy.experimental_local_results(v)[0]
            if isinstance(v, tf.distribute.DistributedValues) else v, data_batch)
    with strategy.scope():
        model._symbolic_build(data_batch=data_batch)


# === Optimizer and compilation ===
class _SummedClipping:
    """Optimizer mixin: under tf.distribute, clip the gradients after they are summed over
    the replicas, as one device clips the gradient of the global batch (Keras clips each
    replica's share before the sum)."""

    def _clip_gradients(self, grads):
        return grads if replica_count() > 1 else super()._clip_gradients(grads)

    def _all_reduce_sum_gradients(self, grads_and_vars):
        grads_and_vars = list(super()._all_reduce_sum_gradients(grads_and_vars))
        if replica_count() == 1:
            return grads_and_vars
        grads = super()._clip_gradients([g for g, _ in grads_and_vars])
        return list(zip(grads, [v for _, v in grads_and_vars]))


_CLIPPING_CLASSES = {}


def _summed_clipping(optimizer):
    base = type(optimizer)
    if base not in _CLIPPING_CLASSES:
        _CLIPPING_CLASSES[base] = type(base.__name__, (_SummedClipping, base), {})
    return _CLIPPING_CLASSES[base].from_config(optimizer.get_config())


def wrap_optimizer(optimizer, config):
    """The config's optimizer made ready for its DISTRIBUTION and MIXED_PRECISION.

    TF with DISTRIBUTION and clipping: clipped after the replica sum (`_SummedClipping`).
    float16: Keras' dynamic `LossScaleOptimizer` (bfloat16 needs no loss scaling).
    """
    clips = optimizer.clipnorm or optimizer.global_clipnorm or optimizer.clipvalue
    if config.DISTRIBUTION and clips and keras.backend.backend() == "tensorflow" \
            and not isinstance(optimizer, _SummedClipping):
        optimizer = _summed_clipping(optimizer)
    if getattr(config, "MIXED_PRECISION", None) == "mixed_float16" and not isinstance(
            optimizer, keras.optimizers.LossScaleOptimizer):
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def jit_compile_setting(jit_compile):
    """Keras' `jit_compile` for the config's JIT_COMPILE on the current backend.

    TensorFlow: True is XLA, False a graph function without XLA, None Keras' "auto" (XLA
    on a GPU without tf.distribute). JAX always jits ("auto"): False would run every op
    eagerly. PyTorch: "auto" is eager unless JIT_COMPILE asks for torch.compile.
    """
    backend = keras.backend.backend()
    if jit_compile is None or backend == "jax":
        return "auto"
    if backend == "tensorflow":
        return bool(jit_compile)
    return True if jit_compile else "auto"


# === Chief ===
def is_chief(config=None):
    """False only on a non-chief worker of a multi_worker cluster (from TF_CONFIG): the
    chief, or worker 0 when the cluster names no chief, writes checkpoints and logs."""
    if config is not None and config.DISTRIBUTION != "multi_worker":
        return True
    tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = tf_config.get("task") or {}
    kind, index = task.get("type"), int(task.get("index", 0))
    if kind is None:
        return True
    has_chief = bool(tf_config.get("cluster", {}).get("chief"))
    return kind == "chief" or (kind == "worker" and index == 0 and not has_chief)


__all__ = ["DISTRIBUTIONS", "PRECISIONS", "DistributionError", "check_model", "get_strategy",
           "is_chief", "jit_compile_setting", "num_replicas", "precision", "replica_count", "replica_sum",
           "fit_scope", "prepare_model", "scope", "symbolic_build_from_local_batch", "wrap_optimizer"]
