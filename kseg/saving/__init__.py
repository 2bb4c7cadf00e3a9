"""Weight files in Matterport's Keras 2 HDF5 layout: `legacy_h5` loads them by layer name,
`matterport_h5` writes them (Mask R-CNN checkpoints, and small files for tests).

May import: h5py, NumPy, kseg.utils."""

from kseg.saving.legacy_h5 import LoadReport, load_weights_by_name, read_weight_groups

__all__ = ["LoadReport", "load_weights_by_name", "read_weight_groups"]
