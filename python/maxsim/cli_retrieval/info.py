"""``maxsim index info INDEX_DIR``: what an index holds and how it was built."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .store import RetrievalIndex


def describe(index: RetrievalIndex) -> dict:
    """Documents, tokens, bytes per token (or per document), segments, model, settings."""
    sizes = index.disk_bytes()
    kind = index.kind
    info: dict = {
        "path": str(index.path.resolve()),
        "kind": kind,
        "documents": index.n_docs,
        "complete": index.complete,
        "dim": index.dim,
        "segments": len(index.progress.segments),
        "bytes": sizes,
        "model": index.settings.get("model"),
        "build": index.settings.get("build"),
        "corpus": index.settings.get("corpus"),
    }
    if kind == "colbert" and (index.path / "index" / "manifest.json").exists():
        stats = index.colbert_index().stats()
        info["tokens"] = int(stats["n_tokens"])
        info["bytes_per_token"] = float(stats["bytes_per_token"])
        info["index_segments"] = int(stats["n_segments"])
        info["centroids"] = int(stats["n_centroids"])
        info["store_bytes"] = int(stats["store_bytes"])
    else:
        info["tokens"] = index.n_docs
        info["bytes_per_token"] = sizes["vectors"] / max(index.n_docs, 1)
    return info


def format_info(info: dict) -> str:
    model = info["model"] or {}
    lines = [
        f"index        {info['path']}",
        f"kind         {info['kind']}" + ("" if info["complete"] else "  (partly built)"),
        f"documents    {info['documents']:,}",
        f"tokens       {info['tokens']:,}"
        + ("  (one vector per document)" if info["kind"] != "colbert" else ""),
        f"bytes/token  {info['bytes_per_token']:.2f}"
        + (
            "  (vectors; index files without the store)"
            if info["kind"] == "colbert"
            else "  (vectors)"
        ),
        f"segments     {info['segments']}",
        f"disk         {info['bytes']['total']:,} bytes (texts {info['bytes']['texts']:,}, "
        f"vectors {info['bytes']['vectors']:,}, index {info['bytes']['index']:,})",
        f"dim          {info['dim']}",
        f"model        {model.get('name', '(precomputed embeddings)')}"
        + (f"  [{model['class']}, {model['backend']}]" if model else ""),
    ]
    for key in (
        "query_prompt",
        "document_prompt",
        "query_prefix",
        "document_prefix",
        "query_length",
        "document_length",
        "max_seq_length",
    ):
        if key in model and model[key] not in (None, ""):
            lines.append(f"  {key:<16}{model[key]!r}")
    build = info["build"] or {}
    settings = ", ".join(f"{k}={v}" for k, v in build.items() if v is not None)
    lines.append(f"build        {settings}")
    if info.get("centroids"):
        lines.append(f"centroids    {info['centroids']:,}")
    lines.append(f"corpus       {info['corpus']['path']} ({info['corpus']['kind']})")
    return "\n".join(lines)


def index_info(args: argparse.Namespace) -> int:
    info = describe(RetrievalIndex.open(Path(args.index_dir)))
    print(json.dumps(info, indent=1) if args.json else format_info(info))
    return 0
