"""Install footprint: a fresh venv with maxsim[onnx] against maxsim[models]'s torch stack.

    python3 benches/onnx_footprint.py --wheel target/wheels/maxsim-*.whl

1. ``onnx``: a real fresh venv (``python -m venv``) into which ``pip`` installs the
   maxsim wheel with its ``[onnx]`` extra (onnxruntime, tokenizers, tqdm, numpy)
   from PyPI; its size is ``du`` of the venv, minus the empty venv (pip itself).
2. ``models``: the packages ``maxsim[models]`` pulls in (torch, transformers,
   tokenizers, safetensors, huggingface_hub, tqdm and their dependency closure),
   measured on the installed distributions of this interpreter (the sizes of the
   files their RECORDs list). On Linux x86-64 PyPI's torch is the CUDA build
   (torch + nvidia-* + triton): that row is measured. The CPU build comes from
   PyTorch's own index, which this machine cannot reach, so the ``CPU torch``
   row is an estimate: the same closure without the nvidia-* / triton / cuda-*
   distributions and without torch's CUDA libraries (``torch/lib/*cuda*``,
   ``*cudnn*``, ``*nccl*``, ``*cublas*``, ``*cusparse*``...).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

CUDA_DIST = re.compile(r"^(nvidia-|triton|cuda-)", re.IGNORECASE)
CUDA_FILE = re.compile(r"torch/lib/.*(cuda|cudnn|nccl|cublas|cusparse|cufft|curand|nvrtc|cupti)")


def du(path: Path) -> int:
    return int(subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True,
                              check=True).stdout.split()[0])  # fmt: skip


def closure(names: list[str]) -> dict[str, metadata.Distribution]:
    """Installed distributions reachable from ``names`` through their requirements
    (markers evaluated for this interpreter, extras ignored)."""
    from packaging.requirements import Requirement

    seen: dict[str, metadata.Distribution] = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[key] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            todo.append(req.name)
    return seen


def dist_bytes(dist: metadata.Distribution, skip_cuda_files: bool) -> int:
    total = 0
    for f in dist.files or []:
        if skip_cuda_files and CUDA_FILE.search(str(f)):
            continue
        path = Path(dist.locate_file(f))
        if path.is_file():
            total += path.stat().st_size
    return total


def onnx_extra() -> list[str]:
    """The ``onnx`` extra's requirements, from this checkout's pyproject.toml."""
    import tomllib

    with open(Path(__file__).resolve().parents[1] / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["project"]["optional-dependencies"]["onnx"]


def onnx_venv(wheel: Path) -> tuple[int, int]:
    """Installed bytes of the wheel plus the ``onnx`` extra (named explicitly, so any
    maxsim wheel of this version will do) in a fresh venv, and the empty venv's."""
    with tempfile.TemporaryDirectory() as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        empty = du(venv)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, str(wheel), *onnx_extra()], check=True)
        return du(venv) - empty, empty


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--wheel", type=Path, required=True, help="a built maxsim wheel")
    args = ap.parse_args()
    onnx_bytes, empty = onnx_venv(args.wheel)
    wheel_bytes = args.wheel.stat().st_size
    deps = closure(["torch", "transformers", "tokenizers", "safetensors", "huggingface_hub"])
    deps.update(closure(["tqdm", "numpy"]))
    cuda = sum(dist_bytes(d, False) for d in deps.values())
    cpu = sum(dist_bytes(d, True) for k, d in deps.items() if not CUDA_DIST.match(k))
    mib = 2**20
    print(f"empty venv (pip): {empty / mib:.0f} MiB, maxsim wheel {wheel_bytes / mib:.1f} MiB")
    print("| environment | installed MiB | vs maxsim[onnx] |")
    print("|---|---|---|")
    print(f"| maxsim[onnx] (fresh venv, measured) | {onnx_bytes / mib:.0f} | 1.0x |")
    print(
        f"| maxsim[models], PyPI torch (CUDA build; installed closure, measured) | "
        f"{(cuda + wheel_bytes) / mib:.0f} | {(cuda + wheel_bytes) / onnx_bytes:.1f}x |"
    )
    print(
        f"| maxsim[models], CPU torch (same closure minus CUDA; estimate) | "
        f"{(cpu + wheel_bytes) / mib:.0f} | {(cpu + wheel_bytes) / onnx_bytes:.1f}x |"
    )
    print("closure:", ", ".join(sorted(deps)))


if __name__ == "__main__":
    main()
