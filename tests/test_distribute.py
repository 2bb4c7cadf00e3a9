"""kseg.distribute: the config's DISTRIBUTION, GPU_COUNT, MIXED_PRECISION and JIT_COMPILE.

Multi-device runs happen in subprocesses (logical devices and strategies are fixed per
process), bounded in time. Tolerances: a 2-replica MirroredStrategy run and a one-device
run of the same global batch give per-step losses within 1e-4 relative (measured: U-Net
2e-6, FCN 0, Mask R-CNN 1e-5; float32 sums in a different order).
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from kseg import distribute
from kseg.config import ConfigError, UNetConfig

ROOT = Path(__file__).resolve().parents[1]
HELPERS = str(ROOT / "tests" / "models" / "mask_rcnn")

MIRRORED = r"""
import json, sys
import keras
if keras.backend.backend() == "tensorflow":  # JAX: XLA_FLAGS gives 2 host devices
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from keras import ops
sys.path.insert(0, sys.argv[2])
from helpers import TinyConfig
import kseg.models.mask_rcnn.rpn_targets as rpn_targets
import kseg.models.mask_rcnn.targets as targets
from kseg.config import FCNConfig, UNetConfig
from kseg.distribute import num_replicas
from kseg.data import ShapesDataset
from kseg.data.generated.synthetic import SmokeScenesDataset
from kseg.models.fcn import build_fcn
from kseg.models.mask_rcnn.model import MaskRCNN
from kseg.models.unet import build_unet
from kseg.train import InMemoryDataset, train_semantic

keras.utils.set_random_seed(0)
root, out, EPOCHS = sys.argv[1], {}, 3
RUNS = ((None, 1, 4), ("mirrored", 2, 2))  # (DISTRIBUTION, GPU_COUNT, IMAGES_PER_GPU)

def semantic(name, cls, build, **fields):
    curves, weights = [], None
    for dist, gpus, per in RUNS:
        config = cls(NAME=name, NUM_CLASSES=2, IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=64,
                     IMAGES_PER_GPU=per, GPU_COUNT=gpus, DISTRIBUTION=dist, STEPS_PER_EPOCH=1,
                     VALIDATION_STEPS=0, SEED=0, LR_SCHEDULE=None, **fields)
        model = build(config)
        weights = weights or model.get_weights()
        model.set_weights(weights)
        data = InMemoryDataset(SmokeScenesDataset(8, 64, 64, seed=0), config)
        history = train_semantic(model, config, data, None, epochs=EPOCHS,
                                 model_dir=f"{root}/{name}{gpus}", verbose=0)
        curves.append(history.history["loss"])
        out[f"{name}_replicas"] = num_replicas(config)
    out[name] = curves

semantic("unet", UNetConfig, build_unet, UNET_DEPTH=2, UNET_BASE_FILTERS=4)  # BatchNorm
semantic("fcn", FCNConfig, build_fcn, ENCODER_WIDTH=0.0625, FCN_FC_FILTERS=8, FCN_DROPOUT=0.0)

# TF: RPN and ROI sampling draw random numbers per replica; rank candidates in order
# instead, so both runs train on the same anchors and ROIs (JAX draws for the global
# batch either way).
def first_members(is_member, count, seed_generator):
    order = ops.cast(ops.arange(ops.shape(is_member)[1]), "float32")[None] * 1e-6
    keys = ops.pad(ops.where(is_member, 1.0, 0.0) - order, [[0, 0], [0, count]],
                   constant_values=-2.0)
    return ops.top_k(keys, count, sorted=True)[1]
targets._ranked_indices = first_members
rpn_targets._random_members = first_members

class Tiny(TinyConfig):  # trained BatchNorm, gradient clipping that bites
    SEED = 0
    GRADIENT_CLIP_NORM = 0.5

curves, weights = [], None
for dist, gpus, per in RUNS:
    config = Tiny(DISTRIBUTION=dist, GPU_COUNT=gpus, IMAGES_PER_GPU=per, STEPS_PER_EPOCH=1)
    model = MaskRCNN("training", config, model_dir=f"{root}/mrcnn{gpus}")
    weights = weights or model.keras_model.get_weights()
    model.keras_model.set_weights(weights)
    history = model.train(ShapesDataset(8, 64, 64, seed=4), None, learning_rate=1e-3,
                          epochs=EPOCHS, verbose=0)
    curves.append(history.history["loss"])
    out["mrcnn_parts"] = [history.history[k][0] for k in sorted(history.history) if "_" in k]
    out["mrcnn_replicas"] = num_replicas(config)
