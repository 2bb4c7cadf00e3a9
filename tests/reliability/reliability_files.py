"""Corpus cases for settings and files: Config types, weight and model files."""

import zipfile

import numpy as np
from reliability_corpus import Case


def config(cls_name="UNetConfig", **overrides):
    import kseg
    from kseg.models.mask_rcnn.config import MaskRCNNConfig

    classes = {"UNetConfig": kseg.UNetConfig, "FCNConfig": kseg.FCNConfig,
               "MaskRCNNConfig": MaskRCNNConfig}
    return classes[cls_name](**{"NUM_CLASSES": 2, **overrides})


def _config_case(name, match, cls_name="UNetConfig", **overrides):
    return Case(name, "config", "error", lambda f: config(cls_name, **overrides), match)


def config_cases():
    expected = r"has the wrong type: expected"
    return [
        _config_case("config_num_classes_str", rf"NUM_CLASSES = '3' \(str\) {expected} an int",
                     NUM_CLASSES="3"),
        _config_case("config_images_per_gpu_float", rf"IMAGES_PER_GPU = 2\.0 .*{expected} an int",
                     IMAGES_PER_GPU=2.0),
        _config_case("config_learning_rate_str", rf"LEARNING_RATE = '0\.01' .*{expected} a number",
                     LEARNING_RATE="0.01"),
        _config_case("config_train_bn_str", rf"TRAIN_BN = 'yes' .*{expected} True or False",
                     TRAIN_BN="yes"),
        _config_case("config_anchor_scales_int", rf"RPN_ANCHOR_SCALES = 32 .*{expected} a list",
                     "MaskRCNNConfig", RPN_ANCHOR_SCALES=32),
        _config_case("config_loss_weights_list", rf"LOSS_WEIGHTS = \[1\] .*{expected} a dict",
                     "MaskRCNNConfig", LOSS_WEIGHTS=[1]),
        _config_case("config_max_dim_not_multiple_of_64", r"IMAGE_MAX_DIM = 500 .*multiple of 64",
                     IMAGE_MAX_DIM=500, IMAGE_MIN_DIM=256),
        _config_case("config_unknown_optimizer", r"OPTIMIZER = 'rmsprop'.*sgd, adam, adamw",
                     OPTIMIZER="rmsprop"),
        _config_case("config_lower_case_name", r"'num_classes'.*UPPER_CASE", num_classes=3),
        _config_case("config_mean_pixel_length", r"MEAN_PIXEL.*3 values", MEAN_PIXEL=[1, 2]),
        _config_case("config_nonfinite_mode", r"NONFINITE_LOSS = 'ignore'.*stop or skip",
                     NONFINITE_LOSS="ignore"),
        Case("config_subclass_str_attribute", "config", "error", _subclass_str,
             rf"Balloon\.NUM_CLASSES = '4' \(str\) {expected} an int"),
        Case("config_valid_mixed_numbers", "config", "ok",
             lambda f: config(LEARNING_RATE=1, IMAGE_MIN_SCALE=1.5, TRAIN_BN=None,
                              MEAN_PIXEL=(1, 2, 3)),
             check=lambda c: c.BATCH_SIZE == 4 and c.LEARNING_RATE == 1),
    ]


def _subclass_str(folder):
    from kseg.models.mask_rcnn.config import MaskRCNNConfig

    class Balloon(MaskRCNNConfig):
        NUM_CLASSES = "4"

    return Balloon()


def tiny_model(units=3):
    import keras

    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(units, name="a")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="b")(hidden))


def _weights_of(model):
    return [np.array(w) for w in model.get_weights()]


def _load_bytes(name, data, loader="atomic"):
    def run(folder):
        from kseg.saving.files import load_keras_model, load_weights_atomic
        from kseg.saving.legacy_h5 import load_weights_by_name

        path = folder / name
        path.write_bytes(data)
        if loader == "keras":
            return load_keras_model(path)
        if loader == "legacy":
            return load_weights_by_name(tiny_model(), path, verbose=0)
        return load_weights_atomic(tiny_model(), path)
    return run


def _zip_bytes(folder):
    path = folder / "w.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "not weights")
    return path.read_bytes()


