"""`kseg info`: versions, backend, devices, where the data and the weights are."""

import importlib
import os

DATASETS = {
    "car_damage": ("car_damage", "dataset"),
    "smoke_fss": ("smoke_fss", "FSS"),
    "road_camvid": ("road_camvid", "CamVid"),
}


def _version(module_name):
    try:
        return importlib.import_module(module_name).__version__
    except ImportError:
        return "not installed"
    except AttributeError:
        return "?"


def versions():
    """[(name, version)] of kseg and the libraries it runs on."""
    import keras

    rows = [("kseg", _version("kseg")), ("keras", keras.__version__),
            ("backend", keras.backend.backend())]
    for name in ("tensorflow", "jax", "torch", "numpy", "h5py", "pycocotools", "skimage"):
        rows.append((name, _version(name)))
    return rows


def devices():
    """Device names the active backend sees."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            return [f"{d.device_type}:{d.name}" for d in tf.config.list_physical_devices()]
        if backend == "jax":
            import jax

            return [str(d) for d in jax.devices()]
        if backend == "torch":
            import torch

            cuda = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
            return ["cpu", *cuda]
    except Exception as exc:  # noqa: BLE001 - info must never crash on a broken driver
        return [f"unknown ({exc})"]
    return ["cpu"]


def data_rows():
    """[(dataset, path, present)] for the shared datasets."""
    from kseg.data.paths import dataset_path

    return [(name, str(dataset_path(*parts)), dataset_path(*parts).exists())
            for name, parts in DATASETS.items()]


def weights_rows():
    """(cache folder, [(name, path, cached)]) for the registered weights."""
    from kseg import weights

    rows = [(w.name, weights.weights_path(w.name), os.path.exists(weights.weights_path(w.name)))
            for w in weights.list_weights()]
    folder = os.path.dirname(rows[0][1]) if rows else ""
    return folder, rows


def run(args):
    from kseg.data.paths import data_dir

    for name, version in versions():
        print(f"{name:12} {version}")
    print(f"{'devices':12} {', '.join(devices())}")
    print(f"\ndata dir     {data_dir()} ({'found' if data_dir().is_dir() else 'missing'};"
          f" set KSEG_DATA_DIR to change)")
    for name, path, present in data_rows():
        print(f"  {name:12} {'present' if present else 'missing':8} {path}")
    folder, rows = weights_rows()
    print(f"\nweights cache {folder}")
    for name, _path, cached in rows:
        print(f"  {name:20} {'cached' if cached else 'not cached'}")
    extra = sorted(set(os.listdir(folder)) - {os.path.basename(r[1]) for r in rows}) \
        if os.path.isdir(folder) else []
    if extra:
        print(f"  other files: {', '.join(extra)}")
    return 0