out["mrcnn"] = curves
print("RESULT " + json.dumps(out))
"""

WORKER = r"""
import hashlib, json, sys
import numpy as np
import keras
from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
from tensorflow.python.eager import context
# A loaded 2-core CI machine can starve a worker longer than the default heartbeat.
context.context().configure_coordination_service(
    service_type="standalone", service_leader="/job:worker/replica:0/task:0",
    heartbeat_timeout_in_ms=300_000,
    coordinated_jobs=[coordination_config_pb2.CoordinatedJob(name="worker", num_tasks=2)])
from kseg.config import UNetConfig
from kseg.data.generated.synthetic import SmokeScenesDataset
from kseg.models.unet import build_unet
from kseg.train import InMemoryDataset, train_semantic

keras.utils.set_random_seed(0)
config = UNetConfig(NAME="mw", NUM_CLASSES=2, IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=64,
                    IMAGES_PER_GPU=2, GPU_COUNT=2, DISTRIBUTION="multi_worker",
                    STEPS_PER_EPOCH=2, VALIDATION_STEPS=0, UNET_DEPTH=2, UNET_BASE_FILTERS=4,
                    SEED=0, LR_SCHEDULE=None)
model = build_unet(config)
data = InMemoryDataset(SmokeScenesDataset(8, 64, 64, seed=0), config)
history = train_semantic(model, config, data, None, epochs=2, model_dir=sys.argv[1], verbose=0)
weights = np.concatenate([np.ravel(w) for w in model.get_weights()])
print("RESULT " + json.dumps({
    "loss": history.history["loss"], "hash": hashlib.sha1(weights.tobytes()).hexdigest(),
    "replicas": int(model.distribute_strategy.num_replicas_in_sync)}), flush=True)
"""


XLA = r"""import json, sys, time
import numpy as np
import keras
sys.path.insert(0, sys.argv[2])
from helpers import TinyConfig
from kseg.config import FCNConfig, UNetConfig
from kseg.data import ShapesDataset
from kseg.data.pipelines.maskrcnn_pipeline import build_batch
from kseg.models.fcn import build_fcn
from kseg.models.mask_rcnn.model import MaskRCNN
from kseg.models.unet import build_unet
from kseg.train import compile_semantic

def counted(model, name):  # Python runs a step only while tracing it
    calls = {"n": 0}
    step = getattr(model, name)
    def wrapper(*args, **kwargs):
        calls["n"] += 1
        return step(*args, **kwargs)
    setattr(model, name, wrapper)
    return calls

out = {"backend": keras.backend.backend()}
rng = np.random.default_rng(0)
for name, config, build in [
    ("fcn", FCNConfig(NUM_CLASSES=2, ENCODER_WIDTH=0.0625, FCN_FC_FILTERS=8, JIT_COMPILE=True), build_fcn),
    ("unet", UNetConfig(NUM_CLASSES=2, UNET_DEPTH=2, UNET_BASE_FILTERS=4, JIT_COMPILE=True), build_unet)]:
    model = compile_semantic(build(config), config)
    model.optimizer.build(model.trainable_variables)  # no variable creation in the step
    train, predict = counted(model, "train_step"), counted(model, "predict_step")
    t = time.time()
    for i in range(3):
        x = rng.uniform(0, 255, (2, 32, 32, 3)).astype("float32")
        model.train_on_batch(x, (x[..., 0] > 128).astype("int32"))
        model.predict_on_batch(x)
    out[name] = [bool(model.jit_compile), train["n"], predict["n"], time.time() - t]
config = TinyConfig(JIT_COMPILE=True)
trainer = MaskRCNN("training", config, model_dir=sys.argv[1])
trainer.compile(1e-3)
trainer.keras_model.optimizer.build(trainer.keras_model.trainable_variables)
train = counted(trainer.keras_model, "train_step")
t = time.time()
for i in range(3):
    batch, _ = build_batch(ShapesDataset(6, 64, 64, seed=3), config, [2 * i, 2 * i + 1], rng=rng)
    trainer.keras_model.train_on_batch(batch)
out["mrcnn_train"] = [bool(trainer.keras_model.jit_compile), train["n"], time.time() - t]
detector = MaskRCNN("inference", config, model_dir=sys.argv[1])
predict = counted(detector.keras_model, "predict_step")
t = time.time()
for i in range(3):
    detector.detect([rng.integers(0, 255, (40 + 10 * i, 70, 3)).astype(np.uint8) for _ in range(2)])
