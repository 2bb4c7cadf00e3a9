"""Deterministic train/val splits for folders that ship one split only.

    train_ids, val_ids = split_ids(len(dataset), val_fraction=0.2, seed=0)
    train, val = split_dataset(dataset, val_fraction=0.2, seed=0)

The same (n, val_fraction, seed) gives the same split on every machine.
"""

import copy

import numpy as np


def split_ids(n, val_fraction=0.2, seed=0):
    """Split indices 0..n-1 into sorted train and val index arrays.

    Args:
        n: number of items.
        val_fraction: fraction in [0, 1) that goes to validation; at least one
            item when n >= 2 and val_fraction > 0, and at least one stays in train.
        seed: int seed of the permutation.
    Returns:
        train_ids [n - k] int64, val_ids [k] int64, both sorted.
    """
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction={val_fraction!r}: expected a number in [0, 1).")
    n = int(n)
    k = int(round(n * val_fraction))
    if val_fraction > 0 and n >= 2:
        k = min(max(k, 1), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[k:]), np.sort(order[:k])


def subset_dataset(dataset, image_ids):
    """A prepared shallow copy of `dataset` holding only `image_ids` (new ids 0..k-1)."""
    sub = copy.copy(dataset)
    sub.image_info = [dataset.image_info[int(i)] for i in image_ids]
    sub.class_info = list(dataset.class_info)
    sub.prepare()
    return sub


def split_dataset(dataset, val_fraction=0.2, seed=0):
    """(train, val) datasets from `split_ids(len(dataset), val_fraction, seed)`."""
    train_ids, val_ids = split_ids(len(dataset.image_info), val_fraction, seed)
    return subset_dataset(dataset, train_ids), subset_dataset(dataset, val_ids)
