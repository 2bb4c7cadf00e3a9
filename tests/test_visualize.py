"""kseg.visualize: PNGs decode to the expected size and show the masks."""

import os

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.image import imread  # noqa: E402

from kseg import visualize as viz  # noqa: E402

H, W = 64, 80
NAMES = ["BG", "square", "bar"]


def png(path):
    """Decoded PNG as uint8 RGB."""
    assert os.path.getsize(path) > 0
    arr = imread(path)
    if arr.dtype != np.uint8:
        arr = np.round(arr * 255).astype(np.uint8)
    return arr[..., :3]


def scene():
    image = np.zeros((H, W, 3), np.uint8)
    masks = np.zeros((H, W, 2), bool)
    masks[10:40, 10:40, 0] = True
    masks[45:60, 50:75, 1] = True
    boxes = np.array([[10, 10, 40, 40], [45, 50, 60, 75]])
    return image, boxes, masks, np.array([1, 2]), np.array([0.9, 0.7])


def is_red(px):
    px = px.astype(int)
    return px[0] > 80 and px[0] > px[1] + 50 and px[0] > px[2] + 50


def test_random_colors_and_apply_mask():
    c1 = viz.random_colors(5, seed=3)
    assert c1 == viz.random_colors(5, seed=3) and len(c1) == 5
    assert all(0 <= v <= 1 for c in c1 for v in c)
    image = np.full((4, 4, 3), 100, np.uint8)
    mask = np.zeros((4, 4), bool)
    mask[:2] = True
    out = viz.apply_mask(image, mask, (1.0, 0.0, 0.0), alpha=0.5)
    assert out.dtype == np.uint8
    # inside: 100 * 0.5 + 255 * 0.5 = 177.5 -> 178 (R); 50 (G, B)
    np.testing.assert_array_equal(out[0, 0], [178, 50, 50])
    np.testing.assert_array_equal(out[3, 3], [100, 100, 100])
    assert image[0, 0, 0] == 100  # input untouched


def test_display_instances_mask_pixels(tmp_path):
    image, boxes, masks, class_ids, scores = scene()
    fig, ax = plt.subplots(1, figsize=(4, 4), dpi=100)
    path = viz.display_instances(
        image, boxes, masks, class_ids, NAMES, scores, ax=ax,
        colors=[(1.0, 0.0, 0.0), (0.0, 0.0, 1.0)], show_bbox=False,
        save_path=tmp_path / "inst.png")
    arr = png(path)
    assert arr.shape == (400, 400, 3)

    def pixel(x, y):  # image (x, y) -> PNG pixel via the axes transform
        dx, dy = ax.transData.transform((x, y))
        return arr[int(round(arr.shape[0] - dy)), int(round(dx))]

    assert is_red(pixel(25, 30))  # inside mask 0 (red)
    inside_blue = pixel(62, 55).astype(int)
    assert inside_blue[2] > inside_blue[0] + 50  # mask 1 (blue)
    assert pixel(60, 20).max() < 30  # black background, no mask
    plt.close(fig)


def test_display_instances_without_display_writes_temp_png():
    image, boxes, masks, class_ids, scores = scene()
    path = viz.display_instances(image, boxes, masks, class_ids, NAMES,
                                 scores, figsize=(3, 3))
    try:
        assert isinstance(path, str) and png(path).shape == (300, 300, 3)
    finally:
        os.remove(path)
    # caller's ax without save_path: figure returned, not closed
    fig, ax = plt.subplots(1, figsize=(2, 2))
    assert viz.display_instances(image, boxes[:0], masks[..., :0], [], NAMES,
                                 ax=ax) is fig
    plt.close(fig)


