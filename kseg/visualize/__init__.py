"""Visualisation (matplotlib + NumPy), Matterport ``mrcnn/visualize.py`` API.

Output convention for the figure functions (``display_*``, ``draw_rois``,
``draw_boxes``, ``plot_*``):

* ``save_path`` given: the figure is written as PNG (size = ``figsize`` x
  figure dpi, 100 by default) and the path is returned;
* otherwise, if ``ax`` was passed in, the caller's figure is returned
  untouched (not shown, not closed);
* otherwise, without a display (non-interactive backend such as Agg) the
  PNG goes to a fresh temp file whose path is returned; with a display the
  figure is shown (``plt.show()``, like Matterport) and returned.

Figures created here are closed after saving. ``keras.visualization`` is
not used: ``draw_bounding_boxes`` needs OpenCV and the helpers work on
backend tensor batches, while everything here is plain NumPy.

    figures.py     the backend, where figures go, colors, mask / box primitives
    instances.py   instance drawings (display_instances, draw_rois, ...), PNG writers, splash
    semantic.py    class-map colors, overlays, semantic comparison sheets
    plots.py       image grids, precision-recall, overlap matrices

May import: matplotlib, NumPy, kseg.utils, kseg.data, kseg.evaluate.
"""


from kseg.visualize.figures import apply_mask, draw_box, figure_to_array, random_colors
from kseg.visualize.instances import (
    display_differences,
    display_instances,
    display_top_masks,
    draw_boxes,
    draw_rois,
    save_comparison_png,
    save_instances_png,
    splash,
)
from kseg.visualize.plots import display_images, plot_overlaps, plot_precision_recall
from kseg.visualize.semantic import (
    colorize_class_map,
    overlay_semantic,
    save_overlay_png,
    save_semantic_comparison_png,
)

__all__ = [
    "random_colors",
    "apply_mask",
    "draw_box",
    "display_instances",
    "display_top_masks",
    "display_images",
    "draw_rois",
    "draw_boxes",
    "plot_precision_recall",
    "plot_overlaps",
    "display_differences",
    "colorize_class_map",
    "overlay_semantic",
    "save_overlay_png",
    "splash",
    "save_instances_png",
    "save_comparison_png",
    "save_semantic_comparison_png",
    "figure_to_array",
]

