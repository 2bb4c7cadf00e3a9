"""Loading Keras 2 / Matterport HDF5 weight files into Keras 3 models by layer name."""

import os

import h5py
import keras
import numpy as np
import pytest
from keras import layers as KL

from kseg.saving import LoadReport, load_weights_by_name, read_weight_groups
from kseg.saving.matterport_h5 import fixture_from_model, write_matterport_fixture

TSV = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "reference",
                        "matterport_h5_weights_r101_coco.tsv")


def build_rpn(depth, anchors_per_location=3, width=8):
    """Matterport's `build_rpn_model` with a narrow shared conv."""
    feature_map = keras.Input((None, None, depth), name="input_rpn_feature_map")
    shared = KL.Conv2D(width, 3, padding="same", activation="relu",
                       name="rpn_conv_shared")(feature_map)
    class_raw = KL.Conv2D(2 * anchors_per_location, 1, name="rpn_class_raw")(shared)
    bbox = KL.Conv2D(4 * anchors_per_location, 1, name="rpn_bbox_pred")(shared)
    return keras.Model(feature_map, [class_raw, bbox], name="rpn_model")


def build_model(num_classes=3):
    """A tiny Keras 3 model with Matterport's names and structure."""
    image = keras.Input((8, 8, 3), name="input_image")
    x = KL.Conv2D(4, 3, padding="same", name="conv1")(image)
    x = KL.BatchNormalization(name="bn_conv1")(x)
    p2 = KL.Activation("relu", name="activation_1")(x)
    p3 = KL.MaxPooling2D(name="fpn_p3pool")(p2)
    rpn = build_rpn(depth=4)
    rpn_outputs = [*rpn(p2), *rpn(p3)]  # shared RPN, as Matterport calls it per level
    rois = keras.Input((2, 5, 5, 4), name="input_pooled_rois")
    c = KL.TimeDistributed(KL.Conv2D(6, 5), name="mrcnn_class_conv1")(rois)
    c = KL.TimeDistributed(KL.BatchNormalization(), name="mrcnn_class_bn1")(c)
    c = KL.Activation("relu", name="activation_2")(c)
    shared = KL.Reshape((2, 6), name="pool_squeeze")(c)
    logits = KL.TimeDistributed(KL.Dense(num_classes), name="mrcnn_class_logits")(shared)
    bbox = KL.TimeDistributed(KL.Dense(4 * num_classes), name="mrcnn_bbox_fc")(shared)
    mask_rois = keras.Input((2, 3, 3, 4), name="input_mask_rois")
    mask = KL.TimeDistributed(KL.Conv2DTranspose(4, 2, strides=2), name="mrcnn_mask_deconv")(
        mask_rois)
    return keras.Model([image, rois, mask_rois], [*rpn_outputs, logits, bbox, mask])


def variable_for(model, key):
    """The variable an h5 dataset path ``group/owner/var:0`` belongs to, found by hand."""
    group, owner, var = key.split(":")[0].split("/")
    layer = model.get_layer(group)
    if owner != group:
        layer = layer.get_layer(owner)
    (variable,) = [v for v in layer.weights if v.path.split("/")[-1] == var]
    return variable


def random_inputs(seed=1):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((1, 8, 8, 3)).astype("float32"),
            rng.standard_normal((1, 2, 5, 5, 4)).astype("float32"),
            rng.standard_normal((1, 2, 3, 3, 4)).astype("float32")]


@pytest.fixture(scope="module")
def source():
    """A model and the arrays of a fixture written from it."""
    return build_model()


def assert_loaded(model, written):
    for key, array in written.items():
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable_for(model, key)),
                                      array, err_msg=key)


@pytest.mark.parametrize("variant", [
    {}, {"str_attrs": True}, {"full_model": True}, {"full_model": True, "str_attrs": True},
    {"split_layer_names": 3},
])
def test_every_array_lands_in_its_variable(tmp_path, source, variant):
    path = tmp_path / "w.h5"
    written = fixture_from_model(source, path, np.random.default_rng(0), **variant)
    model = build_model()
    report = load_weights_by_name(model, path, verbose=0)
    assert isinstance(report, LoadReport)
    assert_loaded(model, written)
    assert report.num_arrays == len(written) == 24
    assert set(report.loaded) == {"conv1", "bn_conv1", "rpn_model", "mrcnn_class_conv1",
                                  "mrcnn_class_bn1", "mrcnn_class_logits", "mrcnn_bbox_fc",
                                  "mrcnn_mask_deconv"}
    assert report.skipped == {} and report.missing_in_model == []


