"""Load Keras-2 HDF5 weight files (Matterport's ``mask_rcnn_coco.h5``) into Keras 3 models.

File layout read here (Keras 2 ``save_weights``; a full ``model.save`` nests it in ``/model_weights``):

    /                          attrs layer_names = every layer, bytes or str (or layer_names0..N)
    /<layer>/                  attrs weight_names, e.g. [b"conv1/kernel:0", b"conv1/bias:0"] (may be empty)
    /<layer>/<weight_name>     dataset, e.g. /conv1/conv1/kernel:0, /rpn_model/rpn_conv_shared/kernel:0

Matching: an h5 group goes to the top-level layer of ``model`` with the same name (else to a unique
nested layer of that name). Inside a group, each array goes to the variable whose owner layer and
variable name match the end of its weight name (``rpn_conv_shared/kernel:0`` ->
``rpn_model``'s ``rpn_conv_shared`` kernel; ``mrcnn_class_conv1/kernel:0`` -> the kernel of the
layer wrapped by ``TimeDistributed(name="mrcnn_class_conv1")``), so freezing inner layers before
loading is harmless. When names cannot be matched, Keras 2's order is used: ``trainable_weights +
non_trainable_weights`` (Conv/Dense: kernel, bias; BatchNorm: gamma, beta, moving_mean,
moving_variance). Nothing is assigned unless the whole file validates.
"""

from __future__ import annotations

import dataclasses
import os
import re

import h5py
import numpy as np

__all__ = ["LoadReport", "load_weights_by_name", "read_weight_groups", "read_string_list",
           "rename_groups"]


@dataclasses.dataclass
class LoadReport:
    """What `load_weights_by_name` did.

    Attributes:
        path: the weights file.
        loaded: names of model layers that received weights.
        skipped: model layer name -> reason ("excluded", "not in file", "shape mismatch: ...").
        missing_in_model: h5 groups holding weights that match no layer of the model.
        num_arrays: number of arrays assigned.
    """

    path: str = ""
    loaded: list = dataclasses.field(default_factory=list)
    skipped: dict = dataclasses.field(default_factory=dict)
    missing_in_model: list = dataclasses.field(default_factory=list)
    num_arrays: int = 0

    def summary(self):
        """A short multi-line summary (printed by ``verbose=1``)."""
        lines = [f"Loaded {self.num_arrays} arrays into {len(self.loaded)} layers "
                 f"from {self.path}"]
        by_reason = {}
        for name, reason in self.skipped.items():
            by_reason.setdefault(reason.split(":")[0], []).append(name)
        for reason, names in by_reason.items():
            lines.append(f"  skipped ({reason}): {_short_list(names)}")
        if self.missing_in_model:
            lines.append(f"  in file, not in model: {_short_list(self.missing_in_model)}")
        return "\n".join(lines)

    def __str__(self):
        rows = [(name, "loaded") for name in self.loaded]
        rows += [(name, f"skipped: {reason}") for name, reason in self.skipped.items()]
        rows += [(name, "in file, not in model") for name in self.missing_in_model]
        width = max([len(name) for name, _ in rows] + [5])
        lines = [f"{'layer':<{width}}  status", f"{'-' * width}  ------"]
        lines += [f"{name:<{width}}  {status}" for name, status in rows]
        lines.append(f"{self.num_arrays} arrays loaded from {self.path}")
        return "\n".join(lines)


def _short_list(names, limit=8):
    """``a, b, c`` or ``a, b, ... (+N more)``."""
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... (+{len(names) - limit} more)"


# === Reading the file ===


def _decode(value):
    """bytes / numpy bytes -> str; str unchanged (h5py 3 returns vlen strings as str)."""
    return value.decode("utf8") if isinstance(value, (bytes, np.bytes_)) else str(value)


def read_string_list(attrs, name):
    """Read a string-list attribute, also when Keras split it into ``name0``, ``name1``, ..."""
    if name in attrs:
        values = [attrs[name]]
    else:
        values = []
        while f"{name}{len(values)}" in attrs:
            values.append(attrs[f"{name}{len(values)}"])
    items = []
    for value in values:
        array = np.asarray(value)
        if array.size:
            items += [_decode(item) for item in array.reshape(-1)]
    return items


def _weights_root(h5file, path):
    """The group holding ``layer_names``: the root, or ``/model_weights`` of a full-model save."""
    for group in (h5file, h5file.get("model_weights")):
        if group is not None and ("layer_names" in group.attrs or "layer_names0" in group.attrs):
            return group
    raise ValueError(
        f"{path} is not a Keras 2 HDF5 weights file (no 'layer_names' attribute at the root or "
        "in /model_weights). A Keras 3 '.weights.h5' file loads with model.load_weights(path).")


