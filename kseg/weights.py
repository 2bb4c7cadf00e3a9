"""Known pretrained weight files: download, verify, cache.

    path = kseg.weights.get("mask_rcnn_coco")          # ~/.keras/models/mask_rcnn_coco.h5
    kseg.weights.REGISTRY["mask_rcnn_coco"].classes    # Matterport's 81 COCO class names

Files land in ``<cache_dir>/models/<fname>`` (default cache dir: ``$KERAS_HOME`` or ``~/.keras``),
the place ``keras.utils.get_file`` uses. A download goes to a hidden ``.part`` file beside it and is
moved into place only after its checksum (or, when no checksum is known, its size) matched, so
the final path never holds a partial file. ``KSEG_WEIGHTS_URL_BASE`` replaces the origin's
directory (``$KSEG_WEIGHTS_URL_BASE/<fname>``), e.g. for a local mirror.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import os
import socket
import urllib.error

__all__ = ["WeightsFile", "WeightsError", "OfflineError", "REGISTRY", "COCO_CLASS_NAMES",
           "get", "list_weights", "register", "weights_path", "origin_url",
           "download_trained_weights"]

URL_BASE_ENV = "KSEG_WEIGHTS_URL_BASE"

# Matterport's `class_names` (samples/demo.ipynb): index = class id of mask_rcnn_coco.h5.
COCO_CLASS_NAMES = (
    "BG", "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich",
    "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)


class WeightsError(RuntimeError):
    """A weights file could not be fetched or failed verification."""


class OfflineError(WeightsError, ConnectionError):
    """The origin could not be reached (no network, DNS failure, refused connection)."""


@dataclasses.dataclass(frozen=True)
class WeightsFile:
    """One known weights file.

    Attributes:
        name: registry key (``kseg weights download NAME``).
        url: where it is published.
        fname: file name in the cache (unique: never another program's file name).
        size: exact size in bytes, or None when unknown.
        file_hash: md5 (32 hex digits) or sha256 (64), or None when unknown.
        classes: class names implied by the weights (index = class id), or None.
        description: one line for ``kseg weights list``.
        aliases: other cache file names that may hold the same bytes (e.g. where Keras 2
            or Matterport cached it); a verified one is used, a wrong one left alone.
    """

    name: str
    url: str
    fname: str
    size: int | None = None
    file_hash: str | None = None
    classes: tuple | None = None
    description: str = ""
    aliases: tuple = ()

    @property
    def hash_algorithm(self):
        """``"sha256"``, ``"md5"`` or None, from the hash length."""
        if self.file_hash is None:
            return None
        return "sha256" if len(self.file_hash) == 64 else "md5"


REGISTRY = {}


def register(entry):
    """Add (or replace) a `WeightsFile` in the registry; returns it."""
    REGISTRY[entry.name] = entry
    return entry


register(WeightsFile(
    name="mask_rcnn_coco",
    url="https://github.com/matterport/Mask_RCNN/releases/download/v2.0/mask_rcnn_coco.h5",
    fname="mask_rcnn_coco.h5", size=257557808,
    # sha256 as published in guildai/packages matterport/mask-rcnn/guild.yml.
    file_hash="ab8f779d74d790abe4fcf3f60ab368129df5ee866262c439c6bae5af13afaf56",
    classes=COCO_CLASS_NAMES,
    description="Mask R-CNN ResNet-101 FPN, COCO (Matterport v2.0), 81 classes"))
register(WeightsFile(
    name="resnet50_imagenet",
    url=("https://github.com/fchollet/deep-learning-models/releases/download/v0.2/"
         "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    # Keras 3's own ResNet50 ImageNet weights (keras.applications) are a different file under
    # the name Matterport's file had, so kseg caches this one under its own name.
    fname="kseg_resnet50_imagenet_v0.2_notop.h5",
    aliases=("resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",),
    file_hash="a268eb855778b3df3c7506639542a6af",
    description="ResNet-50 ImageNet backbone, no top (Matterport's 'imagenet' init)"))
register(WeightsFile(
    name="vgg16_imagenet",
    url=("https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
         "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    fname="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", size=58889256,
    file_hash="6d6bbae143d832006294945121d1f1fc",
    description="VGG16 ImageNet backbone, no top (keras.applications), for FCN/U-Net"))


def _entry(name):
    """The registry entry called `name`, or a KeyError listing the known names."""
    if name not in REGISTRY:
        raise KeyError(f"unknown weights {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def list_weights():
    """All known weight files (`WeightsFile` entries), sorted by name."""
    return [REGISTRY[name] for name in sorted(REGISTRY)]


def origin_url(name, url=None):
    """The URL `get` downloads from: `url`, else ``$KSEG_WEIGHTS_URL_BASE/<the URL's file
    name>``, else the registered URL."""
    if url:
        return url
    base = os.environ.get(URL_BASE_ENV)
    entry = _entry(name)
    return f"{base.rstrip('/')}/{entry.url.rsplit('/', 1)[-1]}" if base else entry.url


def _cache_root(cache_dir=None):
    """The Keras cache dir (``$KERAS_HOME`` or ``~/.keras``; ``/tmp/.keras`` if not writable)."""
    default = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    root = os.path.abspath(os.path.expanduser(cache_dir if cache_dir is not None else default))
    try:
        os.makedirs(root, exist_ok=True)
    except OSError:
        pass
    if not os.access(root, os.W_OK):  # keras.utils.get_file falls back the same way
        root = os.path.join("/tmp", ".keras")
    return root


def weights_path(name, cache_dir=None):
    """Where `get` keeps (or expects) the file: ``<cache_dir>/models/<fname>``."""
    return os.path.join(_cache_root(cache_dir), "models", _entry(name).fname)


def file_problem(entry, path):
    """Why `path` is not a good copy of `entry` (size, then checksum), or None."""
    size = os.path.getsize(path)
    if entry.size is not None and size != entry.size:
        return f"size {size} bytes, expected {entry.size}"
    if entry.file_hash is not None:
        digest = hashlib.new(entry.hash_algorithm)
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != entry.file_hash:
            return (f"{entry.hash_algorithm} checksum mismatch: got {digest.hexdigest()}, "
                    f"expected {entry.file_hash}")
    return None


def _remove(path):
    """Delete `path` if it exists."""
    if os.path.exists(path):
        os.remove(path)


def _causes(exc):
    """`exc` and the exceptions it was raised from or during."""
    seen = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def _transfer_error(exc, entry, origin, target):
    """A `WeightsError` for a failed transfer, or None when it is worth retrying."""
    manual = (f"Download it elsewhere and put it at {target} (or pass url=..., or set "
              f"{URL_BASE_ENV} to a mirror).")
    for cause in _causes(exc):
        if isinstance(cause, (urllib.error.ContentTooShortError, http.client.HTTPException)):
            return None
        if isinstance(cause, urllib.error.HTTPError):
            return WeightsError(f"{entry.name}: HTTP {cause.code} {cause.reason} for {origin}. "
                                + manual)
    for cause in _causes(exc):
        reason = getattr(cause, "reason", cause)
        if isinstance(cause, urllib.error.URLError) or isinstance(
                reason, (ConnectionError, socket.gaierror, TimeoutError, OSError)):
            return OfflineError(f"{entry.name}: cannot reach {origin} ({reason}); you seem to "
                                "be offline. " + manual)
    return WeightsError(f"{entry.name}: download from {origin} failed: {exc}. " + manual)


def _download_once(entry, origin, target):
    """One download to a ``.part`` file, verified, then moved to `target`.

    Returns None on success or a message when the file arrived wrong (worth one retry);
    raises `WeightsError` / `OfflineError` for errors a retry will not fix.
    """
    import keras

    models_dir, fname = os.path.split(target)
    part = os.path.join(models_dir, f".{fname}.part-{os.getpid()}")
    _remove(part)
    try:
        keras.utils.get_file(
            os.path.basename(part), origin, file_hash=entry.file_hash,
            hash_algorithm=entry.hash_algorithm or "auto", cache_subdir="models",
            cache_dir=os.path.dirname(models_dir), force_download=True)
    except ValueError as exc:  # keras: checksum mismatch after download
        _remove(part)
        return f"checksum mismatch ({exc})"
    except Exception as exc:
        _remove(part)
        error = _transfer_error(exc, entry, origin, target)
        if error is None:
            return f"incomplete download ({exc})"
        raise error from exc
    except BaseException:
        _remove(part)
        raise
    problem = file_problem(entry, part)
    if problem is None:
        os.replace(part, target)
    _remove(part)
    return problem


def get(name, cache_dir=None, url=None, force=False):
    """Local path of the weights file `name`, downloading and verifying it if needed.

    Args:
        name: a registry key, e.g. ``"mask_rcnn_coco"`` (see `list_weights`).
        cache_dir: cache root (file goes to ``<cache_dir>/models/``); default ``~/.keras``.
        url: download from here instead of the registered URL.
        force: download again even when a verified copy is cached.

    Raises:
        OfflineError: the origin cannot be reached (the message gives the path to fill by hand).
        WeightsError: HTTP error, or the file failed verification twice.
    """
    entry = _entry(name)
    target = weights_path(name, cache_dir)
    origin = origin_url(name, url)
    problem = file_problem(entry, target) if os.path.exists(target) and not force else None
    if os.path.exists(target) and not force and problem is None:
        return target
    if not force:
        for alias in entry.aliases:  # e.g. Matterport's copy: used if it verifies, else kept
            path = os.path.join(os.path.dirname(target), alias)
            if os.path.isfile(path) and file_problem(entry, path) is None:
                return path
    if problem is not None:
        print(f"kseg.weights: removing bad cached {target} ({problem}); downloading again")
        _remove(target)
    problem = None
    for _ in range(2):
        problem = _download_once(entry, origin, target)
        if problem is None:
            return target
    raise WeightsError(f"{entry.name}: downloading {origin} failed twice ({problem}); "
                       f"nothing was kept at {target}")


def download_trained_weights(coco_model_path, verbose=1):
    """Matterport's `utils.download_trained_weights`: put `mask_rcnn_coco.h5` at
    `coco_model_path` (from the verified cache copy, downloading it if needed; the file
    appears at `coco_model_path` only when complete)."""
    import shutil

    from kseg.utils.io import atomic_path

    source = get("mask_rcnn_coco")
    if verbose > 0:
        print(f"Copying COCO trained weights to {coco_model_path} ...")
    if os.path.abspath(source) != os.path.abspath(coco_model_path):
        with atomic_path(coco_model_path) as tmp:
            shutil.copyfile(source, tmp)
    if verbose > 0:
        print("... done copying COCO trained weights!")
    return coco_model_path
