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


def sequential_split(dataset, val_fraction=0.2):
    """(train, val) with the LAST `val_fraction` of the images (sorted by path) in val.

    For video frames (CamVid): neighbouring frames are near-duplicates, so a random
    split would leak; a block at the end of the sequence does not.
    """
    order = sorted(dataset.image_ids, key=dataset.image_reference)
    count = max(1, int(round(len(order) * val_fraction)))
    return subset_dataset(dataset, sorted(order[:-count])), subset_dataset(dataset,
                                                                           sorted(order[-count:]))


def grouped_split(dataset, val_fraction=0.2, seed=0):
    """(train, val) by `split_ids` over groups of images whose file stems share the prefix
    before the first "_" (tiles of one photo stay together)."""
    from pathlib import Path

    groups = [Path(dataset.image_reference(i)).stem.split("_")[0] for i in dataset.image_ids]
    names = sorted(set(groups))
    _, val_groups = split_ids(len(names), val_fraction, seed)
    val_names = {names[i] for i in val_groups}
    val = [i for i, g in zip(dataset.image_ids, groups) if g in val_names]
    train = [i for i, g in zip(dataset.image_ids, groups) if g not in val_names]
    return subset_dataset(dataset, train), subset_dataset(dataset, val)