out["mrcnn_detect"] = [bool(detector.keras_model.jit_compile), predict["n"], time.time() - t]
print("RESULT " + json.dumps(out))
"""


def _run(script, args, timeout=900, env=None):
    proc = subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT,
                          env=dict(os.environ, **(env or {})), capture_output=True, text=True,
                          timeout=timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, proc.stderr[-4000:]
    return json.loads(lines[-1][len("RESULT "):])


def _close(curve_a, curve_b, rtol=1e-4):
    return np.allclose(curve_a, curve_b, rtol=rtol, atol=0), (curve_a, curve_b)


# === Config ===
def test_gpu_count_needs_a_distribution():
    with pytest.raises(ConfigError, match="GPU_COUNT.*DISTRIBUTION = 'mirrored'"):
        UNetConfig(NUM_CLASSES=2, GPU_COUNT=2)
    config = UNetConfig(NUM_CLASSES=2, GPU_COUNT=2, IMAGES_PER_GPU=3, DISTRIBUTION="mirrored")
    assert config.BATCH_SIZE == 6  # the global batch: IMAGES_PER_GPU per replica
    with pytest.raises(ConfigError, match="DISTRIBUTION"):
        UNetConfig(NUM_CLASSES=2, DISTRIBUTION="horovod")
    with pytest.raises(ConfigError, match="MIXED_PRECISION"):
        UNetConfig(NUM_CLASSES=2, MIXED_PRECISION="float16")


def test_more_replicas_than_devices_is_a_clear_error():
    config = UNetConfig(NUM_CLASSES=2, GPU_COUNT=64, DISTRIBUTION="mirrored")
    with pytest.raises(distribute.DistributionError, match="GPU_COUNT = 64 replicas"):
        distribute.get_strategy(config)


def test_is_chief_reads_tf_config(monkeypatch):
    config = UNetConfig(NUM_CLASSES=2, DISTRIBUTION="multi_worker")
    cluster = {"worker": ["a:1", "b:2"]}
    for index, chief in ((0, True), (1, False)):
        monkeypatch.setenv("TF_CONFIG", json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}))
        assert distribute.is_chief(config) is chief
    monkeypatch.setenv("TF_CONFIG", json.dumps(
        {"cluster": {**cluster, "chief": ["c:3"]}, "task": {"type": "worker", "index": 0}}))
    assert distribute.is_chief(config) is False
    assert distribute.is_chief(UNetConfig(NUM_CLASSES=2)) is True  # not multi_worker


def test_optimizer_wrapping():
    sgd = keras.optimizers.SGD(0.1, clipnorm=1.0)
    fp16 = UNetConfig(NUM_CLASSES=2, MIXED_PRECISION="mixed_float16")
    assert isinstance(distribute.wrap_optimizer(sgd, fp16), keras.optimizers.LossScaleOptimizer)
    bf16 = UNetConfig(NUM_CLASSES=2, MIXED_PRECISION="mixed_bfloat16")
    assert distribute.wrap_optimizer(sgd, bf16) is sgd
    mirrored = UNetConfig(NUM_CLASSES=2, DISTRIBUTION="mirrored")
    clipped = distribute.wrap_optimizer(sgd, mirrored)
    assert isinstance(clipped, keras.optimizers.SGD) and clipped.clipnorm == 1.0
    assert clipped is not sgd  # clips after the replica sum


def test_precision_scope_restores_the_policy():
    config = UNetConfig(NUM_CLASSES=2, MIXED_PRECISION="mixed_bfloat16")
    with distribute.scope(config):
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "float32"


# === Several devices ===
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_mirrored_matches_one_device(tmp_path, backend):
    """U-Net (synchronized BatchNorm), FCN and Mask R-CNN (trained BatchNorm, clipping) on
    2 logical CPUs (TF: MirroredStrategy; JAX: DataParallel over 2 host devices) follow
    the one-device loss curve of the same global batch."""
    env = {"KERAS_BACKEND": backend}
    if backend == "jax":
        pytest.importorskip("jax") if os.environ.get("CI") != "true" else None
        env.update(JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    out = _run(MIRRORED, [str(tmp_path), HELPERS], env=env)
    for name in ("unet", "fcn", "mrcnn"):
        assert out[name + "_replicas"] == 2
        one, two = out[name]
        assert len(one) == 3 and one[0] != one[-1]
        assert _close(one, two)
    assert min(out["mrcnn_parts"]) > 0  # all five losses take part


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multi_worker_on_two_local_processes(tmp_path):
    """Two workers on 127.0.0.1 train a U-Net: same weights on both, files by the chief."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    procs = []
    try:
        for index in range(2):
            tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
            env = dict(os.environ, TF_CONFIG=json.dumps(tf_config))
            procs.append(subprocess.Popen(
                [sys.executable, "-c", WORKER, str(tmp_path / f"w{index}")], cwd=ROOT, env=env,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        results = []
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=600)
            lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
            assert lines, stderr[-4000:]
            results.append(json.loads(lines[-1][len("RESULT "):]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert [r["replicas"] for r in results] == [2, 2]
    assert results[0]["hash"] == results[1]["hash"]
    assert results[0]["loss"] == results[1]["loss"] and len(results[0]["loss"]) == 2
    chief_files = sorted(p.name for p in (tmp_path / "w0").rglob("*") if p.is_file())
    assert "kseg_mw_0002.weights.h5" in chief_files and "config.json" in chief_files
    assert not (tmp_path / "w1").exists()  # the other worker writes nothing


# === Mixed precision ===
@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_trains_and_predicts(tmp_path, policy):
    """All three models train with finite losses (U-Net's fall) and predict finite float32
    outputs; box decoding, NMS, targets and RoIAlign run in float32; float16 scales the loss."""
    sys.path.insert(0, HELPERS)
    from helpers import TinyConfig
    from kseg.train import compile_semantic

    from kseg.config import FCNConfig
    from kseg.data import ShapesDataset
    from kseg.data.pipelines.maskrcnn_pipeline import build_batch
    from kseg.models.fcn import build_fcn
    from kseg.models.mask_rcnn.model import MaskRCNN
    from kseg.models.unet import build_unet

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    y = (x[..., 0] > 128).astype("int32")
    scaled = policy == "mixed_float16"
    for config, build in [
        (FCNConfig(NUM_CLASSES=2, ENCODER_WIDTH=0.0625, FCN_FC_FILTERS=8,
                   MIXED_PRECISION=policy), build_fcn),
        (UNetConfig(NUM_CLASSES=2, UNET_DEPTH=2, UNET_BASE_FILTERS=4, MIXED_PRECISION=policy),
         build_unet)]:
        model = compile_semantic(build(config), config)
        assert model.get_layer(index=3).compute_dtype == policy.split("_")[1]
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer) == scaled
        losses = [float(model.train_on_batch(x, y, return_dict=True)["loss"]) for _ in range(3)]
        assert np.all(np.isfinite(losses)), (config.NAME, losses)
        if config.NAME == "unet":  # the tiny FCN starts on a plateau (zero-init scores)
            assert losses[-1] < losses[0], losses
        pred = model.predict(x, verbose=0)
        assert pred.dtype == np.float32 and np.isfinite(pred).all()
    assert keras.config.dtype_policy().name == "float32"  # the policy does not leak

    config = TinyConfig(MIXED_PRECISION=policy)
    batch, _ = build_batch(ShapesDataset(4, 64, 64, seed=3), config, [0, 1],
                           rng=np.random.default_rng(0))
    trainer = MaskRCNN("training", config, model_dir=tmp_path)
    trainer.compile(1e-3)
    dtypes = {layer.name: layer.compute_dtype for layer in trainer.keras_model.layers}
    assert dtypes["mrcnn_class_conv1"] == policy.split("_")[1]
    for name in ("anchors", "ROI", "proposal_targets", "roi_align_classifier", "norm_gt_boxes"):
        assert dtypes[name] == "float32", name
    curve = [trainer.keras_model.train_on_batch(batch, return_dict=True) for _ in range(3)]
    for logs in curve:
        assert all(np.isfinite(float(v)) for v in logs.values()), logs
    detector = MaskRCNN("inference", config, model_dir=tmp_path)
    assert detector.keras_model.get_layer("mrcnn_detection").compute_dtype == "float32"
    result = detector.detect([np.full((40, 70, 3), 128, np.uint8)])[0]
    assert result["masks"].shape[:2] == (40, 70) and np.isfinite(result["scores"]).all()


# === XLA ===
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_jit_compile_traces_each_step_once(tmp_path, backend):
    """JIT_COMPILE=True: training and inference of the three models compile once (XLA on
    TF; jitted on JAX) and are not retraced for new images of the same molded shape."""
    env = {"KERAS_BACKEND": backend}
    if backend == "jax":
        pytest.importorskip("jax") if os.environ.get("CI") != "true" else None
        env["JAX_PLATFORMS"] = "cpu"
    out = _run(XLA, [str(tmp_path), HELPERS], env=env)
    assert out["backend"] == backend
    for name in ("fcn", "unet"):
        jit, train_traces, predict_traces, _ = out[name]
        assert (jit, train_traces, predict_traces) == (True, 1, 1), (name, out[name])
    assert out["mrcnn_train"][:2] == [True, 1] and out["mrcnn_detect"][:2] == [True, 1]
