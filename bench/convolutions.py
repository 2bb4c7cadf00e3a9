"""The convolution shapes behind kseg's speed choices, timed on each backend.

    python bench/convolutions.py                 # all three tables
    python bench/convolutions.py --tables backends --repeats 9

Tables (median of `--repeats` after two warm-ups, each backend in its own process):
  backends  one Keras Conv2D, forward and forward+backward (input and kernel gradients),
            TensorFlow (`tf.function`) vs JAX (`jax.jit`): why JAX trains slower on CPU
  matmul    the box head's whole-input convolutions (7x7 valid on [R, 7, 7, 256], 1x1 on
            [R, 1, 1, 1024]) as TF convolutions vs one matmul (`kseg.models.conv.Conv2D`)
  groups    3x3 convolutions with many output channels, one call vs groups of 128 output
            channels (`kseg.ops.conv.conv2d_in_groups`), TF
"""

import argparse
import json
import os
import subprocess
import sys

WORKER = r"""
import json, os, statistics, sys, time
import numpy as np
table, repeats = sys.argv[1], int(sys.argv[2])
import keras
from keras import ops
backend = keras.backend.backend()

def median(fn):
    fn(); fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter(); fn(); times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)

def compiled(fn):
    if backend == "jax":
        import jax
        return jax.jit(fn)
    import tensorflow as tf
    return tf.function(fn)

def grad(loss):
    if backend == "jax":
        import jax
        return jax.jit(jax.grad(loss, argnums=(0, 1)))
    import tensorflow as tf
    @tf.function
    def g(x, w):
        with tf.GradientTape() as tape:
            tape.watch([x, w])
            value = loss(x, w)
        return tape.gradient(value, [x, w])
    return g

def run(fn, *args):
    out = fn(*args)
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]

rng = np.random.default_rng(0)
rows = []
if table == "backends":
    for b, h, ci, co, k in [(1, 128, 256, 256, 3), (1, 128, 256, 512, 3), (8, 32, 64, 64, 3),
                            (1, 64, 512, 128, 1)]:
        x = ops.convert_to_tensor(rng.normal(size=(b, h, h, ci)).astype("float32"))
        w = ops.convert_to_tensor(0.01 * rng.normal(size=(k, k, ci, co)).astype("float32"))
        fwd = compiled(lambda x, w: ops.conv(x, w, padding="same"))
        both = grad(lambda x, w: ops.sum(ops.square(ops.conv(x, w, padding="same"))))
        rows.append({"shape": f"{b}x{h}x{h}x{ci}->{co} {k}x{k}",
                     "fwd_ms": median(lambda: run(fwd, x, w)),
                     "fwd_bwd_ms": median(lambda: run(both, x, w)),
                     "gflop": 2 * b * h * h * ci * co * k * k / 1e9})
elif table == "matmul":
    for r, k, c, f in [(1000, 7, 256, 1024), (1000, 1, 1024, 1024), (512, 7, 256, 1024),
                       (512, 1, 1024, 1024)]:
        x = ops.convert_to_tensor(rng.normal(size=(r, k, k, c)).astype("float32"))
        w = ops.convert_to_tensor(0.01 * rng.normal(size=(k, k, c, f)).astype("float32"))
        conv = lambda x, w: ops.conv(x, w, padding="valid")
        mm = lambda x, w: ops.matmul(ops.reshape(x, (-1, k * k * c)), ops.reshape(w, (-1, f)))
        row = {"shape": f"{r}x{k}x{k}x{c}->{f}"}
        for name, fn in (("conv", conv), ("matmul", mm)):
            row[f"{name}_fwd_ms"] = median(lambda: run(compiled(fn), x, w))
            row[f"{name}_fwd_bwd_ms"] = median(
                lambda: run(grad(lambda x, w: ops.sum(ops.square(fn(x, w)))), x, w))
        rows.append(row)
elif table == "groups":
    from kseg.ops.conv import conv2d_in_groups
    for h, ci, co in [(128, 256, 512), (128, 256, 256), (64, 256, 512), (64, 256, 256),
                      (32, 256, 512), (16, 512, 512)]:
        x = ops.convert_to_tensor(rng.normal(size=(1, h, h, ci)).astype("float32"))
        w = ops.convert_to_tensor(0.01 * rng.normal(size=(3, 3, ci, co)).astype("float32"))
        row = {"shape": f"1x{h}x{h}x{ci}->{co} 3x3"}
        for groups in (1, co // 128):
            fn = lambda x, w, g=groups: conv2d_in_groups(x, w, g)
            row[f"g{groups}_fwd_ms"] = median(lambda: run(compiled(fn), x, w))
            row[f"g{groups}_fwd_bwd_ms"] = median(
                lambda: run(grad(lambda x, w: ops.sum(ops.square(fn(x, w)))), x, w))
        rows.append(row)
print("RESULT " + json.dumps(rows))
"""


def measure(table, backend, repeats):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", WORKER, table, str(repeats)], env=env,
                         capture_output=True, text=True, check=False)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"{table} on {backend} failed:\n{out.stderr[-2000:]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", nargs="+", default=["backends", "matmul", "groups"],
                        choices=["backends", "matmul", "groups"])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"CPU cores: {os.cpu_count()}")
    if "backends" in args.tables:
        tf_rows, jax_rows = (measure("backends", b, args.repeats) for b in ("tensorflow", "jax"))
        print("\n| convolution | TF fwd ms | JAX fwd ms | TF fwd+bwd ms | JAX fwd+bwd ms "
              "| TF / JAX fwd+bwd GFLOP/s |\n|---|---|---|---|---|---|")
        for t, j in zip(tf_rows, jax_rows):
            print(f"| {t['shape']} | {t['fwd_ms']:.1f} | {j['fwd_ms']:.1f} | "
                  f"{t['fwd_bwd_ms']:.1f} | {j['fwd_bwd_ms']:.1f} | "
                  f"{3e3 * t['gflop'] / t['fwd_bwd_ms']:.0f} / "
                  f"{3e3 * j['gflop'] / j['fwd_bwd_ms']:.0f} |")
    if "matmul" in args.tables:
        print("\n| box head layer (TF) | conv fwd ms | matmul fwd ms | conv fwd+bwd ms "
              "| matmul fwd+bwd ms |\n|---|---|---|---|---|")
        for r in measure("matmul", "tensorflow", args.repeats):
            print(f"| {r['shape']} | {r['conv_fwd_ms']:.1f} | {r['matmul_fwd_ms']:.1f} | "
                  f"{r['conv_fwd_bwd_ms']:.1f} | {r['matmul_fwd_bwd_ms']:.1f} |")
    if "groups" in args.tables:
        print("\n| 3x3 convolution (TF) | one call fwd ms | groups of 128 fwd ms "
              "| one call fwd+bwd ms | groups fwd+bwd ms |\n|---|---|---|---|---|")
        for r in measure("groups", "tensorflow", args.repeats):
            g = [k for k in r if k.startswith("g") and k != "g1_fwd_ms" and k.endswith("fwd_ms")][0]
            n = g.split("_")[0]
            print(f"| {r['shape']} | {r['g1_fwd_ms']:.1f} | {r[n + '_fwd_ms']:.1f} | "
                  f"{r['g1_fwd_bwd_ms']:.1f} | {r[n + '_fwd_bwd_ms']:.1f} |")


if __name__ == "__main__":
    main()
