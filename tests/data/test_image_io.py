"""read_image / oriented_size: EXIF orientation, as viewers and annotation tools apply it."""

import numpy as np
from PIL import Image

from kseg.data.image_io import oriented_size, read_image


def _write_rotated_jpeg(path, orientation=6):
    """A 40x20 (WxH) stored picture: red left half, blue right half, EXIF `orientation`."""
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :20] = (255, 0, 0)
    stored[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    return stored


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "phone.jpg"
    _write_rotated_jpeg(path, orientation=6)  # 6: shown turned 90 degrees clockwise
    shown = read_image(path)
    assert shown.shape == (40, 20, 3)
    # clockwise: the stored left (red) half becomes the top
    assert shown[5, 10, 0] > 200 and shown[5, 10, 2] < 60
    assert shown[35, 10, 2] > 200 and shown[35, 10, 0] < 60
    assert read_image(path, apply_exif_orientation=False).shape == (20, 40, 3)
    with Image.open(path) as img:
        assert oriented_size(img) == (40, 20)


def test_upright_files_are_unchanged(tmp_path):
    path = tmp_path / "plain.png"
    image = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    Image.fromarray(image).save(path)
    np.testing.assert_array_equal(read_image(path), image)
    with Image.open(path) as img:
        assert oriented_size(img) == (4, 6)
