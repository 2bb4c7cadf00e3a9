"""Reading images and label images from disk, with errors that name the file.

`read_image` always returns RGB uint8 [H, W, 3]: grayscale, RGBA (alpha
dropped), 16-bit (scaled to 8 bits) and palette images are converted. The
format comes from the file's bytes, not its extension (some ".jpg" files are
PNGs). A camera's EXIF orientation is applied, so the array is the picture as
viewers and annotation tools (VIA, CVAT, labelme in browsers) show it and the
polygons drawn on it line up; `oriented_size` gives that size from the header. `read_label` returns the stored values of a label image [H, W]
(palette indices stay indices).
"""

import os

import numpy as np
from PIL import Image, UnidentifiedImageError


class ImageReadError(ValueError):
    """An image file is missing, truncated or not an image."""


def _open(path, image_id=None):
    where = f"image {image_id} ({path})" if image_id is not None else f"{path}"
    if not os.path.exists(path):
        raise ImageReadError(f"{where}: file not found; expected an image file at this path.")
    try:
        img = Image.open(path)
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ImageReadError(
            f"{where}: cannot decode image ({e}); expected a complete JPEG/PNG/BMP/TIFF file "
            f"(is it truncated or not an image?)."
        ) from e
    return img


def _to_uint8(array):
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.integer):
        max_value = 65535 if array.max(initial=0) > 255 else 255
        return (array.astype(np.float64) * (255.0 / max_value)).round().astype(np.uint8)
    array = array.astype(np.float64)
    if array.max(initial=0) <= 1.0:
        array = array * 255.0
    return np.clip(array.round(), 0, 255).astype(np.uint8)


# EXIF orientations (tag 0x0112) 5-8 turn the picture by 90 degrees.
_ORIENTATION_TAG = 0x0112
_QUARTER_TURNS = (5, 6, 7, 8)


def exif_orientation(img):
    """The EXIF orientation (1-8) of an open PIL image; 1 (upright) when absent."""
    try:
        return int(img.getexif().get(_ORIENTATION_TAG, 1) or 1)
    except (AttributeError, ValueError, TypeError, OSError):
        return 1


def oriented_size(img):
    """(height, width) of an open PIL image as displayed (EXIF orientation applied)."""
    width, height = img.size
    return (width, height) if exif_orientation(img) in _QUARTER_TURNS else (height, width)


def read_image(path, image_id=None, apply_exif_orientation=True):
    """Read any image file as RGB uint8 `[H, W, 3]` (EXIF orientation applied unless
    `apply_exif_orientation=False`, which gives the pixels as stored)."""
    img = _open(path, image_id)
    if apply_exif_orientation and exif_orientation(img) != 1:
        from PIL import ImageOps

        img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = _to_uint8(np.asarray(img))
    elif img.mode == "P":
        array = np.asarray(img.convert("RGBA" if "transparency" in img.info else "RGB"))
    elif img.mode in ("RGB", "L", "RGBA", "LA"):
        array = np.asarray(img)
    else:
        array = np.asarray(img.convert("RGB"))
    array = np.asarray(array)
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    if array.shape[-1] == 2:  # LA
        array = np.stack([array[..., 0]] * 3, axis=-1)
    if array.shape[-1] == 4:
        array = array[..., :3]
    return np.ascontiguousarray(_to_uint8(array))


def read_label(path, image_id=None):
    """Read a label image `[H, W]` (or `[H, W, 3]` for color labels) as stored."""
    img = _open(path, image_id)
    if img.mode == "P":
        return np.asarray(img)  # palette indices are the labels
    array = np.asarray(img)
    if array.ndim == 3 and array.shape[-1] == 4:
        array = array[..., :3]
    if array.ndim == 3 and array.shape[-1] == 2:
        array = array[..., 0]
    return array


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def list_images(items):
    """Image files named by `items` (files or folders, folders sorted by name) as Paths.

    Raises FileNotFoundError for a missing item, `DataError` when no image is found.
    """
    from pathlib import Path

    from kseg.data.dataset import DataError

    items = [items] if isinstance(items, (str, os.PathLike)) else list(items)
    files = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{item}: no such image file or folder")
    if not files:
        raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in "
                        f"{', '.join(map(str, items))}")
    return files
