"""The one backbone registry: FCN, U-Net and Mask R-CNN look their backbones up here.

    register_backbone("mine", fn, strides=(4, 8, 16, 32, 64))        # for Mask R-CNN
    register_backbone("mine", encoder=f, skips=(...), skip_strides=(...), fcn_taps=(...))

An entry (`Backbone`) serves Mask R-CNN when it has `fn(image, train_bn, filters) ->
[C1, C2, C3, C4, C5]` whose C2..C5 have `strides[:4]` (the fifth pyramid level is the
fourth's x2), and FCN / U-Net when it has `encoder(x, width=1.0) -> deepest tensor`:
`skips` are the layers U-Net taps (strides `skip_strides`, the last one the deepest),
`fcn_taps` FCN's pool3, pool4, pool5 (strides 8, 16, 32), `imagenet_file` Keras' ImageNet
file name. The same name may serve both (resnet50: Matterport's for Mask R-CNN, the
keras.applications-style one for FCN / U-Net; both from `resnet.py`).

`ENCODERS`, `FCN_TAPS` and `IMAGENET_FILES` are read-only views of the registry in the
shapes kseg 0.1 had them (`ENCODERS[name] = (encoder, skips, skip_strides)`).
"""

import dataclasses
from collections.abc import Mapping

__all__ = ["BACKBONES", "ENCODERS", "FCN_TAPS", "IMAGENET_FILES", "Backbone", "get_backbone",
           "get_encoder", "register_backbone"]


@dataclasses.dataclass(frozen=True)
class Backbone:
    """One registered backbone (see the module docstring)."""

    fn: object = None
    strides: tuple = (4, 8, 16, 32, 64)
    encoder: object = None
    skips: tuple = ()
    skip_strides: tuple = ()
    fcn_taps: tuple = ()
    imagenet_file: str = None

    def __iter__(self):
        """`fn, strides = BACKBONES[name]`, as Mask R-CNN's registry was read."""
        return iter((self.fn, self.strides))


BACKBONES = {}


def register_backbone(name, fn=None, strides=(4, 8, 16, 32, 64), *, encoder=None, skips=(),
                      skip_strides=(), fcn_taps=(), imagenet_file=None):
    """Make `name` build `fn` in Mask R-CNN (`MaskRCNNConfig.BACKBONE = name`) and / or
    `encoder` in FCN / U-Net (`BACKBONE = name`); a part not given keeps what `name` had.
    Returns `fn` (or `encoder`)."""
    if fn is None and encoder is None:
        raise ValueError(f"register_backbone({name!r}): give fn (Mask R-CNN) or encoder "
                         f"(FCN / U-Net)")
    if encoder is not None and len(skips) != len(skip_strides):
        raise ValueError(f"register_backbone({name!r}): skips {skips} and skip_strides "
                         f"{skip_strides} differ in length")
    entry = BACKBONES.get(name, Backbone())
    if fn is not None:
        entry = dataclasses.replace(entry, fn=fn, strides=tuple(strides))
    if encoder is not None:
        entry = dataclasses.replace(entry, encoder=encoder, skips=tuple(skips),
                                    skip_strides=tuple(skip_strides), fcn_taps=tuple(fcn_taps),
                                    imagenet_file=imagenet_file)
    BACKBONES[name] = entry
    return fn if fn is not None else encoder


def get_backbone(name):
    """Mask R-CNN: (fn, strides) for a registered name, or (name, None) for a callable."""
    if callable(name):
        return name, None
    entry = BACKBONES.get(name)
    if entry is None or entry.fn is None:
        raise ValueError(
            f"MaskRCNNConfig.BACKBONE = {name!r} is unknown; expected one of "
            f"{sorted(n for n, b in BACKBONES.items() if b.fn is not None)} or a callable "
            f"f(image, train_bn, filters) -> [C1..C5].")
    return entry.fn, entry.strides


def get_encoder(name):
    """FCN / U-Net: the `Backbone` registered as an encoder under `name`."""
    entry = BACKBONES.get(name)
    if entry is None or entry.encoder is None:
        raise ValueError(f"unknown encoder {name!r}; expected one of {', '.join(ENCODERS)}")
    return entry


class _View(Mapping):
    """Read-only {name: part(entry)} over the registry's entries where part is not None."""

    def __init__(self, part):
        self._part = part

    def _items(self):
        return {n: v for n, b in BACKBONES.items() if (v := self._part(b)) is not None}

    def __getitem__(self, name):
        return self._items()[name]

    def __iter__(self):
        return iter(self._items())

    def __len__(self):
        return len(self._items())

    def __repr__(self):
        return repr(self._items())


ENCODERS = _View(lambda b: (b.encoder, b.skips, b.skip_strides) if b.encoder else None)
FCN_TAPS = _View(lambda b: b.fcn_taps or None if b.encoder else None)
IMAGENET_FILES = _View(lambda b: b.imagenet_file if b.encoder else None)
