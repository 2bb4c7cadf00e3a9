"""SavedModel / ONNX / TFLite exports against the Keras models they come from.

The SavedModels are reloaded in a fresh Python process that never imports kseg, run
on uint8 images of two sizes, and compared with `MaskRCNN.detect` / `predict_semantic`.
Models are tiny and randomly initialised; a few weights are scaled so the outputs are
decisive (masks and class maps are not all near 0.5).
"""

import argparse
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="SavedModel export needs the TensorFlow backend")

SIZES = [(100, 150), (160, 90)]


def pattern(height, width, seed=0):
    """A smooth colour pattern with noise: [height, width, 3] uint8."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:height, :width]
    image = np.stack([128 + 100 * np.sin(x / 9.0 + c) * np.cos(y / 13.0 - c)
                      for c in range(3)], -1)
    return (image + rng.normal(0, 10, image.shape)).clip(0, 255).astype(np.uint8)


def png_bytes(image):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def tiny_maskrcnn_config():
    from kseg.models.mask_rcnn.presets import ShapesConfig

    return ShapesConfig(BACKBONE_FILTERS=8, TOP_DOWN_PYRAMID_SIZE=16, RPN_CONV_FILTERS=16,
                        FPN_CLASSIF_FC_LAYERS_SIZE=32, MASK_HEAD_FILTERS=16, NUM_CLASSES=3,
                        IMAGES_PER_GPU=1, DETECTION_MIN_CONFIDENCE=0.0,
                        POST_NMS_ROIS_INFERENCE=50, DETECTION_MAX_INSTANCES=8)


def tiny_maskrcnn():
    """An inference MaskRCNN whose detections are mostly foreground with crisp masks."""
    from kseg.models.mask_rcnn.model import MaskRCNN

    keras.utils.set_random_seed(0)
    model = MaskRCNN("inference", tiny_maskrcnn_config(), model_dir="logs")
    logits = model.keras_model.get_layer("mrcnn_class_logits")
    kernel, bias = logits.get_weights()
    logits.set_weights([kernel * 4, np.array([-4.0, 0.0, 0.0], np.float32)])
    mask = model.keras_model.get_layer("mrcnn_mask")
    kernel, bias = mask.get_weights()
    mask.set_weights([kernel * 30, bias])
    return model


def sharpen(model, names, seed=0):
    """Scale up the score layers so argmax decisions are not near ties."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.name in names:
            kernel, *rest = layer.get_weights()
            layer.set_weights([rng.normal(0, 5, kernel.shape).astype(np.float32), *rest])
    return model


def tiny_semantic(kind):
    """(model, config) for a tiny U-Net or FCN-8s at IMAGE_MAX_DIM 64."""
    from kseg.config import FCNConfig, UNetConfig

    keras.utils.set_random_seed(1)
    if kind == "unet":
        from kseg.models.unet import build_unet

        config = UNetConfig(NUM_CLASSES=3, UNET_BASE_FILTERS=4, UNET_DEPTH=3,
                            IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=64)
        return sharpen(build_unet(config), {"classifier"}), config
    from kseg.models.fcn import build_fcn

    config = FCNConfig(NUM_CLASSES=3, ENCODER_WIDTH=0.125, FCN_FC_FILTERS=16,
                       IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=64)
    return sharpen(build_fcn(config), {"score_fr", "score_pool4", "score_pool3"}), config


LOADER = r"""
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import tensorflow as tf
root, = sys.argv[1:]
inputs = np.load(os.path.join(root, "inputs.npz"))
out = {}
for kind in ("maskrcnn", "unet", "fcn"):
    served = tf.saved_model.load(os.path.join(root, kind))
    fn = served.signatures["serving_default"]
    for i in range(2):
        for key, value in fn(images=tf.constant(inputs[f"image{i}"][None])).items():
            out[f"{kind}/{i}/{key}"] = value.numpy()[0]
    pair = np.stack([inputs["image0"]] * 2)
    result = fn(images=tf.constant(pair))
    out[f"{kind}/pair"] = result[sorted(result)[0]].numpy()
    encoded = tf.constant([inputs["png0"].tobytes()])
    for key, value in served.signatures["image_bytes"](image_bytes=encoded).items():
        out[f"{kind}/png/{key}"] = value.numpy()[0]
assert "kseg" not in sys.modules, "the SavedModel must load without kseg"
np.savez(os.path.join(root, "outputs.npz"), **out)
"""


@pytest.fixture(scope="module")
def models():
    """{"maskrcnn": MaskRCNN, "unet": (model, config), "fcn": (model, config)}."""
    return {"maskrcnn": tiny_maskrcnn(), "unet": tiny_semantic("unet"),
            "fcn": tiny_semantic("fcn")}


