"""Durable file writes and checked reads shared by the retrieval index modules."""

from __future__ import annotations

import io
import json
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CliError


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # not supported here (e.g. Windows); the rename is still atomic
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> dict:
    """Write ``data`` to ``path`` atomically and durably; returns ``{"size", "crc32"}``."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)
    return {"size": len(data), "crc32": zlib.crc32(data)}


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, (json.dumps(obj, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))


def read_json(path: Path, what: str) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CliError(f"{path}: missing ({what})") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{path}: corrupt {what} (invalid JSON at line {exc.lineno})") from None
    if not isinstance(obj, dict):
        raise CliError(f"{path}: corrupt {what} (not a JSON object)")
    return obj


def read_checked(path: Path, ref: dict) -> bytes:
    """The bytes of a segment file, checked against its committed size and CRC-32."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CliError(f"{path}: missing (the index is incomplete or was moved)") from None
    if len(data) != ref["size"]:
        raise CliError(f"{path}: {len(data)} bytes, expected {ref['size']} (truncated?)")
    if zlib.crc32(data) != ref["crc32"]:
        raise CliError(f"{path}: checksum mismatch (the file is corrupt)")
    return data


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()
