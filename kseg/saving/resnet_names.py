"""Keras-applications ResNet layer names <-> kseg's (Matterport's), written once.

keras.applications' ResNets, Keras' ImageNet file (resnet50_weights_tf_dim_ordering_tf_
kernels_notop.h5) and kseg 0.1's FCN / U-Net ResNets name layers `conv1_conv`,
`conv1_bn`, `conv2_block1_1_conv`, `conv2_block1_0_bn`, `conv2_block1_out`, ...; kseg's one
ResNet (`kseg.models.backbones.resnet`) uses Matterport's `conv1`, `bn_conv1`,
`res2a_branch2a`, `bn2a_branch1`, `res2a_out`:

    to_matterport("conv3_block4_2_bn")   # "bn3d_branch2b"
    to_keras("bn3d_branch2b")            # "conv3_block4_2_bn"
    load_weights_by_name(model, "resnet50_..._notop.h5", rename=to_matterport_or_same)

Keras 3 `.weights.h5` checkpoints and `.keras` model files need no conversion: they key
layers by class and position, not by name (a `.keras` file also rebuilds its own graph),
and the one ResNet keeps the graph order of kseg 0.1's (tests/saving/test_old_resnet_runs.py).

May import: the standard library.
"""

import re

__all__ = ["renamer_for", "to_keras", "to_matterport", "to_matterport_or_same",
           "uses_keras_names"]

# Keras-applications sub-layer index -> Matterport branch: 0 projection, 1..3 main convs.
_BRANCH = {"0": "1", "1": "2a", "2": "2b", "3": "2c"}
_KERAS_INDEX = {branch: index for index, branch in _BRANCH.items()}
_STEM = {"conv1_pad": "conv1_pad", "conv1_conv": "conv1", "conv1_bn": "bn_conv1",
         "conv1_relu": "conv1_relu", "pool1_pad": "pool1_pad", "pool1_pool": "pool1"}
_STEM_BACK = {matterport: keras for keras, matterport in _STEM.items()}
_KERAS_LAYER = re.compile(r"conv([2-5])_block(\d+)_([0-3])_(conv|bn|relu)")
_KERAS_BLOCK = re.compile(r"conv([2-5])_block(\d+)_(out|add)")
_MATTERPORT_LAYER = re.compile(r"(res|bn)([2-5])([a-z])_branch(1|2a|2b|2c)(_relu)?")
_MATTERPORT_BLOCK = re.compile(r"res([2-5])([a-z])_(out|add)")


def _letter(block):
    return chr(96 + int(block))


def _number(letter):
    return ord(letter) - 96


def to_matterport(name):
    """kseg's name for a Keras-applications ResNet layer name; None if `name` is not one."""
    if name in _STEM:
        return _STEM[name]
    if m := _KERAS_LAYER.fullmatch(name):
        stage, block, index, kind = m.groups()
        unit, branch = f"{stage}{_letter(block)}", _BRANCH[index]
        if kind == "bn":
            return f"bn{unit}_branch{branch}"
        return f"res{unit}_branch{branch}" + ("_relu" if kind == "relu" else "")
    if m := _KERAS_BLOCK.fullmatch(name):
        stage, block, kind = m.groups()
        return f"res{stage}{_letter(block)}_{kind}"
    return None


def to_keras(name):
    """The Keras-applications name of a kseg ResNet layer name; None if `name` is not one."""
    if name in _STEM_BACK:
        return _STEM_BACK[name]
    if m := _MATTERPORT_LAYER.fullmatch(name):
        kind, stage, letter, branch, relu = m.groups()
        prefix = f"conv{stage}_block{_number(letter)}_{_KERAS_INDEX[branch]}"
        if kind == "bn":
            return None if relu else f"{prefix}_bn"
        return f"{prefix}_{'relu' if relu else 'conv'}"
    if m := _MATTERPORT_BLOCK.fullmatch(name):
        stage, letter, kind = m.groups()
        return f"conv{stage}_block{_number(letter)}_{kind}"
    return None


def to_matterport_or_same(name):
    """`to_matterport(name)`, or `name` itself when it is no Keras-applications ResNet name."""
    return to_matterport(name) or name


def uses_keras_names(names):
    """True when any of `names` is a Keras-applications ResNet layer name."""
    return any(to_matterport(name) is not None and to_matterport(name) != name
               for name in names)


def renamer_for(stored, wanted):
    """The rename for loading a file with layers `stored` into a model with layers `wanted`:
    `to_matterport_or_same` when the file has Keras-applications ResNet names that the
    model has under kseg's names, else the identity."""
    stored = list(stored)
    if uses_keras_names(stored) and {to_matterport(n) for n in stored} & set(wanted):
        return to_matterport_or_same
    return lambda name: name