def test_grid_and_plot_functions(tmp_path):
    image, boxes, masks, class_ids, scores = scene()
    arr = png(viz.display_images([image, image[..., 0]], titles=["a", "b"],
                                 cols=2, save_path=tmp_path / "grid.png"))
    assert arr.shape == (700, 1400, 3)  # figsize (14, 14 * 1 / 2)
    arr = png(viz.display_top_masks(image, masks, class_ids, NAMES, limit=2,
                                    save_path=tmp_path / "top.png"))
    assert arr.shape[1] == 1400 and arr.std() > 0
    arr = png(viz.plot_precision_recall(
        0.25, np.array([0.5, 0.5, 0.5, 0]), np.array([0, 0, 0.5, 1]),
        save_path=tmp_path / "pr.png"))
    assert arr.shape == (600, 600, 3) and arr.std() > 0
    arr = png(viz.plot_overlaps([1, 2], [1], [0.9], np.array([[0.8, 0.1]]),
                                NAMES, save_path=tmp_path / "ov.png"))
    assert arr.shape == (1000, 1200, 3)


def test_draw_rois_and_boxes(tmp_path):
    image, boxes, masks, class_ids, _ = scene()
    small = np.ones((2, 14, 14), np.float32)  # per-ROI masks, pasted in ROI
    arr = png(viz.draw_rois(image, boxes, boxes + 1, small, class_ids, NAMES,
                            save_path=tmp_path / "rois.png", seed=0))
    assert arr.shape == (1200, 1200, 3)
    assert (arr.astype(int).sum(-1) > 60).sum() > 1000  # masks/boxes drawn
    arr = png(viz.draw_boxes(image, boxes=boxes, refined_boxes=boxes + 2,
                             masks=masks, captions=["a", "b"],
                             visibilities=[2, 1],
                             save_path=tmp_path / "boxes.png"))
    assert arr.shape == (1200, 1200, 3)
    assert (arr.astype(int).sum(-1) > 60).sum() > 1000
    boxed = viz.draw_box(np.zeros((10, 10, 3), np.uint8), (2, 2, 8, 8),
                         (255, 0, 0))
    assert boxed[2, 5, 0] == 255 and boxed[5, 5, 0] == 0


def test_display_differences_colours(tmp_path):
    image, boxes, masks, class_ids, scores = scene()
    fig, ax = plt.subplots(1, figsize=(4, 4))
    pred_masks = masks[..., :1]
    path = viz.display_differences(
        image, boxes, class_ids, masks, boxes[:1], class_ids[:1], [0.9],
        pred_masks, NAMES, ax=ax, save_path=tmp_path / "diff.png")
    arr = png(path).astype(int)
    green = (arr[..., 1] > arr[..., 0] + 50) & (arr[..., 1] > arr[..., 2] + 50)
    red = (arr[..., 0] > arr[..., 1] + 50) & (arr[..., 0] > arr[..., 2] + 50)
    assert green.sum() > 50 and red.sum() > 50
    plt.close(fig)


def test_save_instances_png(tmp_path):
    image, boxes, masks, class_ids, scores = scene()
    det = {"rois": boxes, "class_ids": class_ids, "scores": scores,
           "masks": masks}
    path = viz.save_instances_png(tmp_path / "det.png", image, det, NAMES)
    arr = png(path)
    assert arr.shape == (320, 400, 3)  # 80x64 image -> 4 x 3.2 in at 100 dpi
    assert arr.astype(int).std() > 0