@pytest.fixture(scope="module")
def served(models, tmp_path_factory):
    """Exports the three models and reruns them in a kseg-free process.

    Returns (images, references, outputs): references[kind] holds the Keras results
    for the two images; outputs maps "kind/index/output" to the SavedModel's arrays.
    """
    from kseg.export import export_saved_model
    from kseg.semantic.predict import predict_semantic

    root = tmp_path_factory.mktemp("served")
    images = [pattern(h, w, seed=i) for i, (h, w) in enumerate(SIZES)]
    references = {"maskrcnn": models["maskrcnn"].detect(images)}
    export_saved_model(models["maskrcnn"], root / "maskrcnn")
    for kind in ("unet", "fcn"):
        model, config = models[kind]
        references[kind] = predict_semantic(model, config, images, batch_size=1)
        export_saved_model(model, root / kind, config=config)
    np.savez(root / "inputs.npz", image0=images[0], image1=images[1],
             png0=np.frombuffer(png_bytes(images[0]), np.uint8))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-c", LOADER, str(root)], check=True, cwd=root, env=env,
                   timeout=120)
    outputs = dict(np.load(root / "outputs.npz"))
    return images, references, outputs


def box_iou(a, b):
    y1, x1 = np.maximum(a[0], b[0]), np.maximum(a[1], b[1])
    y2, x2 = np.minimum(a[2], b[2]), np.minimum(a[3], b[3])
    inter = max(y2 - y1, 0) * max(x2 - x1, 0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / max(union, 1e-9)


def mask_iou(a, b):
    """IoU of two bool masks; 1 when both are empty."""
    union = np.logical_or(a, b).sum()
    return np.logical_and(a, b).sum() / union if union else 1.0


def assert_detections_match(reference, out, prefix):
    """`detect` result dict vs one image's SavedModel outputs (matched by class + box)."""
    count = int(out[f"{prefix}/num_detections"])
    assert count == len(reference["scores"]) > 0
    boxes = out[f"{prefix}/detection_boxes"][:count]
    classes = out[f"{prefix}/detection_classes"][:count]
    scores = out[f"{prefix}/detection_scores"][:count]
    masks = out[f"{prefix}/detection_masks"][:count].astype(bool)
    assert masks.shape[1:] == reference["masks"].shape[:2]
    assert np.all(out[f"{prefix}/detection_classes"][count:] == 0)
    for i, ref_box in enumerate(reference["rois"]):
        candidates = [j for j in range(count) if classes[j] == reference["class_ids"][i]]
        j = max(candidates, key=lambda j: box_iou(ref_box, boxes[j]))
        assert np.abs(boxes[j] - ref_box).max() <= 2
        assert abs(scores[j] - reference["scores"][i]) < 1e-3
        assert mask_iou(masks[j], reference["masks"][..., i]) > 0.9


@pytest.mark.parametrize("index", [0, 1])
def test_maskrcnn_saved_model_matches_detect(served, index):
    _, references, outputs = served
    assert_detections_match(references["maskrcnn"][index], outputs, f"maskrcnn/{index}")


@pytest.mark.parametrize("kind", ["unet", "fcn"])
@pytest.mark.parametrize("index", [0, 1])
def test_semantic_saved_model_matches_predict(served, kind, index):
    images, references, outputs = served
    class_maps, probabilities = references[kind]
    class_map = outputs[f"{kind}/{index}/class_map"]
    probs = outputs[f"{kind}/{index}/probabilities"]
    assert class_map.shape == images[index].shape[:2] and class_map.dtype == np.int32
    assert probs.shape == probabilities[index].shape
    assert np.mean(class_map == class_maps[index]) > 0.99
    assert np.abs(probs - probabilities[index]).max() < 0.05


@pytest.mark.parametrize("kind", ["maskrcnn", "unet", "fcn"])
def test_image_bytes_and_batches(served, kind):
    _, _, outputs = served
    first = "detection_boxes" if kind == "maskrcnn" else "class_map"
    np.testing.assert_allclose(outputs[f"{kind}/png/{first}"], outputs[f"{kind}/0/{first}"],
                               atol=1e-5)
    pair = outputs[f"{kind}/pair"]
    single = outputs[f"{kind}/0/detection_boxes" if kind == "maskrcnn" else f"{kind}/0/class_map"]
    assert pair.shape == (2, *single.shape)
    np.testing.assert_allclose(pair[0], pair[1], atol=1e-4)


def test_box_masks_paste_like_unmold_mask(models, served):
    """full_masks=False gives 28x28 probabilities that `unmold_mask` turns into detect's."""
    from kseg.data.pipelines.molding import unmold_mask
    from kseg.export.maskrcnn_graph import make_serving_fn

    images, references, _ = served
    model = models["maskrcnn"]
    out = make_serving_fn(model.keras_model, model.config, full_masks=False)(
        tf.constant(images[1][None]))
    count = int(out["num_detections"][0])
    assert count == len(references["maskrcnn"][1]["scores"])
    assert out["detection_masks"].shape[2:] == tuple(model.config.MASK_SHAPE)
    boxes = out["detection_boxes"][0].numpy().astype(int)
    for i in range(count):
        pasted = unmold_mask(out["detection_masks"][0, i].numpy(), boxes[i], images[1].shape)
        assert mask_iou(pasted, references["maskrcnn"][1]["masks"][..., i]) > 0.9


def test_training_model_exports_inference_copy():
    from kseg.export import resolve_model
    from kseg.models.mask_rcnn.model import MaskRCNN

    keras.utils.set_random_seed(2)
    training = MaskRCNN("training", tiny_maskrcnn_config(), model_dir="logs")
    kind, inference, _ = resolve_model(training)
    assert kind == "maskrcnn" and inference.name == "mask_rcnn_inference"
    layers = [layer for layer in inference.layers if layer.weights]
    assert len(layers) > 40
    for layer in layers:
        expected = training.keras_model.get_layer(layer.name).get_weights()
        for got, want in zip(layer.get_weights(), expected, strict=True):
            np.testing.assert_array_equal(got, want)


@pytest.fixture
def unet_model(models):
    return models["unet"]


def test_refuses_overwrite_and_never_half_writes(tmp_path, unet_model, monkeypatch):
    from kseg.export import export_saved_model

    model, config = unet_model
    target = tmp_path / "unet"
    target.mkdir()
    (target / "keep.txt").write_text("old")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_saved_model(model, target, config=config)

    def broken_save(module, folder, signatures=None):
        (tmp_path / "partial-marker").write_text(folder)
        with open(os.path.join(folder, "saved_model.pb"), "wb") as f:
            f.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        export_saved_model(model, target, config=config, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["partial-marker", "unet"]
    assert [p.name for p in target.iterdir()] == ["keep.txt"]


def test_cli_exports_semantic_checkpoint(tmp_path, unet_model):
    from kseg.cli import export as cli_export

    model, config = unet_model
    run_dir = tmp_path / "logs" / "unet20260101T0000"
    run_dir.mkdir(parents=True)
    model.save_weights(run_dir / "kseg_unet_0001.weights.h5")
    config.to_json(run_dir / "config.json")
    parser = cli_export.add_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["unet", "--weights", "last", "--logs", str(tmp_path / "logs"),
                              "--out", str(tmp_path / "served"), "--no-image-bytes"])
    assert cli_export.run(args) == 0
    meta = json.loads((tmp_path / "served" / "assets.extra" / "kseg_export.json").read_text())
    assert meta["kind"] == "semantic" and meta["signatures"] == ["serving_default"]
    served = tf.saved_model.load(str(tmp_path / "served"))
    image = pattern(40, 50)
    out = served.signatures["serving_default"](images=tf.constant(image[None]))
    assert out["class_map"].shape == (1, 40, 50)


@pytest.mark.parametrize("kind", ["unet", "fcn"])
def test_onnx_matches_keras(tmp_path, models, kind):
    pytest.importorskip("tf2onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    from kseg.export import export_onnx

    model, _ = models[kind]
    path = export_onnx(model, tmp_path / f"{kind}.onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for shape in [(2, 64, 64, 3), (1, 50, 70, 3)]:
        x = np.random.default_rng(0).uniform(0, 255, shape).astype(np.float32)
        got = session.run(None, {session.get_inputs()[0].name: x})[0]
        np.testing.assert_allclose(got, model.predict_on_batch(x), atol=1e-3)


def test_maskrcnn_onnx_matches_keras(tmp_path, models):
    pytest.importorskip("tf2onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    from kseg.export import export_onnx
    from kseg.models.mask_rcnn.inference import mold_inputs

    model = models["maskrcnn"]
    path = export_onnx(model, tmp_path / "maskrcnn.onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input_image", "input_image_meta"]
    assert [o.name for o in session.get_outputs()] == model.keras_model.output_names
    molded, metas, _ = mold_inputs([pattern(100, 120), pattern(64, 50, seed=1)], model.config)
    got = session.run(None, {"input_image": molded.astype(np.float32),
                             "input_image_meta": metas.astype(np.float32)})
    want = model.keras_model.predict_on_batch([molded, metas])
    assert (got[0][:, :, 4] > 0).sum() >= 2  # real detections, not an empty padded list
    for name, a, b in zip(model.keras_model.output_names, got, want):
        np.testing.assert_allclose(a, np.asarray(b), atol=1e-3, err_msg=name)


def test_tflite_matches_keras(tmp_path, unet_model):
    from kseg.export import export_tflite

    model, config = unet_model
    path = export_tflite(model, tmp_path / "unet.tflite", config=config)
    interpreter = tf.lite.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    x = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(got, model.predict_on_batch(x), atol=1e-3)
