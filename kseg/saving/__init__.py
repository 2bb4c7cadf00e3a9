"""Weight files: Keras 2 / Matterport HDF5 loading by layer name, and test fixtures."""

from kseg.saving.legacy_h5 import LoadReport, load_weights_by_name, read_weight_groups

__all__ = ["LoadReport", "load_weights_by_name", "read_weight_groups"]
