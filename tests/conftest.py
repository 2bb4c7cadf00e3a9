"""Shared test fixtures. Tests that need ../shared/data fail (not skip) under CI=true."""

import os

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def require_data(*parts):
    """Path to a real dataset; skip locally when missing, fail under CI=true."""
    from kseg.data.paths import dataset_path

    path = dataset_path(*parts)
    if not path.exists():
        message = f"real data missing: {path} (set KSEG_DATA_DIR or place ../shared/data)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def car_damage_dir():
    return require_data("car_damage", "dataset")


@pytest.fixture
def smoke_dir():
    return require_data("smoke_fss", "FSS")


@pytest.fixture
def camvid_dir():
    return require_data("road_camvid", "CamVid")
