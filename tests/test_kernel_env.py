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


DISABLE_SCRIPT = (
    "import json, numpy as np, maxsim\n"
    "rng = np.random.default_rng(3); q = rng.standard_normal((40, 96)).astype(np.float32)\n"
    "d = [rng.standard_normal((n, 96)).astype(np.float32) for n in (1, 9, 250)]\n"
    "codes = maxsim.quantize(d)\n"
    "out = [maxsim.scores(q, d).view(np.uint32).tolist(), maxsim.scores(q, codes).tolist()]\n"
    "print(json.dumps({'info': maxsim.info(), 'scores': out}))\n"
)


def run_disabled(env_extra: dict) -> dict:
    env = dict(os.environ, **env_extra)
    result = subprocess.run(
        [sys.executable, "-c", DISABLE_SCRIPT], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_disabled_cpu_features_change_the_paths_not_the_scores():
    """MAXSIM_DISABLE_CPU_FEATURES hides features from dispatch: the paths that
    need them give way to the ones of a CPU without them, with bitwise the same
    scores within one kernel family (float32 screened from 40 query tokens,
    int8 documents)."""
    features = maxsim._native.cpu_features()
    if "avxvnni" not in features:
        pytest.skip("no AVX-VNNI on this CPU: nothing for the avx2 kernel to give up")
    full = run_disabled({"MAXSIM_KERNEL": "avx2", "MAXSIM_BF16_SCREEN": "1"})
    bare = run_disabled(
        {
            "MAXSIM_KERNEL": "avx2",
            "MAXSIM_BF16_SCREEN": "1",
            "MAXSIM_DISABLE_CPU_FEATURES": " AVXVNNI, ",
        }
    )
    assert "avxvnni" in full["info"]["cpu_features"]
    assert "avxvnni" not in bare["info"]["cpu_features"]
    paths = (full["info"]["kernel_paths"], bare["info"]["kernel_paths"])
    assert "vpdpbusd" in paths[0]["int8"] and "vpdpwssd" in paths[0]["float32"]
    assert "vpdpbusd" not in paths[1]["int8"] and "vpdpwssd" not in paths[1]["float32"]
    assert "int16 screen (vpmaddwd)" in paths[1]["float32"]
    assert full["scores"] == bare["scores"]


def test_disabling_a_kernels_features_moves_the_default_kernel():
    kernels = maxsim._native.supported_kernels()
    if "avx512" not in kernels or "avx2" not in kernels:
        pytest.skip("needs a CPU with both the avx512 and the avx2 kernels")
    info = run_disabled({"MAXSIM_KERNEL": "", "MAXSIM_DISABLE_CPU_FEATURES": "avx512vl"})["info"]
    assert info["kernel"] == "avx2" and info["best_kernel"] == "avx2"
    assert not [f for f in info["cpu_features"] if f.startswith("avx512")]
    forced = run({"MAXSIM_KERNEL": "avx512", "MAXSIM_DISABLE_CPU_FEATURES": "avx512f"})
    assert forced.returncode != 0
    assert 'kernel "avx512" is not supported by this CPU' in forced.stderr


def test_unknown_disabled_feature_raises_at_import():
    result = run({"MAXSIM_DISABLE_CPU_FEATURES": "avx2,avx9"})
    assert result.returncode != 0
    assert "ValueError: MAXSIM_DISABLE_CPU_FEATURES: unknown feature avx9" in result.stderr
