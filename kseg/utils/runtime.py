"""Runtime switches that depend on the Keras backend."""

import warnings

import keras


def set_run_eagerly(enabled=True):
    """Run compiled functions eagerly (TF) or without jit (JAX).

    A handful of training steps (notebooks in quick mode, smoke tests) finish sooner
    eagerly than after tracing and compiling the whole Mask R-CNN graph. Returns the
    backend name. The PyTorch backend is always eager.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.run_functions_eagerly(bool(enabled))
        warnings.filterwarnings(
            "ignore", message="Even though the `tf.config.experimental_run_functions_eagerly`")
    elif backend == "jax":
        import jax

        jax.config.update("jax_disable_jit", bool(enabled))
    return backend
