"""MAXSIM_KERNEL and MAXSIM_NUM_THREADS are read from the environment at import."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import maxsim
import pytest

SCRIPT = (
    "import json, numpy as np, maxsim; "
    "rng = np.random.default_rng(0); q = rng.standard_normal((9, 31)).astype(np.float32); "
    "d = [rng.standard_normal((n, 31)).astype(np.float32) for n in (1, 7, 300)]; "
    "print(json.dumps({'info': maxsim.info(), 'scores': maxsim.scores(q, d).tolist()}))"
)


def run(env_extra: dict) -> subprocess.CompletedProcess:
    env = dict(os.environ, **env_extra)
    return subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True)


@pytest.mark.parametrize("name", maxsim._native.supported_kernels())
def test_forced_kernel_runs_and_agrees(name):
    forced = run({"MAXSIM_KERNEL": name, "MAXSIM_NUM_THREADS": "1"})
    assert forced.returncode == 0, forced.stderr
    out = json.loads(forced.stdout)
    assert out["info"]["kernel"] == name
    assert out["info"]["num_threads"] == 1
    scalar = json.loads(run({"MAXSIM_KERNEL": "scalar"}).stdout)
    for a, b in zip(out["scores"], scalar["scores"]):
        assert abs(a - b) <= 1e-4 * max(1.0, abs(b))


def test_unsupported_or_unknown_kernel_raises_at_import():
    missing = [
        k for k in ("avx2", "avx512", "amx", "neon") if k not in maxsim._native.supported_kernels()
    ]
    for name in missing:
        result = run({"MAXSIM_KERNEL": name})
        assert result.returncode != 0
        assert f'kernel "{name}" is not supported by this CPU' in result.stderr
    result = run({"MAXSIM_KERNEL": "sse9"})
    assert result.returncode != 0 and "unknown kernel" in result.stderr
    with pytest.raises(ValueError, match="unknown kernel"):
        maxsim.set_kernel("sse9")


@pytest.mark.parametrize("kernel", ["", "avx2"])
def test_bf16_screen_switch_gives_bitwise_equal_scores(kernel: str):
    """MAXSIM_BF16_SCREEN only changes how scores are computed, never them:
    float32, float16 and bfloat16 documents, one query and a batch; with the
    best kernel, and with the AVX2 one (its int16 screen) where it runs."""
    if kernel and kernel not in maxsim._native.supported_kernels():
        pytest.skip(f"no {kernel} kernel on this CPU")
    script = (
        "import json, numpy as np, ml_dtypes, maxsim\n"
        "rng = np.random.default_rng(1); q = rng.standard_normal((60, 130)).astype(np.float32)\n"
        "base = rng.standard_normal((3, 130)).astype(np.float32)\n"
        "d = [rng.standard_normal((n, 130)).astype(np.float32) for n in (1, 6, 7, 300)]\n"
        "d += [np.tile(base, (30, 1))]\n"
        # 128 query tokens in all: past the 24 from which the bf16 screen takes
        # float16 and the 17 from which the int16 screen takes every type.
        "qs = [q, q[::-1], q[:5], np.zeros((3, 130), np.float32) + base[0]]\n"
        "out = []\n"
        "for dtype in (np.float32, np.float16, ml_dtypes.bfloat16):\n"
        "    dd = [x.astype(dtype) for x in d]\n"
        "    out += [s.view(np.uint32).tolist() for s in maxsim.scores_batch(qs, dd)]\n"
        "    out.append(maxsim.scores(q[:32], dd).view(np.uint32).tolist())\n"
        "print(json.dumps({'path': maxsim.info()['float_path'], 'scores': out}))\n"
    )
    outputs = {}
    for flag in ("0", "1"):
        env = dict(os.environ, MAXSIM_BF16_SCREEN=flag, MAXSIM_KERNEL=kernel)
        result = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        outputs[flag] = json.loads(result.stdout)
    assert outputs["0"]["path"] == "fp32"
    features = maxsim._native.cpu_features()
    kernels = maxsim._native.supported_kernels()
    if not kernel and "avx512" in kernels and "avx512bf16" in features:
        expected = "bf16-screen"
    elif "avx2" in kernels and "f16c" in features:
        expected = "int16-screen"
    else:
        expected = "fp32"
    assert outputs["1"]["path"] == expected
    assert outputs["0"]["scores"] == outputs["1"]["scores"]