def test_colorize_and_overlay(tmp_path):
    cm = np.zeros((H, W), np.int64)
    cm[10:20, 10:30] = 1
    cm[30:50, 40:70] = 2
    cm[0, 0] = 255  # ignore label
    col = viz.colorize_class_map(cm)
    assert col.dtype == np.uint8 and col.shape == (H, W, 3)
    np.testing.assert_array_equal(col[15, 15], [128, 0, 0])  # VOC class 1
    np.testing.assert_array_equal(col[40, 50], [0, 128, 0])  # VOC class 2
    np.testing.assert_array_equal(col[0, 0], [224, 224, 192])  # VOC void
    custom = viz.colorize_class_map(cm, [(0, 0, 0), (1, 1, 0), (0, 0, 1)])
    np.testing.assert_array_equal(custom[15, 15], [255, 255, 0])
    np.testing.assert_array_equal(custom[0, 0], [0, 0, 0])  # out of range

    image = np.full((H, W, 3), 90, np.uint8)
    out = viz.overlay_semantic(image, cm, ["background", "road", "car"])
    assert out.dtype == np.uint8 and out.shape[0] >= H and out.shape[1] > W
    np.testing.assert_array_equal(out[5, 5], [90, 90, 90])  # background kept
    # road: 0.5 * 90 + 0.5 * (128, 0, 0) = (109, 45, 45)
    np.testing.assert_array_equal(out[15, 15], [109, 45, 45])
    legend = out[:, W:].astype(int)
    dark = legend.sum(-1) < 200  # text / swatch borders on white
    assert dark.sum() > 30
    swatch = np.all(legend == [128, 0, 0], axis=-1)  # road swatch colour
    assert swatch.sum() > 20
    assert viz.overlay_semantic(image, cm, ["a", "b", "c"],
                                legend=None).shape == (H, W, 3)

    path = viz.save_overlay_png(tmp_path / "ov" / "o.png", image, cm,
                                ["background", "road", "car"])
    assert png(path).shape == out.shape
    np.testing.assert_array_equal(png(path), out)


def test_splash():
    image = np.zeros((4, 4, 3), np.uint8)
    image[..., 0] = 200
    masks = np.zeros((4, 4, 2), bool)
    masks[0, 0, 0] = masks[1, 1, 1] = True
    out = viz.splash(image, masks)
    np.testing.assert_array_equal(out[0, 0], [200, 0, 0])
    np.testing.assert_array_equal(out[1, 1], [200, 0, 0])
    gray = round(200 * 0.2125)  # 42.5 -> 42
    np.testing.assert_array_equal(out[3, 3], [gray] * 3)
    np.testing.assert_array_equal(viz.splash(image, masks[..., :0])[0, 0],
                                  [gray] * 3)


@pytest.mark.parametrize("bad", [np.zeros((H, W - 1), int)])
def test_overlay_shape_mismatch(bad):
    with pytest.raises(ValueError):
        viz.overlay_semantic(np.zeros((H, W, 3), np.uint8), bad, ["a"])


def test_comparison_pngs_draw_every_panel(tmp_path):
    image = np.full((40, 60, 3), 90, np.uint8)
    mask = np.zeros((40, 60), bool)
    mask[5:25, 10:40] = True
    det = {"rois": np.array([[5, 10, 25, 40]]), "class_ids": np.array([1]),
           "masks": mask[..., None], "scores": np.array([0.9])}
    gt = {**det, "scores": None}
    path = viz.save_comparison_png(tmp_path / "c.png", [(image, gt, det)] * 2, ["BG", "box"])
    pixels = imread(path)[..., :3]
    assert pixels.shape[0] > pixels.shape[1] * 0.7  # two rows of two panels
    # the mask colour shows in both columns
    left, right = pixels[:, : pixels.shape[1] // 2], pixels[:, pixels.shape[1] // 2:]
    for half in (left, right):
        assert (np.abs(half - 90 / 255).sum(-1) > 0.3).mean() > 0.02

    gt_map = mask.astype(np.int32)
    path = viz.save_semantic_comparison_png(tmp_path / "s.png", [(image, gt_map, gt_map * 0)],
                                            ["BG", "box"])
    pixels = imread(path)[..., :3]
    third = pixels.shape[1] // 3
    coloured = [(np.abs(pixels[:, k * third:(k + 1) * third] - 90 / 255).sum(-1) > 0.3).mean()
                for k in range(3)]
    assert coloured[1] > coloured[0] + 0.05 and coloured[1] > coloured[2] + 0.05
    with pytest.raises(ValueError, match="at least one"):
        viz.save_semantic_comparison_png(tmp_path / "e.png", [], ["BG"])
