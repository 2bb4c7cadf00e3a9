"""Which layers train: Matterport's `layers=` names ("heads", "3+", ...) as regexes."""

import re

_HEADS = r"(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)"
LAYER_REGEX = {
    "heads": _HEADS,
    "3+": r"(res3.*)|(bn3.*)|(res4.*)|(bn4.*)|(res5.*)|(bn5.*)|(tiny[345].*)|" + _HEADS,
    "4+": r"(res4.*)|(bn4.*)|(res5.*)|(bn5.*)|(tiny[45].*)|" + _HEADS,
    "5+": r"(res5.*)|(bn5.*)|(tiny5.*)|" + _HEADS,
    "all": ".*",
}


def set_trainable(model, layer_regex, verbose=False):
    """Make layers whose name fully matches `layer_regex` trainable, freeze the others.

    Weightless layers are skipped. A nested model (`rpn_model`) is matched by its own name.
    """
    pattern = re.compile(layer_regex)
    changed = []
    for layer in model.layers:
        if not layer.weights:
            continue
        trainable = bool(pattern.fullmatch(layer.name))
        if layer.trainable != trainable:
            layer.trainable = trainable
            changed.append(layer.name)
        if verbose:
            print(f"{'train ' if trainable else 'frozen'} {layer.name}")
    return changed


def trainable_layers(model):
    """Layers that own weights, in order, nested models (`rpn_model`) included as one layer
    (what `set_trainable` matches; Matterport's `get_trainable_layers`)."""
    return [layer for layer in model.layers if layer.weights]
