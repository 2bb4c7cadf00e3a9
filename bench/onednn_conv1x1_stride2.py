"""Minimal reproduction: TF's oneDNN filter gradient of a 1x1 stride-2 conv corrupts the heap.

    nice -n 19 python bench/onednn_conv1x1_stride2.py           # every case, one process each
    python bench/onednn_conv1x1_stride2.py --case 1 16 8 16     # one case: N H C_in C_out

TensorFlow only (no Keras, no kseg). Each case takes the gradient of
`sum(conv2d(x, w, strides=2, padding="VALID") ** 2)` with respect to a 1x1 filter `w`,
x float32 NHWC [N, H, H, C_in], 20 times in a tf.function, checks it against NumPy and
exits 0. Found with TF 2.21.0 (oneDNN on, the default on x86) on an Intel Xeon with
AVX-512 / AMX (oneDNN picks `jit_1x1:avx512_core` backward_weights for it):

| N | H | C_in | C_out | result |
|---|---|---|---|---|
| 1 | 16 | 8 | 16 | abort: `free(): invalid size` / `malloc(): unaligned tcache chunk` |
| 1 | 16, 32, 64 | 1, 3, 4, 8, 12, 15 | 8 or 16 | abort or SIGSEGV (heap corruption) |
| 1 | 8 | 8 | 16 | ok |
| 1 | 16 | 8 | 32, 64 | ok |
| 1 | 16 | 16, 17, 24, 32 | 16 | ok |
| 2, 4 | 16, 32 | 8 | 16 | ok |
| any | any | any | any | ok with TF_ENABLE_ONEDNN_OPTS=0 |

Where it does not crash the gradient is right (relative error ~2e-7). The crash is in
`dnnl_primitive_execute` called from `MklConvCustomBackpropFilterOp<float>` (gdb), after
the primitive ran (ONEDNN_VERBOSE=1 prints its `exec` line:
`jit_1x1:avx512_core,backward_weights,...,mb1_ic8oc16_ih16oh8kh1sh2..._iw16ow8kw1sw2...`),
i.e. on freeing memory the 1x1 kernel's stride-2 path wrote past. kseg met it in its
`resnet_tiny` backbone (BACKBONE_FILTERS 8: the `tiny3a_proj` shortcut, 8 -> 16 channels,
16x16 -> 8x8 at 64 px), training at batch 1; that shortcut now subsamples and then runs a
1x1 stride-1 conv (same weights and numbers), which oneDNN handles.
"""

import os
import subprocess
import sys

CASES = [(1, 16, 8, 16), (1, 32, 8, 16), (1, 16, 3, 16), (1, 16, 15, 16), (1, 16, 8, 8),
         (1, 8, 8, 16), (1, 16, 8, 32), (1, 16, 16, 16), (1, 16, 24, 16), (2, 16, 8, 16)]


def run_case(n, h, cin, cout):
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    xv = rng.normal(size=(n, h, h, cin)).astype(np.float32)
    wv = rng.normal(size=(1, 1, cin, cout)).astype(np.float32)
    x, w = tf.constant(xv), tf.Variable(wv)

    @tf.function
    def grad():
        with tf.GradientTape() as tape:
            y = tf.nn.conv2d(x, w, strides=2, padding="VALID")
            loss = tf.reduce_sum(y * y)
        return tape.gradient(loss, w)

    sub = xv[:, ::2, ::2, :].astype(np.float64)
    y = np.einsum("nhwc,co->nhwo", sub, wv[0, 0].astype(np.float64))
    expected = np.einsum("nhwc,nhwo->co", sub, 2 * y)
    for _ in range(20):
        g = grad().numpy()[0, 0]
    error = np.abs(g - expected).max() / np.abs(expected).max()
    print(f"relative error {error:.1e}", flush=True)
    return 0 if error < 1e-4 else 3


def main():
    if sys.argv[1:2] == ["--case"]:
        sys.exit(run_case(*(int(v) for v in sys.argv[2:6])))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    print(f"TF_ENABLE_ONEDNN_OPTS={env.get('TF_ENABLE_ONEDNN_OPTS', '(unset: on)')}")
    print("N  H  C_in C_out  exit code (0 ok; -6 abort, -11 segfault: heap corrupted)")
    for case in CASES:
        proc = subprocess.run([sys.executable, __file__, "--case", *map(str, case)],
                              env=env, capture_output=True, text=True)
        lines = [line for line in (proc.stdout + proc.stderr).splitlines()
                 if line.strip() and not line.startswith(("I0000", "W0000", "E0000", "WARN"))]
        tail = lines[-1:] or [""]
        print(f"{case[0]:<2} {case[1]:<3} {case[2]:<4} {case[3]:<5}  {proc.returncode:>4}  "
              f"{tail[0][:70]}", flush=True)


if __name__ == "__main__":
    main()
