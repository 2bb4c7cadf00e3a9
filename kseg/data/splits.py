"""Deterministic train/val splits for folders that ship one split only.

    train_ids, val_ids = split_ids(len(dataset), val_fraction=0.2, seed=0)
    train, val = split_dataset(dataset, val_fraction=0.2, seed=0)
    train, val = group_split(dataset, val_groups=["0001TP"])   # by drive / source photo
    print(describe_split(train, val))                            # which groups went where

The same (n, val_fraction, seed) gives the same split on every machine.
"""

import copy
from collections import Counter
from pathlib import Path

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


# === Group splits: no group (drive, source photo, ...) on both sides ===
def file_prefix(dataset, image_id, sep="_"):
    """The image's file stem up to the first `sep`: CamVid `0016E5_07959.png` -> "0016E5"
    (the drive), FSS `1000_0_1.jpg` -> "1000" (the source photo)."""
    return Path(dataset.image_reference(image_id)).stem.split(sep)[0]


def image_groups(dataset, key=None):
    """[group name of each image id] by `key(dataset, image_id) -> str` (default `file_prefix`)."""
    key = key or file_prefix
    return [str(key(dataset, i)) for i in dataset.image_ids]


def split_groups(groups, val_fraction=0.2, seed=0, val_groups=None):
    """Split image indices so that every group lies on one side only.

    Args:
        groups: [n] group name of each image.
        val_fraction: fraction of the GROUPS (sorted by name) drawn for validation by
            `split_ids(num_groups, val_fraction, seed)`; ignored when `val_groups` is given.
        seed: int seed of the draw.
        val_groups: names of the validation groups, or None to draw them.
    Returns:
        train_ids [n - k] int64, val_ids [k] int64 (sorted), val group names (sorted list).
    Raises:
        ValueError naming the unknown group when `val_groups` holds a name not in `groups`.
    """
    groups = [str(g) for g in groups]
    names = sorted(set(groups))
    if val_groups is None:
        _, picked = split_ids(len(names), val_fraction, seed)
        chosen = {names[i] for i in picked}
    else:
        chosen = {str(g) for g in ([val_groups] if isinstance(val_groups, str) else val_groups)}
        unknown = sorted(chosen - set(names))
        if unknown:
            raise ValueError(f"validation group(s) {unknown} not found; the data holds the "
                             f"groups {_preview(names)}.")
    in_val = np.array([g in chosen for g in groups], bool)
    ids = np.arange(len(groups), dtype=np.int64)
    return ids[~in_val], ids[in_val], sorted(chosen)


def group_split(dataset, val_fraction=0.2, seed=0, key=None, val_groups=None):
    """(train, val) datasets with no group on both sides (see `split_groups`).

    `key(dataset, image_id) -> str` names an image's group (default `file_prefix`: the
    drive of a CamVid frame, the source photo of an FSS tile). Both datasets get
    `.groups`: {group name: number of images}, for `describe_split`.
    """
    groups = image_groups(dataset, key)
    train_ids, val_ids, _ = split_groups(groups, val_fraction, seed, val_groups)
    train, val = subset_dataset(dataset, train_ids), subset_dataset(dataset, val_ids)
    train.groups = dict(Counter(groups[int(i)] for i in train_ids))
    val.groups = dict(Counter(groups[int(i)] for i in val_ids))
    return train, val


def parse_groups(text):
    """Comma-separated group names ("0006R0,0001TP") -> a list; None or "" -> None."""
    names = [name.strip() for name in (text or "").split(",") if name.strip()]
    return names or None


def describe_split(train, val, limit=12):
    """Which groups (`.groups` of `group_split`) went where, as two lines, e.g.
    'train: 367 images, 3 groups: 0001TP (62), 0006R0 (101), 0016E5 (204)'; a side with
    more than `limit` groups lists the first `limit` names and the count of the rest."""
    lines = []
    for side, dataset in (("train", train), ("val", val)):
        text = f"{side}: {len(dataset.image_ids)} images"
        groups = getattr(dataset, "groups", None)
        if groups:
            names = sorted(groups)
            shown = ", ".join(f"{g} ({groups[g]})" for g in names[:limit])
            more = f", ... and {len(names) - limit} more" if len(names) > limit else ""
            text += f", {len(names)} groups: {shown}{more}"
        lines.append(text)
    return "\n".join(lines)


def _preview(names, limit=12):
    more = f" ... ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def sequential_split(dataset, val_fraction=0.2):
    """(train, val) with the LAST `val_fraction` of the images (sorted by path) in val.

    Kept for code that used it; frames of one video are near-duplicates even a block
    apart, so prefer `group_split` (by drive) for honest validation.
    """
    order = sorted(dataset.image_ids, key=dataset.image_reference)
    count = max(1, int(round(len(order) * val_fraction)))
    return subset_dataset(dataset, sorted(order[:-count])), subset_dataset(dataset,
                                                                           sorted(order[-count:]))


def grouped_split(dataset, val_fraction=0.2, seed=0):
    """(train, val) by groups of images whose file stems share the prefix before the first
    "_" (tiles of one photo stay together): `group_split` with its default key."""
    return group_split(dataset, val_fraction, seed)