def _unchanged_after_failed_load(kind):
    """Load a file whose LAST layer does not fit; the model must keep its weights."""
    def run(folder):
        from kseg.saving.files import load_weights_atomic
        from kseg.saving.legacy_h5 import load_weights_by_name
        from kseg.saving.matterport_h5 import write_matterport_fixture

        model = tiny_model()
        before = _weights_of(model)
        wrong = [np.ones([4, 3]), np.ones([3]), np.ones([3, 5]), np.ones([5])]
        if kind == "legacy":
            path = write_matterport_fixture(folder / "w.h5", [
                ("a", [("a/kernel:0", wrong[0]), ("a/bias:0", wrong[1])]),
                ("b", [("b/kernel:0", wrong[2]), ("b/bias:0", wrong[3])])])
            load = lambda: load_weights_by_name(model, path, verbose=0)  # noqa: E731
        else:
            source = _two_layer(4, 3, 5)
            path = folder / "w.weights.h5"
            source.save_weights(path)
            load = lambda: load_weights_atomic(model, path)  # noqa: E731
        try:
            load()
        except (ValueError, OSError) as e:
            unchanged = all(np.array_equal(a, b) for a, b in zip(before, _weights_of(model)))
            if not unchanged:
                raise AssertionError("a failed load changed the model") from e
            raise
        return model
    return run


def _two_layer(inputs, hidden, outputs):
    import keras

    x = keras.Input((inputs,))
    h = keras.layers.Dense(hidden, name="a")(x)
    return keras.Model(x, keras.layers.Dense(outputs, name="b")(h))


def _lambda_model(folder):
    import keras

    from kseg.saving.files import load_keras_model

    x = keras.Input((4,))
    model = keras.Model(x, keras.layers.Lambda(lambda t: t * 2)(x))
    model.save(folder / "crafted.keras")
    return load_keras_model(folder / "crafted.keras")


def _keras_round_trip(folder):
    from kseg.saving.files import load_keras_model

    model = tiny_model()
    model.save(folder / "ok.keras")
    loaded = load_keras_model(folder / "ok.keras")
    return all(np.array_equal(a, b) for a, b in zip(_weights_of(model), _weights_of(loaded)))


def weights_cases():
    html = b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head></html>"
    return [
        Case("weights_html_page_as_h5", "weights", "error",
             _load_bytes("w.h5", html, "legacy"),
             r"w\.h5 is an HTML page.*\d+ bytes.*<!DOCTYPE html.*expected an HDF5"),
        Case("weights_text_file", "weights", "error", _load_bytes("w.weights.h5", b"weights\n"),
             r"w\.weights\.h5 is a text file, 8 bytes.*expected an HDF5"),
        Case("weights_empty_file", "weights", "error", _load_bytes("w.h5", b"", "legacy"),
             r"w\.h5 is an empty file \(0 bytes"),
        Case("weights_lfs_pointer", "weights", "error",
             _load_bytes("w.h5", b"version https://git-lfs.github.com/spec/v1\noid x\n",
                         "legacy"), r"w\.h5 is a Git LFS pointer"),
        Case("weights_zip_as_h5", "weights", "error",
             lambda f: _load_bytes("z.h5", _zip_bytes(f))(f), r"z\.h5 is a zip archive"),
        Case("weights_h5_as_keras_model", "weights", "error",
             lambda f: (tiny_model().save_weights(f / "w.weights.h5"),
                        __import__("shutil").copy(f / "w.weights.h5", f / "m.keras"),
                        _load_bytes("m2.keras", (f / "m.keras").read_bytes(), "keras")(f))[-1],
             r"m2\.keras is an HDF5 file.*expected a Keras model file"),
        Case("weights_missing_file", "weights", "error",
             lambda f: __import__("kseg.saving.files", fromlist=["x"]).load_weights_atomic(
                 tiny_model(), f / "none.h5"), r"none\.h5"),
        Case("weights_legacy_shape_mismatch_unchanged", "weights", "error",
             _unchanged_after_failed_load("legacy"), r"layer 'b'.*\(3, 5\).*\(3, 2\)"),
        Case("weights_keras_shape_mismatch_unchanged", "weights", "error",
             _unchanged_after_failed_load("keras"), r"w\.weights\.h5 does not fit the model"),
        Case("weights_keras_other_architecture", "weights", "error",
             lambda f: (tiny_model().save_weights(f / "w.weights.h5"),
                        __import__("kseg.saving.files", fromlist=["x"]).load_weights_atomic(
                            _one_layer(), f / "w.weights.h5"))[-1],
             r"holds 4 arrays but the model has 2 weights"),
        Case("keras_file_with_lambda_refused", "weights", "error", _lambda_model,
             r"crafted\.keras holds Python code.*safe_mode=True"),
        Case("keras_file_round_trip", "weights", "ok", _keras_round_trip, check=bool),
    ]


def _one_layer():
    import keras

    x = keras.Input((4,))
    return keras.Model(x, keras.layers.Dense(3, name="a")(x))


def cases():
    return config_cases() + weights_cases()
