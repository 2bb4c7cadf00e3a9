"""Datasets, loaders for common annotation formats, and input pipelines."""

from kseg.data.dataset import DataError, Dataset
from kseg.data.image_io import ImageReadError, read_image, read_label
from kseg.data.shapes import ShapesDataset

__all__ = ["DataError", "Dataset", "ImageReadError", "ShapesDataset", "read_image", "read_label"]
