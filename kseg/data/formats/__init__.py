"""Readers of annotation formats on disk: VIA polygons, COCO, mask folders, KITTI road,
CamVid, and the polygon rasterizer they share. Each returns a `kseg.data.Dataset`.

May import: kseg.config, kseg.data core modules (dataset, image_io, paths, splits),
NumPy, scikit-image, pycocotools (never kseg.models, kseg.cli or anything above).
"""
