"""Loading of the transformers backbone shared by the encoders."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ._common import read_json, resolve_dtype
from ._heads import as_numpy

__all__ = [
    "TorchNetwork",
    "load_backbone",
    "load_state_numpy",
    "load_tokenizer",
    "parse_modules",
    "run_context",
    "to_device",
]

_TRANSFORMER_TYPES = {
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Transformer.Transformer",
}


def parse_modules(model_dir: Path) -> list[dict[str, Any]] | None:
    """Read and validate ``modules.json``; ``None`` when the file is absent.

    Raises:
        ValueError: malformed JSON, or entries without ``type``/``path``.
    """
    path = model_dir / "modules.json"
    if not path.is_file():
        return None
    modules = read_json(path, what="modules.json")
    if not isinstance(modules, list) or not modules:
        raise ValueError(f"malformed modules.json at {path}: expected a non-empty list")
    for i, entry in enumerate(modules):
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("type"), str)
            or not isinstance(entry.get("path", ""), str)
        ):
            raise ValueError(
                f"malformed modules.json at {path}: entry {i} needs a string 'type' and 'path'"
            )
    modules = sorted(modules, key=lambda e: e.get("idx", 0))
    if modules[0]["type"] not in _TRANSFORMER_TYPES:
        raise ValueError(
            f"malformed modules.json at {path}: the first module must be "
            f"sentence_transformers.models.Transformer, got {modules[0]['type']!r}"
        )
    return modules


def load_tokenizer(model_dir: Path | str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(os.fspath(model_dir))


def load_backbone(
    model_dir: Path | str,
    *,
    dtype: Any = None,
    device: str = "cpu",
    model_class: Any = None,
    output_loading_info: bool = False,
) -> Any:
    """Load a transformers model (``AutoModel`` by default) in eval mode."""
    import torch  # noqa: F401
    from transformers import AutoModel

    cls = model_class or AutoModel
    torch_dtype = resolve_dtype(dtype)
    result = cls.from_pretrained(
        os.fspath(model_dir), dtype=torch_dtype, output_loading_info=output_loading_info
    )
    model, info = result if output_loading_info else (result, None)
    model.to(device)
    model.eval()
    return (model, info) if output_loading_info else model


def load_state_numpy(module_dir: Path, what: str = "weights") -> dict[str, np.ndarray]:
    """A module's ``model.safetensors`` (else ``pytorch_model.bin``) as float32 numpy arrays.

    Raises:
        ValueError: neither file exists (the message names the folder).
    """
    st_path = module_dir / "model.safetensors"
    if st_path.is_file():
        from safetensors.numpy import load_file

        return {
            k: np.asarray(v, dtype=np.float32) for k, v in load_file(os.fspath(st_path)).items()
        }
    bin_path = module_dir / "pytorch_model.bin"
    if not bin_path.is_file():
        raise ValueError(
            f"no model.safetensors or pytorch_model.bin with the {what} in {module_dir}"
        )
    import torch

    state = torch.load(bin_path, map_location="cpu", weights_only=True)
    return {k: v.float().numpy() for k, v in state.items()}


class TorchNetwork:
    """The torch backend's network: numpy int64 features -> float32 numpy output.

    Args:
        model: the transformers module (eval mode).
        device: where the model lives.
        input_names: the features the model takes (others are dropped).
        forward: ``(model, torch_features) -> tensor``; default: the first output
            (``last_hidden_state`` for an encoder).
    """

    def __init__(
        self,
        model: Any,
        device: Any,
        input_names: Iterable[str],
        forward: Callable[[Any, dict[str, Any]], Any] | None = None,
    ) -> None:
        self.model = model
        self.device = device
        self.input_names = tuple(input_names)
        self.forward = forward or (lambda m, feats: m(**feats, return_dict=True)[0])

    def __call__(self, features: dict[str, np.ndarray], autocast: str | None = None) -> np.ndarray:
        import torch

        feats = {
            k: torch.from_numpy(np.ascontiguousarray(v)).to(self.device)
            for k, v in features.items()
            if k in self.input_names
        }
        with run_context(self.device, autocast):
            out = self.forward(self.model, feats)
        return as_numpy(out)


def to_device(features: dict[str, Any], device: Any) -> dict[str, Any]:
    return {k: (v.to(device) if hasattr(v, "to") else v) for k, v in features.items()}


@contextlib.contextmanager
def run_context(device: Any, autocast: str | None) -> Iterator[None]:
    """``torch.inference_mode`` plus optional bf16/fp16 autocast."""
    import torch

    with torch.inference_mode():
        if autocast is None:
            yield
            return
        dt = resolve_dtype(autocast)
        dev_type = torch.device(device).type
        with torch.autocast(device_type=dev_type, dtype=dt):
            yield


def is_ffn_output(name: str) -> bool:
    """Whether ``name`` is a feed-forward block's output (down) projection:
    ``encoder.layer.N.output.dense`` (BERT family), ``layers.N.mlp.Wo``
    (ModernBERT) or ``*.mlp.down_proj`` (Llama/Qwen)."""
    bert = name.endswith(".output.dense") and ".attention." not in name
    return bert or name.endswith(".mlp.Wo") or name.endswith(".mlp.down_proj")


def apply_int8_linear(model: Any, keep_ffn_output: bool = False) -> Any:
    """Fast option: dynamic int8 quantization of the ``nn.Linear`` layers (CPU, fbgemm/AVX2).

    Weights become int8 with one scale per output channel, activations are
    quantized per batch on the fly with one scale per tensor; the encoder gets
    faster on CPU and results change slightly (see BENCHMARKS.md, "Encoders").
    ``keep_ffn_output=True`` leaves the feed-forward output projections in
    float: their inputs (the GELU activations) carry the outliers that one
    per-tensor activation scale resolves worst, and per-token outputs (ColBERT)
    feel that error, where pooled ones average it out.
    """
    import warnings

    import torch

    # quantize_dynamic takes module types or module names as keys.
    targets: set[Any] = (
        {
            name
            for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and not is_ffn_output(name)
        }
        if keep_ffn_output
        else {torch.nn.Linear}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch.ao.quantization import per_channel_dynamic_qconfig

        qconfigs = {target: per_channel_dynamic_qconfig for target in targets}
        return torch.ao.quantization.quantize_dynamic(model, qconfigs, dtype=torch.qint8)
