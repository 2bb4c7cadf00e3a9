"""Group splits: no group (drive, source photo, user key) on both sides; deterministic."""

import numpy as np
import pytest

from kseg.data import Dataset, describe_split, group_split, image_groups, split_groups
from kseg.data.splits import file_prefix


def named_dataset(names):
    """A Dataset whose images are only file names (enough for splitting)."""
    dataset = Dataset()
    dataset.add_class("t", 1, "thing")
    for name in names:
        dataset.add_image("t", image_id=name, path=f"/data/images/{name}")
    dataset.prepare()
    return dataset


def frames():
    """Three 'drives' of unequal length plus tiles of FSS-style photos."""
    names = [f"0001TP_{i:05d}.png" for i in range(6)]
    names += [f"0006R0_{i:05d}.png" for i in range(10)]
    names += [f"0016E5_{i:05d}.png" for i in range(20)]
    return names


def test_file_prefix_and_groups():
    dataset = named_dataset(["0016E5_07959.png", "1000_0_1.jpg", "plain.jpg"])
    assert image_groups(dataset) == ["0016E5", "1000", "plain"]
    assert file_prefix(dataset, 1, sep="/") == "1000_0_1"


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("fraction", [0.2, 0.5])
def test_no_group_on_both_sides(seed, fraction):
    groups = [f"g{i % 13}" for i in range(200)]  # interleaved, as shuffled files would be
    train_ids, val_ids, val_groups = split_groups(groups, fraction, seed)
    train_set = {groups[i] for i in train_ids}
    val_set = {groups[i] for i in val_ids}
    assert not train_set & val_set
    assert val_set == set(val_groups) and len(val_set) == round(13 * fraction)
    assert sorted(np.concatenate([train_ids, val_ids]).tolist()) == list(range(200))


def test_split_groups_is_deterministic_and_depends_on_seed():
    groups = [f"photo{i // 3}" for i in range(90)]
    first = split_groups(groups, 0.2, seed=0)
    again = split_groups(list(reversed(groups))[::-1], 0.2, seed=0)
    np.testing.assert_array_equal(first[1], again[1])
    assert first[2] == again[2]
    assert any(split_groups(groups, 0.2, seed=s)[2] != first[2] for s in (1, 2, 3))


def test_named_validation_groups():
    dataset = named_dataset(frames())
    train, val = group_split(dataset, val_groups=["0006R0"])
    assert val.groups == {"0006R0": 10} and train.groups == {"0001TP": 6, "0016E5": 20}
    assert {file_prefix(val, i) for i in val.image_ids} == {"0006R0"}
    assert "0006R0" not in {file_prefix(train, i) for i in train.image_ids}
    text = describe_split(train, val)
    assert text.splitlines() == ["train: 26 images, 2 groups: 0001TP (6), 0016E5 (20)",
                                 "val: 10 images, 1 groups: 0006R0 (10)"]
    with pytest.raises(ValueError, match=r"\['0009XX'\].*0001TP, 0006R0, 0016E5"):
        group_split(dataset, val_groups="0009XX")


def test_user_key_function():
    dataset = named_dataset([f"cam{c}_day{d}_{i}.png" for c in range(4) for d in range(3)
                             for i in range(2)])

    def by_day(ds, image_id):
        return ds.image_reference(image_id).split("_")[1]

    train, val = group_split(dataset, val_fraction=0.34, seed=0, key=by_day)
    assert len(val.groups) == 1 and len(train.groups) == 2
    assert not set(train.groups) & set(val.groups)
    assert val.num_images == 8 and train.num_images == 16


def test_describe_split_shortens_many_groups():
    dataset = named_dataset([f"{p}_{t}.jpg" for p in range(30) for t in range(2)])
    train, val = group_split(dataset, 0.2, seed=0)
    lines = describe_split(train, val, limit=3).splitlines()
    assert lines[0].startswith("train: 48 images, 24 groups: ")
    assert lines[0].endswith("... and 21 more") and lines[0].count("(2)") == 3
    assert lines[1].startswith("val: 12 images, 6 groups: ") and lines[1].endswith("and 3 more")


@pytest.mark.data
def test_camvid_split_by_drive(camvid_dir):
    from kseg.data import load_camvid
    from kseg.data.formats.camvid import camvid_splits

    dataset = load_camvid(camvid_dir, camvid_splits(camvid_dir))
    assert dataset.num_images == 468
    train, val = group_split(dataset, val_groups="0006R0")
    assert val.groups == {"0006R0": 101}
    assert train.groups == {"0001TP": 62, "0016E5": 305}


@pytest.mark.data
def test_fss_split_by_source_photo(smoke_dir):
    from kseg.data import load_mask_folder

    folder = load_mask_folder(smoke_dir / "images", smoke_dir / "labels", class_names=["smoke"])
    train, val = group_split(folder, 0.2, seed=0)
    assert (train.num_images, val.num_images) == (492, 123)
    assert not set(train.groups) & set(val.groups)
    assert len(train.groups) + len(val.groups) == 475


def test_parse_groups():
    from kseg.data.splits import parse_groups

    assert parse_groups(" 0006R0, 0001TP,") == ["0006R0", "0001TP"]
    assert parse_groups("") is None and parse_groups(None) is None