def read_weight_groups(path):
    """Read a Keras 2 HDF5 weights file.

    Returns:
        ``{group_name: [(weight_name, np.ndarray), ...]}`` in the file's layer order, for the
        groups that hold weights (weightless layers are left out).
    """
    groups = {}
    with h5py.File(os.fspath(path), "r") as h5file:
        root = _weights_root(h5file, path)
        for name in read_string_list(root.attrs, "layer_names"):
            group = root.get(name)
            if group is None:
                continue
            weight_names = read_string_list(group.attrs, "weight_names")
            if weight_names:
                groups[name] = [(weight, np.asarray(group[weight])) for weight in weight_names]
    return groups


# === Matching file arrays to model variables ===


def _children(layer):
    """Layers directly inside `layer`: a Model's layers, a wrapper's wrapped layer."""
    children = list(getattr(layer, "layers", None) or [])
    inner = getattr(layer, "layer", None)
    if inner is not None and hasattr(inner, "weights"):
        children.append(inner)
    return children


def _variable_owners(layer):
    """``id(variable) -> set of names`` of `layer` and the nested layers holding the variable."""
    owners = {}

    def visit(sublayer, chain):
        chain = chain + (sublayer.name,)
        for variable in sublayer.weights:
            owners.setdefault(id(variable), set()).update(chain)
        for child in _children(sublayer):
            visit(child, chain)

    visit(layer, ())
    for variable in layer.weights:
        owners.setdefault(id(variable), set()).update(str(variable.path).split("/")[:-1])
    return owners


def legacy_weights(layer):
    """Keras 2's weight order of a layer: ``trainable_weights + non_trainable_weights``."""
    ordered, seen = [], set()
    for variable in list(layer.trainable_weights) + list(layer.non_trainable_weights):
        if id(variable) not in seen:
            seen.add(id(variable))
            ordered.append(variable)
    return ordered


def _short_name(variable):
    """``kernel`` for a variable with path ``mrcnn_class_conv1/conv2d/kernel``."""
    return str(variable.path).split("/")[-1]


def _match_by_name(weight_names, variables, owners):
    """Variables for `weight_names` matched on ``<layer>/<var>``, or None when ambiguous."""
    matched = []
    for weight_name in weight_names:
        parts = weight_name.split(":")[0].split("/")
        candidates = [v for v in variables if _short_name(v) == parts[-1]]
        if len(parts) > 1:
            candidates = [v for v in candidates if parts[-2] in owners[id(v)]]
        if len(candidates) > 1:
            candidates = [v for v in candidates if set(parts[:-1]) <= owners[id(v)]]
        if len(candidates) != 1:
            return None
        matched.append(candidates[0])
    return matched if len({id(v) for v in matched}) == len(matched) else None


def match_group(layer, file_weights):
    """Pair each ``(weight_name, array)`` of an h5 group with a variable of `layer`.

    Returns:
        ``(pairs, problem)``: pairs ``[(variable, array, weight_name)]`` and None, or
        ``(None, message)`` when the counts or shapes disagree.
    """
    variables = legacy_weights(layer)
    if len(variables) != len(file_weights):
        unbuilt = "" if variables else " (is the model built?)"
        return None, (f"layer '{layer.name}': file has {len(file_weights)} arrays, "
                      f"model has {len(variables)} weights{unbuilt}")
    names = [name for name, _ in file_weights]
    matched = _match_by_name(names, variables, _variable_owners(layer)) or variables
    pairs = [(v, array, name) for v, (name, array) in zip(matched, file_weights)]
    for variable, array, _ in pairs:
        if tuple(array.shape) != tuple(variable.shape):
            return None, (f"layer '{layer.name}' weight '{_short_name(variable)}': file has "
                          f"{tuple(array.shape)}, model has {tuple(variable.shape)}")
    return pairs, None


# === Finding layers ===


def _nested_layers(model):
    """``name -> [layers]`` for layers below the top level (through nested Models only)."""
    found = {}

    def visit(layer):
        for child in getattr(layer, "layers", None) or []:
            found.setdefault(child.name, []).append(child)
            visit(child)

    for layer in model.layers:
        visit(layer)
    return found


def _find_layer(name, top_level, nested):
    """The top-level layer called `name`, else the only nested layer of that name, else None."""
    if name in top_level:
        return top_level[name]
    candidates = nested.get(name, [])
    return candidates[0] if len(candidates) == 1 else None


def _is_excluded(name, patterns):
    """True when `name` equals or fully matches one of `patterns` (names or regexes)."""
    for pattern in patterns:
        if name == pattern:
            return True
        try:
            if re.fullmatch(pattern, name):
                return True
        except re.error:
            continue
    return False


# === Loading ===


