"""Write HDF5 files in exactly Matterport's (Keras 2 ``save_weights``) layout: Mask R-CNN checkpoints
(`kseg.models.mask_rcnn.checkpoints`) and small files for tests.

    write_matterport_fixture("w.h5", [
        ("input_image", []),                                        # weightless: empty weight_names
        ("conv1", [("conv1/kernel:0", k), ("conv1/bias:0", b)]),    # -> /conv1/conv1/kernel:0
        ("rpn_model", [("rpn_conv_shared/kernel:0", k2), ...]),     # nested model: one group
    ])

Root attrs ``layer_names`` (all layers), ``backend``, ``keras_version``; per group
``weight_names``. ``str_attrs=True`` writes variable-length str attrs (as h5py 3 reads them back)
instead of Keras 2's fixed-length bytes; ``full_model=True`` nests everything in
``/model_weights`` as ``model.save`` does; ``split_layer_names=N`` splits ``layer_names`` into
``layer_names0..N-1`` as Keras does for attrs over 64 KB.
"""

from __future__ import annotations

import json

import h5py
import numpy as np

from kseg.saving.legacy_h5 import legacy_weights
from kseg.utils.io import atomic_path

__all__ = ["write_matterport_fixture", "fixture_from_model", "legacy_weight_names"]


def _string_attr(attrs, name, values, str_attrs):
    """Write a list of strings as Keras 2 did (fixed bytes) or as vlen str."""
    if str_attrs and values:
        attrs.create(name, np.array(values, dtype=object), dtype=h5py.string_dtype())
    elif values:
        attrs[name] = np.array([value.encode("utf8") for value in values])
    else:
        attrs[name] = np.array([], dtype="S1")


def _scalar_attr(attrs, name, value, str_attrs):
    """A scalar string attr: str (vlen) or bytes (fixed length, Keras 2 + h5py 2)."""
    attrs[name] = value if str_attrs else np.bytes_(value.encode("utf8"))


def _write_layer_names(root, names, str_attrs, split_layer_names):
    """``layer_names``, or ``layer_names0..N-1`` when `split_layer_names` > 1."""
    if split_layer_names <= 1:
        _string_attr(root.attrs, "layer_names", names, str_attrs)
        return
    for index, chunk in enumerate(np.array_split(np.array(names, dtype=object),
                                                 split_layer_names)):
        _string_attr(root.attrs, f"layer_names{index}", list(chunk), str_attrs)


def _write_root(root, layers, str_attrs, keras_version, backend, split_layer_names):
    """Fill `root` with the layer groups and their attrs."""
    _write_layer_names(root, [name for name, _ in layers], str_attrs, split_layer_names)
    _scalar_attr(root.attrs, "backend", backend, str_attrs)
    _scalar_attr(root.attrs, "keras_version", keras_version, str_attrs)
    for layer_name, weights in layers:
        group = root.create_group(layer_name)
        _string_attr(group.attrs, "weight_names", [name for name, _ in weights], str_attrs)
        for weight_name, array in weights:
            group.create_dataset(weight_name, data=np.asarray(array))


def write_matterport_fixture(path, layers, *, str_attrs=False, full_model=False,
                             split_layer_names=1, keras_version="2.2.4", backend="tensorflow"):
    """Write `layers` to `path` in Keras 2 / Matterport HDF5 layout (atomically).

    Args:
        path: the ``.h5`` file to write.
        layers: ``[(layer_name, [(weight_name, array), ...]), ...]`` in model order; an empty
            weight list gives a weightless layer (listed in ``layer_names``, empty group).
        str_attrs: write str attrs instead of bytes (both occur in the wild).
        full_model: nest the weights in ``/model_weights`` (a ``model.save`` file).
        split_layer_names: number of ``layer_names<i>`` chunks (1 = one ``layer_names`` attr).
        keras_version, backend: the root attrs.

    Returns:
        `path`.
    """
    layers = [(name, list(weights)) for name, weights in layers]
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5file:
        root = h5file
        if full_model:
            _scalar_attr(h5file.attrs, "keras_version", keras_version, str_attrs)
            _scalar_attr(h5file.attrs, "backend", backend, str_attrs)
            h5file.attrs["model_config"] = json.dumps({"class_name": "Model", "config": {}})
            root = h5file.create_group("model_weights")
        _write_root(root, layers, str_attrs, keras_version, backend, split_layer_names)
    return path


def _owner_names(layer):
    """``id(variable) -> name`` of the innermost layer of a nested Model holding it."""
    owners = {}

    def visit(sublayer):
        for child in getattr(sublayer, "layers", None) or []:
            for variable in child.weights:
                owners[id(variable)] = child.name
            visit(child)

    visit(layer)
    return owners


def legacy_weight_names(layer):
    """Keras 2 weight names of `layer`, in legacy order.

    Plain and wrapped layers (TimeDistributed) use the layer's own scope
    (``mrcnn_class_conv1/kernel:0``); a nested Model names each array after its inner layer
    (``rpn_conv_shared/kernel:0``).
    """
    owners = _owner_names(layer) if getattr(layer, "layers", None) else {}
    names = []
    for variable in legacy_weights(layer):
        owner = owners.get(id(variable), layer.name)
        names.append(f"{owner}/{str(variable.path).split('/')[-1]}:0")
    return names


def _random_array(weight_name, shape, rng):
    """Known random values; BatchNorm variances stay positive."""
    if "moving_variance" in weight_name:
        return rng.uniform(0.5, 1.5, size=shape).astype(np.float32)
    return (0.5 * rng.standard_normal(shape)).astype(np.float32)


def fixture_from_model(model, path, rng=None, **kwargs):
    """Write random values for every top-level layer of `model` in Matterport's layout.

    Args:
        model: a built Keras model.
        path: the ``.h5`` file to write.
        rng: a ``numpy.random.Generator`` (default: seed 0).
        **kwargs: passed to `write_matterport_fixture` (``str_attrs``, ``full_model``, ...).

    Returns:
        ``{"<group>/<weight_name>": array}`` in file order; within a group the order is the
        layer's legacy order (``trainable_weights + non_trainable_weights``) at writing time.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    layers, written = [], {}
    for layer in model.layers:
        variables = legacy_weights(layer)
        weights = []
        for name, variable in zip(legacy_weight_names(layer), variables):
            array = _random_array(name, tuple(variable.shape), rng)
            weights.append((name, array))
            written[f"{layer.name}/{name}"] = array
        layers.append((layer.name, weights))
    write_matterport_fixture(path, layers, **kwargs)
    return written
