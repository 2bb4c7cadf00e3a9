"""Old import paths of modules that moved, kept for one release (listed in README).

`import kseg.train` still works: a finder on `sys.meta_path` answers the old names
in `MOVED` with the module now at the new path (the same module object, so
monkeypatching either name patches both). No file remains at the old paths, so git
follows the moves. May import: nothing of kseg (the targets are imported on demand).
"""

import importlib
import importlib.abc
import importlib.util
import sys

MOVED = {
    "kseg.train": "kseg.semantic.train",
    "kseg.semantic_eval": "kseg.semantic.predict",
    "kseg.losses": "kseg.semantic.losses",
    "kseg.metrics": "kseg.semantic.metrics",
    "kseg.cli.sample": "kseg.semantic.samples",
    "kseg.saving.fixtures": "kseg.saving.matterport_h5",
    "kseg.models.mask_rcnn.inspect": "kseg.models.mask_rcnn.intermediates",
    "kseg.models.mask_rcnn.anchors": "kseg.ops.anchors",
    "kseg.data.rpn_targets": "kseg.models.mask_rcnn.rpn_targets_numpy",
    "kseg.data.via": "kseg.data.formats.via",
    "kseg.data.coco": "kseg.data.formats.coco",
    "kseg.data.folder": "kseg.data.formats.folder",
    "kseg.data.kitti": "kseg.data.formats.kitti",
    "kseg.data.camvid": "kseg.data.formats.camvid",
    "kseg.data.polygons": "kseg.data.formats.polygons",
    "kseg.data.shapes": "kseg.data.generated.shapes",
    "kseg.data.synthetic": "kseg.data.generated.synthetic",
    "kseg.data.augment": "kseg.data.pipelines.augment",
    "kseg.data.scene_augment": "kseg.data.pipelines.scene_augment",
    "kseg.data.molding": "kseg.data.pipelines.molding",
    "kseg.data.ground_truth": "kseg.data.pipelines.ground_truth",
    "kseg.data.maskrcnn_pipeline": "kseg.data.pipelines.maskrcnn_pipeline",
    "kseg.data.semantic_pipeline": "kseg.data.pipelines.semantic_pipeline",
    "kseg.data.tf_pipeline": "kseg.data.pipelines.tf_pipeline",
}


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target):
        self.target = target

    def create_module(self, spec):
        module = importlib.import_module(self.target)
        self.spec = module.__spec__
        return module

    def exec_module(self, module):
        """The target is already executed; give it back its own `__spec__`, which the
        import system replaced by the old name's."""
        module.__spec__ = self.spec


class _MovedFinder(importlib.abc.MetaPathFinder):
    """Finds the old names of `MOVED` (and nothing else)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(MOVED[fullname]))


def install():
    """Put the finder on `sys.meta_path` once."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _MovedFinder())
