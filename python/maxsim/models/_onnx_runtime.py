"""ONNX Runtime sessions for the ``backend="onnx"`` encoders (no torch).

:class:`OnnxNetwork` runs one graph: numpy int64 features in, one named float
output out. It checks the graph against what the model's config promises (its
inputs and output) when it is loaded, and it sizes ONNX Runtime's intra-op
thread pool from :func:`maxsim.get_num_threads` (``MAXSIM_NUM_THREADS`` /
``maxsim.set_num_threads``): when that number changes, the session is rebuilt
on the next call. Passing ``session_options`` opts out of this (the caller's
threads are used as given).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._common import ModelNotFoundError

__all__ = ["OnnxNetwork", "import_onnxruntime"]

_NUMPY_OF_ORT = {
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(float)": np.float32,
    "tensor(bool)": np.bool_,
}


def import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "backend='onnx' needs onnxruntime and tokenizers: pip install 'maxsim[onnx]'"
        ) from exc
    return onnxruntime


def _thread_count() -> int:
    import maxsim

    return int(maxsim.get_num_threads())


class OnnxNetwork:
    """One ONNX graph as a callable ``features -> output``.

    Args:
        path: the ``.onnx`` file.
        output: the graph output to return (``None``: the first one).
        allowed_inputs: feature names the caller can provide; every graph input
            must be one of them.
        required_inputs: inputs the graph must declare (``input_ids`` at least).
        session_options: an ``onnxruntime.SessionOptions``; when given, its thread
            settings are kept and ``maxsim.set_num_threads`` is not followed.
        providers: ONNX Runtime execution providers (default: CPU).

    Raises:
        ModelNotFoundError: the file does not exist.
        ValueError: the file is not a loadable ONNX graph, or its inputs / outputs do
            not match (the message names the file, the graph's names and the expected).
    """

    def __init__(
        self,
        path: Path,
        *,
        output: str | None = None,
        allowed_inputs: Iterable[str] = ("input_ids", "attention_mask", "token_type_ids"),
        required_inputs: Sequence[str] = ("input_ids",),
        session_options: Any = None,
        providers: Sequence[Any] | None = None,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelNotFoundError(f"ONNX graph {self.path} does not exist")
        self._user_options = session_options
        self._providers = list(providers) if providers else ["CPUExecutionProvider"]
        self._lock = threading.Lock()
        self._threads = 0
        self._session: Any = None
        session = self._session_for_current_threads()
        self.input_types = {i.name: i.type for i in session.get_inputs()}
        self.output_names = [o.name for o in session.get_outputs()]
        allowed = set(allowed_inputs)
        unexpected = [n for n in self.input_types if n not in allowed]
        missing = [n for n in required_inputs if n not in self.input_types]
        if unexpected or missing:
            raise ValueError(
                f"ONNX graph {self.path}: inputs {sorted(self.input_types)} do not match the "
                f"model config (expected {sorted(required_inputs)} and at most {sorted(allowed)})"
            )
        bad_types = {
            n: t for n, t in self.input_types.items() if t not in ("tensor(int64)", "tensor(int32)")
        }
        if bad_types:
            raise ValueError(
                f"ONNX graph {self.path}: inputs {bad_types} must be int64 or int32 token tensors"
            )
        if output is None:
            output = self.output_names[0]
        if output not in self.output_names:
            raise ValueError(
                f"ONNX graph {self.path}: no output {output!r} (the graph has {self.output_names})"
            )
        self.output = output

    @property
    def inputs(self) -> list[str]:
        """The graph's input names."""
        return list(self.input_types)

    def _build(self, threads: int) -> Any:
        ort = import_onnxruntime()
        if self._user_options is not None:
            options = self._user_options
        else:
            # Every graph optimisation (ONNX Runtime's default, stated so that a change
            # of default cannot slow the exported graphs down), the intra-op pool sized
            # by maxsim's thread count, no inter-op pool (one graph runs at a time).
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        try:
            return ort.InferenceSession(
                os.fspath(self.path), sess_options=options, providers=self._providers
            )
        except Exception as exc:  # onnxruntime raises its own Fail / InvalidProtobuf types
            raise ValueError(
                f"ONNX graph {self.path} could not be loaded (corrupt or not an ONNX model): "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def _session_for_current_threads(self) -> Any:
        threads = 0 if self._user_options is not None else _thread_count()
        with self._lock:
            if self._session is None or threads != self._threads:
                self._session = self._build(threads)
                self._threads = threads
            return self._session

    def __call__(self, features: dict[str, np.ndarray], autocast: str | None = None) -> np.ndarray:
        """Run the graph on ``features`` (``(batch, seq)`` integer arrays by name);
        returns the output as float32. ``autocast`` is a torch option: it must be ``None``."""
        if autocast is not None:
            raise ValueError(
                f"autocast={autocast!r} is a torch-backend option; the ONNX backend runs the "
                "graph as exported (use an int8 export for speed)"
            )
        session = self._session_for_current_threads()
        feed = {}
        for name, kind in self.input_types.items():
            if name not in features:
                raise ValueError(f"ONNX graph {self.path} needs input {name!r}")
            feed[name] = np.ascontiguousarray(features[name], dtype=_NUMPY_OF_ORT[kind])
        try:
            (out,) = session.run([self.output], feed)
        except Exception as exc:  # onnxruntime's Fail / InvalidArgument / RuntimeException
            shapes = {k: v.shape for k, v in feed.items()}
            raise ValueError(
                f"ONNX graph {self.path} failed on inputs of shapes {shapes}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        return np.asarray(out, dtype=np.float32)