def test_fixture_layout_is_matterports(tmp_path, source):
    path = tmp_path / "w.h5"
    fixture_from_model(source, path)
    with h5py.File(path, "r") as f:
        names = [n.decode() for n in f.attrs["layer_names"]]
        assert names == [layer.name for layer in source.layers]
        assert list(f["input_image"].attrs["weight_names"]) == []
        assert list(f["rpn_model"].attrs["weight_names"]) == [
            b"rpn_conv_shared/kernel:0", b"rpn_conv_shared/bias:0", b"rpn_class_raw/kernel:0",
            b"rpn_class_raw/bias:0", b"rpn_bbox_pred/kernel:0", b"rpn_bbox_pred/bias:0"]
        assert f["mrcnn_class_conv1/mrcnn_class_conv1/kernel:0"].shape == (5, 5, 4, 6)
        assert list(f["mrcnn_class_bn1"].attrs["weight_names"]) == [
            b"mrcnn_class_bn1/gamma:0", b"mrcnn_class_bn1/beta:0",
            b"mrcnn_class_bn1/moving_mean:0", b"mrcnn_class_bn1/moving_variance:0"]
        assert f["mrcnn_mask_deconv/mrcnn_mask_deconv/kernel:0"].shape == (2, 2, 4, 4)


def test_loaded_model_matches_directly_set_model(tmp_path, source):
    path = tmp_path / "w.h5"
    written = fixture_from_model(source, path)
    loaded = build_model()
    load_weights_by_name(loaded, path, verbose=0)
    direct = build_model()
    for layer in direct.layers:
        if layer.weights:
            layer.set_weights([v for k, v in written.items() if k.startswith(layer.name + "/")])
    inputs = random_inputs()
    for a, b in zip(loaded.predict(inputs, verbose=0), direct.predict(inputs, verbose=0)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("exclude", [
    ["mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_bbox", "mrcnn_mask"],
    [r"mrcnn_(class_logits|bbox_fc)"],
])
def test_exclude_allows_another_class_count(tmp_path, source, exclude):
    path = tmp_path / "w.h5"
    written = fixture_from_model(source, path)
    model = build_model(num_classes=5)
    before = keras.ops.convert_to_numpy(model.get_layer("mrcnn_bbox_fc").weights[0])
    report = load_weights_by_name(model, path, exclude=exclude, verbose=0)
    assert report.skipped == {"mrcnn_class_logits": "excluded", "mrcnn_bbox_fc": "excluded"}
    assert_loaded(model, {k: v for k, v in written.items()
                          if not k.startswith(("mrcnn_class_logits", "mrcnn_bbox_fc"))})
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model.get_layer("mrcnn_bbox_fc").weights[0]), before)
    assert "excluded" in report.summary() and "mrcnn_bbox_fc" in str(report)


def test_mismatch_raises_named_error_and_assigns_nothing(tmp_path, source):
    path = tmp_path / "w.h5"
    fixture_from_model(source, path)
    model = build_model(num_classes=5)
    before = keras.ops.convert_to_numpy(model.get_layer("conv1").weights[0])
    with pytest.raises(ValueError) as info:
        load_weights_by_name(model, path, verbose=0)
    message = str(info.value)
    assert "layer 'mrcnn_bbox_fc' weight 'kernel': file has (6, 12), model has (6, 20)" in message
    assert "mrcnn_class_logits" in message and "exclude=[" in message
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model.get_layer("conv1").weights[0]), before)


def test_skip_mismatch_reports_and_loads_the_rest(tmp_path, source, capsys):
    path = tmp_path / "w.h5"
    fixture_from_model(source, path)
    report = load_weights_by_name(build_model(num_classes=5), path, skip_mismatch=True)
    assert report.skipped["mrcnn_bbox_fc"].startswith("shape mismatch")
    assert set(report.skipped) == {"mrcnn_class_logits", "mrcnn_bbox_fc"}
    assert "Loaded 20 arrays into 6 layers" in capsys.readouterr().out


def test_freezing_inner_rpn_layer_before_loading(tmp_path, source):
    path = tmp_path / "w.h5"
    written = fixture_from_model(source, path)
    model = build_model()
    model.get_layer("rpn_model").get_layer("rpn_conv_shared").trainable = False
    model.get_layer("mrcnn_class_bn1").trainable = False
    load_weights_by_name(model, path, verbose=0)
    assert_loaded(model, written)


def test_groups_missing_in_model_and_layers_missing_in_file(tmp_path):
    rng = np.random.default_rng(0)
    path = write_matterport_fixture(tmp_path / "w.h5", [
        ("input_image", []),
        ("conv1", [("conv1/kernel:0", rng.random((3, 3, 3, 4))), ("conv1/bias:0", np.ones(4))]),
        ("res2a_branch2a", [("res2a_branch2a/kernel:0", np.ones((1, 1, 4, 4)))]),
    ])
    model = build_model()
    report = load_weights_by_name(model, path, verbose=0)
    assert report.loaded == ["conv1"] and report.missing_in_model == ["res2a_branch2a"]
    assert report.skipped["rpn_model"] == "not in file"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.get_layer("conv1").bias), 1.0)


