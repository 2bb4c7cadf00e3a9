"""The type each Config attribute must have, derived from kseg's own defaults.

    type_problem(UNetConfig, "NUM_CLASSES", "3")   # -> "an int (e.g. 3, not '3')"

The kind of an attribute comes from its default in the most derived kseg class that
defines it (a user subclass that writes NUM_CLASSES = "3" is still checked against
kseg's int): bool, int, number (int or float), str, sequence (list, tuple or array)
or dict. Defaults of None are checked only where `NULLABLE` names the kind.
"""

import numbers

import numpy as np

# Attributes whose default is None, or that also accept None: the kind they hold.
NULLABLE = {
    "NAME": "str", "SEED": "int", "TRAIN_BN": "bool", "GRADIENT_CLIP_NORM": "number",
    "IMAGE_MIN_DIM": "int", "IMAGE_MAX_DIM": "int", "CLASS_WEIGHTS": "sequence",
    "CLASS_NAMES": "sequence", "IGNORE_INDEX": "int", "EARLY_STOPPING_PATIENCE": "int",
    "LR_SCHEDULE": "str", "ENCODER_WEIGHTS": "str", "FCN_FC_FILTERS": "int",
    "UNET_FOREGROUND_PRIOR": "number", "BACKBONE": "str_or_callable",
}
# int defaults that also take a float.
REAL = {"IMAGE_MIN_SCALE"}
# Attributes that may also be a callable (Matterport's custom backbone).
CALLABLE = {"BACKBONE", "COMPUTE_BACKBONE_SHAPE"}

EXPECTED = {"bool": "True or False", "int": "an int", "number": "a number (int or float)",
            "str": "a str", "sequence": "a list, tuple or array", "dict": "a dict",
            "str_or_callable": "a str or a callable"}


def _kseg_default(cls, key):
    """(found, default) from the most derived kseg class in `cls.__mro__` defining `key`."""
    for klass in cls.__mro__:
        if klass.__module__.startswith("kseg") and key in vars(klass):
            return True, vars(klass)[key]
    return False, None


def _kind_of(key, default):
    if key in NULLABLE:
        return NULLABLE[key]
    if isinstance(default, (bool, np.bool_)):
        return "bool"
    if isinstance(default, numbers.Integral):
        return "number" if key in REAL else "int"
    if isinstance(default, numbers.Real):
        return "number"
    if isinstance(default, str):
        return "str"
    if isinstance(default, (list, tuple, np.ndarray)):
        return "sequence"
    if isinstance(default, dict):
        return "dict"
    return None


def _matches(kind, value):
    is_bool = isinstance(value, (bool, np.bool_))
    if kind == "bool":
        return is_bool
    if kind == "int":
        return isinstance(value, numbers.Integral) and not is_bool
    if kind == "number":
        return isinstance(value, numbers.Real) and not is_bool
    if kind == "str":
        return isinstance(value, str)
    if kind == "str_or_callable":
        return isinstance(value, str) or callable(value)
    if kind == "sequence":
        return isinstance(value, (list, tuple, np.ndarray))
    if kind == "dict":
        return isinstance(value, dict)
    return True


def type_problem(cls, key, value):
    """None when `value` suits `cls.<key>`, else what was expected (for the error)."""
    found, default = _kseg_default(cls, key)
    if not found:
        return None
    kind = _kind_of(key, default)
    if kind is None or (value is None and (key in NULLABLE or default is None)):
        return None
    if key in CALLABLE and callable(value):
        return None
    if _matches(kind, value):
        return None
    expected = EXPECTED[kind]
    if isinstance(value, str) and kind in ("int", "number"):
        expected += f" (e.g. {value.strip()}, not {value!r})"
    return expected
