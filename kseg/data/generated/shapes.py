"""Generated shapes (squares, circles, triangles): Matterport's toy instance task.

Every image is drawn from its own seed, so a dataset is the same on every
machine and run: `ShapesDataset(count=500, height=128, width=128, seed=0)`.
"""

import numpy as np
from skimage.draw import disk, polygon

from kseg.data.dataset import Dataset

SHAPES = ("square", "circle", "triangle")


class ShapesDataset(Dataset):
    """Random colored shapes on a plain background; class ids 1..3 = square, circle, triangle.

    Args:
        count: number of images.
        height, width: image size in pixels.
        seed: base seed; image i uses `seed * 100003 + i`.
        max_shapes: at most this many shapes per image (at least 1).
    """

    def __init__(self, count=500, height=128, width=128, seed=0, max_shapes=4, prepare=True):
        super().__init__()
        for class_id, name in enumerate(SHAPES, start=1):
            self.add_class("shapes", class_id, name)
        for i in range(count):
            rng = np.random.default_rng(seed * 100003 + i)
            bg_color, shapes = random_image_spec(rng, height, width, max_shapes)
            self.add_image("shapes", image_id=i, path=None, width=width, height=height,
                           bg_color=bg_color, shapes=shapes)
        if prepare:
            self.prepare()

    def image_reference(self, image_id):
        info = self.image_info[image_id]
        return f"shapes:{info['id']} " + ",".join(s[0] for s in info["shapes"])

    def load_image(self, image_id):
        info = self.image_info[image_id]
        image = np.empty([info["height"], info["width"], 3], np.uint8)
        image[:] = info["bg_color"]
        for shape, color, dims in info["shapes"]:
            rr, cc = shape_pixels(shape, dims, image.shape[:2])
            image[rr, cc] = color
        return image

    def load_mask(self, image_id):
        info = self.image_info[image_id]
        shapes = info["shapes"]
        masks = np.zeros([info["height"], info["width"], len(shapes)], bool)
        for i, (shape, _, dims) in enumerate(shapes):
            rr, cc = shape_pixels(shape, dims, masks.shape[:2])
            masks[rr, cc, i] = True
        # Later shapes occlude earlier ones.
        occlusion = np.zeros(masks.shape[:2], bool)
        for i in range(len(shapes) - 1, -1, -1):
            masks[..., i] &= ~occlusion
            occlusion |= masks[..., i]
        class_ids = np.array([SHAPES.index(s[0]) + 1 for s in shapes], np.int32)
        visible = masks.any(axis=(0, 1))  # a fully occluded shape is no instance
        return masks[..., visible], class_ids[visible]


def shape_pixels(shape, dims, image_shape):
    """Row and column indices of a shape's pixels. dims = (center_y, center_x, size)."""
    y, x, s = dims
    if shape == "square":
        rows = [y - s, y - s, y + s, y + s]
        cols = [x - s, x + s, x + s, x - s]
        return polygon(rows, cols, shape=image_shape)
    if shape == "circle":
        return disk((y, x), s, shape=image_shape)
    rows = [y - s, y + s / np.sin(np.pi / 3) / 2, y + s / np.sin(np.pi / 3) / 2]
    cols = [x, x - s, x + s]
    return polygon(rows, cols, shape=image_shape)


def random_shape(rng, height, width):
    """(shape name, RGB color, (center_y, center_x, size)) inside the image."""
    shape = SHAPES[rng.integers(0, len(SHAPES))]
    color = tuple(int(c) for c in rng.integers(0, 256, size=3))
    buffer = max(4, min(height, width) // 6)
    y = int(rng.integers(buffer, height - buffer))
    x = int(rng.integers(buffer, width - buffer))
    size = int(rng.integers(max(3, min(height, width) // 12), max(4, min(height, width) // 4)))
    return shape, color, (y, x, size)


def random_image_spec(rng, height, width, max_shapes=4):
    """Background color and a list of shapes that overlap each other little."""
    bg_color = np.array([int(c) for c in rng.integers(0, 256, size=3)], np.uint8)
    shapes = []
    boxes = []
    for _ in range(int(rng.integers(1, max_shapes + 1))):
        shape, color, dims = random_shape(rng, height, width)
        # Shapes of nearly the background color are invisible: re-draw the color.
        while np.abs(np.array(color) - bg_color.astype(int)).sum() < 90:
            color = tuple(int(c) for c in rng.integers(0, 256, size=3))
        y, x, s = dims
        box = np.array([y - s, x - s, y + s, x + s], np.float32)
        if all(_iou(box, other) < 0.3 for other in boxes):
            shapes.append((shape, color, dims))
            boxes.append(box)
    return bg_color, shapes


def _iou(a, b):
    y1, x1 = max(a[0], b[0]), max(a[1], b[1])
    y2, x2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, y2 - y1) * max(0.0, x2 - x1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