def _plan(model, groups, exclude, skip_mismatch, report):
    """Decide every assignment; returns ``(assignments, mismatches)``."""
    top_level = {layer.name: layer for layer in model.layers}
    nested = _nested_layers(model)
    assignments, mismatches = [], []
    for group_name, file_weights in groups.items():
        layer = _find_layer(group_name, top_level, nested)
        if layer is None:
            report.missing_in_model.append(group_name)
        elif _is_excluded(layer.name, exclude):
            report.skipped[layer.name] = "excluded"
        else:
            pairs, problem = match_group(layer, file_weights)
            if problem is None:
                assignments.append((layer.name, pairs))
            elif skip_mismatch:
                report.skipped[layer.name] = f"shape mismatch: {problem}"
            else:
                mismatches.append((layer.name, problem))
    return assignments, mismatches


def _mismatch_error(mismatches):
    """The ValueError for shape mismatches, naming the layers to exclude."""
    names = ", ".join(repr(name) for name, _ in mismatches)
    hint = (f"pass exclude=[{names}, ...] to fine-tune with another NUM_CLASSES "
            "(or skip_mismatch=True to skip them)")
    if len(mismatches) == 1:
        return ValueError(f"{mismatches[0][1]}; {hint}")
    details = "\n".join(f"  {problem}" for _, problem in mismatches)
    return ValueError(f"shape mismatch in {len(mismatches)} layers:\n{details}\n{hint}")


def _report_unloaded(model, exclude, assigned_ids, report):
    """Record weighted top-level layers that received nothing."""
    for layer in model.layers:
        if not layer.weights or layer.name in report.skipped or layer.name in report.loaded:
            continue
        if any(id(v) in assigned_ids for v in layer.weights):
            continue
        report.skipped[layer.name] = "excluded" if _is_excluded(layer.name, exclude) else (
            "not in file")


def _assign(assignments, report):
    """Assign every planned array; returns the ids of the assigned variables."""
    assigned_ids = set()
    for layer_name, pairs in assignments:
        for variable, array, _ in pairs:
            variable.assign(np.asarray(array, dtype=variable.dtype))
            assigned_ids.add(id(variable))
        report.loaded.append(layer_name)
        report.num_arrays += len(pairs)
    return assigned_ids


def rename_groups(groups, rename):
    """`groups` with each group renamed by `rename(name)`, and the group's name in front
    of its weight names too (``conv1_conv/kernel:0`` -> ``conv1/kernel:0``)."""
    renamed = {}
    for name, weights in groups.items():
        new = rename(name)
        renamed[new] = [(new + weight[len(name):] if weight.startswith(name + "/") else weight,
                         array) for weight, array in weights]
    return renamed


def load_weights_by_name(model, path, exclude=(), skip_mismatch=False, verbose=1, rename=None):
    """Load a Keras 2 HDF5 weights file (e.g. Matterport's) into `model` by layer name.

    Args:
        model: a Keras 3 model (or an object with a ``keras_model`` attribute).
        path: the ``.h5`` file (weights-only or full-model save).
        exclude: model layer names or regexes not to load, e.g. ``["mrcnn_class_logits",
            "mrcnn_bbox_fc", "mrcnn_bbox", "mrcnn_mask"]`` to fine-tune with another NUM_CLASSES.
        skip_mismatch: skip layers whose shapes differ instead of raising.
        verbose: 0 silent, 1 print a summary, 2 print the full table.
        rename: ``file layer name -> model layer name`` (e.g.
            `kseg.saving.resnet_names.to_matterport_or_same` for Keras' ImageNet ResNet-50).

    Returns:
        A `LoadReport`.

    Raises:
        ValueError: shapes or array counts differ (and `skip_mismatch` is False); the message
            names the layer, the file's shape and the model's shape. Nothing is assigned then:
            every shape is checked before the first assignment.
        WeightsFileError: the path is not an HDF5 file (HTML page, text, zip, empty).
    No code in the file is run (only arrays and name attributes are read).
    """
    if not hasattr(model, "layers") and hasattr(model, "keras_model"):
        model = model.keras_model
    exclude = (exclude,) if isinstance(exclude, str) else tuple(exclude or ())
    path = os.fspath(path)
    from kseg.saving.files import check_weights_file

    check_weights_file(path, expected=("hdf5",))  # names the path and what the file is
    groups = read_weight_groups(path)
    if rename is not None:
        groups = rename_groups(groups, rename)
    report = LoadReport(path=path)
    assignments, mismatches = _plan(model, groups, exclude, skip_mismatch, report)
    if mismatches:
        raise _mismatch_error(mismatches)
    assigned_ids = _assign(assignments, report)
    _report_unloaded(model, exclude, assigned_ids, report)
    if verbose >= 2:
        print(report)
    elif verbose:
        print(report.summary())
    return report