def test_keras3_weights_file_gets_a_clear_error(tmp_path):
    model = build_model()
    model.save_weights(tmp_path / "k3.weights.h5")
    with pytest.raises(ValueError, match="not a Keras 2 HDF5 weights file"):
        load_weights_by_name(model, tmp_path / "k3.weights.h5")


# === The real names of mask_rcnn_coco.h5 ===

REAL_GROUPS = ["conv1", "bn_conv1", "rpn_model", "mrcnn_class_logits", "mrcnn_mask_bn4",
               "mrcnn_mask"]


def read_tsv(path):
    """``{group: [(weight_name, shape)]}`` from the reference TSV."""
    groups = {}
    with open(path) as f:
        next(f)
        for line in f:
            group, _, weight, shape = line.rstrip("\n").split("\t")
            dims = tuple(int(d) for d in shape.strip("()").split(",") if d.strip())
            groups.setdefault(group, []).append((weight, dims))
    return groups


def build_real_shaped_model():
    """Layers with the real names and shapes of the chosen groups (R101 COCO)."""
    image = keras.Input((32, 32, 3), name="input_image")
    x = KL.Conv2D(64, 7, strides=2, padding="same", name="conv1")(image)
    x = KL.BatchNormalization(name="bn_conv1")(x)
    feature_map = keras.Input((4, 4, 256), name="fpn_p2")
    rpn = build_rpn(depth=256, width=512)
    fc = keras.Input((2, 1024), name="pool_squeeze")
    logits = KL.TimeDistributed(KL.Dense(81), name="mrcnn_class_logits")(fc)
    mask_in = keras.Input((2, 4, 4, 256), name="mrcnn_mask_conv4_out")
    m = KL.TimeDistributed(KL.BatchNormalization(), name="mrcnn_mask_bn4")(mask_in)
    m = KL.TimeDistributed(KL.Conv2D(81, 1, activation="sigmoid"), name="mrcnn_mask")(m)
    return keras.Model([image, feature_map, fc, mask_in], [x, *rpn(feature_map), logits, m])


def test_fixture_with_real_matterport_names(tmp_path):
    if not os.path.exists(TSV):
        pytest.skip(f"reference TSV missing: {TSV}")
    spec = read_tsv(TSV)
    assert sum(len(weights) for weights in spec.values()) == 690
    rng = np.random.default_rng(0)
    layers = [("input_image", [])] + [
        (g, [(w, (rng.uniform(0.5, 1.5, s) if "variance" in w else rng.standard_normal(s))
              .astype("float32")) for w, s in spec[g]]) for g in REAL_GROUPS]
    path = write_matterport_fixture(tmp_path / "coco_subset.h5", layers)
    with h5py.File(path, "r") as f:
        assert [n.decode() for n in f.attrs["layer_names"]] == ["input_image", *REAL_GROUPS]
        for group in REAL_GROUPS:
            names = [n.decode() for n in f[group].attrs["weight_names"]]
            assert names == [w for w, _ in spec[group]]
            assert [f[group][w].shape for w in names] == [s for _, s in spec[group]]
        assert f["/rpn_model/rpn_conv_shared/kernel:0"].shape == (3, 3, 256, 512)
    groups = read_weight_groups(path)
    model = build_real_shaped_model()
    report = load_weights_by_name(model, path, verbose=0)
    assert report.num_arrays == sum(len(spec[g]) for g in REAL_GROUPS) == 20
    for group in REAL_GROUPS:
        for weight, array in groups[group]:
            np.testing.assert_array_equal(
                keras.ops.convert_to_numpy(variable_for(model, f"{group}/{weight}")), array)


def test_unmatched_names_fall_back_to_legacy_order(tmp_path):
    kernel, bias = np.full((3, 3, 3, 4), 0.25, "float32"), np.arange(4, dtype="float32")
    path = write_matterport_fixture(tmp_path / "w.h5", [
        ("conv1", [("param_0", kernel), ("param_1", bias)])])
    model = build_model()
    load_weights_by_name(model, path, verbose=0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.get_layer("conv1").bias), bias)


def test_group_found_in_a_nested_backbone_model(tmp_path):
    image = keras.Input((8, 8, 3), name="input_image")
    inner_in = keras.Input((8, 8, 3))
    backbone = keras.Model(inner_in, KL.Conv2D(4, 3, name="conv1")(inner_in), name="backbone")
    model = keras.Model(image, KL.Dense(2, name="head")(backbone(image)))
    bias = np.arange(4, dtype="float32")
    path = write_matterport_fixture(tmp_path / "w.h5", [
        ("conv1", [("conv1/kernel:0", np.ones((3, 3, 3, 4))), ("conv1/bias:0", bias)])])
    report = load_weights_by_name(model, path, verbose=0)
    assert report.loaded == ["conv1"] and report.skipped == {"head": "not in file"}
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(backbone.get_layer("conv1").bias), bias)
