"""``ShardedIndex``: a :class:`maxsim.Index` split into shards, one Ray actor
each, searched by scatter-gather with a global top-k merge (see
:mod:`maxsim.integrations.ray`)."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import ray

import maxsim
from maxsim._convert import as_k
from maxsim.index import _ids

from ._common import check_count

__all__ = ["ShardError", "ShardedIndex", "shard_of"]

PathLike = Union[str, "os.PathLike[str]"]
#: Ray errors that mean a shard's actor (or its worker, or its result) is gone.
_LOST = (
    ray.exceptions.RayActorError,
    ray.exceptions.WorkerCrashedError,
    ray.exceptions.ObjectLostError,
    ray.exceptions.TaskCancelledError,
)


class ShardError(RuntimeError):
    """A shard did not answer: its actor died past its restarts, or timed
    out. No partial result is ever returned in its place.

    Attributes:
        shard: the shard's number; path: its folder; operation: what failed.
    """

    def __init__(self, shard: int, n_shards: int, path: str, operation: str, cause: str) -> None:
        self.shard, self.path, self.operation = shard, path, operation
        super().__init__(f"shard {shard} of {n_shards} ({path}) failed during {operation}: {cause}")


def shard_of(doc_id: Union[int, str], n_shards: int) -> int:
    """The shard that holds ``doc_id``: a stable hash (blake2b of the int64
    or UTF-8 bytes), the same in every process and Python version."""
    if isinstance(doc_id, (int, np.integer)) and not isinstance(doc_id, bool):
        data = int(doc_id).to_bytes(8, "little", signed=True)
    elif isinstance(doc_id, str):
        data = doc_id.encode("utf-8")
    else:
        raise TypeError(f"ids: an id must be int or str, got {type(doc_id).__name__}")
    digest = hashlib.blake2b(data, digest_size=8).digest()
    return int.from_bytes(digest, "little") % n_shards


def _route(ids: Union[np.ndarray, list[str]], n_shards: int) -> list[np.ndarray]:
    """Positions of ``ids`` that go to each shard."""
    shard = np.fromiter((shard_of(i, n_shards) for i in ids), dtype=np.int64, count=len(ids))
    return [np.flatnonzero(shard == s) for s in range(n_shards)]


def _take(ids: Union[np.ndarray, list[str]], positions: np.ndarray) -> Any:
    return ids[positions] if isinstance(ids, np.ndarray) else [ids[p] for p in positions]


class _ShardServer:
    """One shard's :class:`maxsim.Index`, inside its actor. Its only state is
    the index folder, so a restarted actor (``max_restarts``) reopens it at
    its last commit and a retried search returns the same answer."""

    def __init__(self, path: str, mmap: bool, verify: bool, num_threads: int) -> None:
        maxsim.set_num_threads(num_threads)
        self.index = maxsim.Index.open(path, mmap=mmap, verify=verify)

    def pid(self) -> int:
        return os.getpid()

    def search(self, queries: list[np.ndarray], k: int, kwargs: dict[str, Any]) -> tuple:
        return self.index.search(queries, k, **kwargs)

    def stats(self) -> dict:
        return self.index.stats()

    def reload(self) -> bool:
        return self.index.reload()

    # Writes are never retried by Ray: a commit may have happened before the
    # actor died, and the caller must look before writing again.
    @ray.method(max_task_retries=0)
    def add(self, ids: Any, docs: list[np.ndarray], replace: bool) -> int:
        self.index.add(ids, docs, replace=replace)
        return len(docs)

    @ray.method(max_task_retries=0)
    def delete(self, ids: Any) -> int:
        return self.index.delete(ids)

    @ray.method(max_task_retries=0)
    def compact(self) -> None:
        self.index.compact()


_ShardActor = ray.remote(_ShardServer)


class ShardedIndex:
    """A :class:`maxsim.Index` split into shards, each held by a Ray actor.

    Documents go to shard :func:`shard_of` ``(id, n_shards)``. A search
    sends the queries to every shard once (one ``ray.put``; each actor reads
    them from the object store without a copy), each shard returns its own
    top ``k``, and the driver merges them: best first, equal scores in shard
    order, then in each shard's order.

    **Results.** A document's score depends on its own codes and the
    training only. When every shard holds a copy of the same training
    (:meth:`create`), a search that scores every candidate of the probed
    lists (``n_candidates`` at least the number of documents, or a
    ``subset`` no larger than ``n_candidates``) and an ``exact=True``
    search (certified exhaustive top-k) return the same documents and the
    same scores as one index over the same documents. With a smaller
    ``n_candidates`` they can differ: each shard keeps its own
    ``n_candidates`` best by centroid interaction, so N shards score up to N
    times as many documents, and the pruning is not monotone in the corpus
    (a document one index prunes can survive in its shard, and rarely the
    other way round). ``return_certified`` is True when every shard certified.

    **Failures.** Each actor is restarted by Ray up to ``max_restarts``
    times, reopening its folder; a search running on a dead actor is
    retried there (``max_task_retries``). A shard that still does not answer
    (or not within ``timeout_s``) raises :class:`ShardError` naming it:
    never a partial result. :meth:`restart` replaces a dead shard's actor.

    Args:
        shards: the shard folders (:meth:`create` returns them), reachable
            from the nodes their actors run on (a shared file system, or the
            files copied to the node an ``actor_options`` entry pins it to).
        num_cpus_per_shard: CPUs each actor reserves (and maxsim's threads in it).
        max_restarts, max_task_retries: Ray's actor fault tolerance.
        timeout_s: seconds a call waits for the shards (``None``: no limit).
        start_timeout_s: seconds to wait for every actor to open its shard.
        scheduling_strategy: Ray's, for every actor (``"SPREAD"``: over nodes).
        actor_options: per shard, more ``.options()`` (resources, a
            ``NodeAffinitySchedulingStrategy``, a placement group, ...).
        mmap, verify: as :meth:`maxsim.Index.open`.
    """

    def __init__(
        self,
        shards: Sequence[PathLike],
        *,
        num_cpus_per_shard: float = 1,
        max_restarts: int = 1,
        max_task_retries: int = 1,
        timeout_s: Optional[float] = None,
        start_timeout_s: Optional[float] = 300,
        scheduling_strategy: Any = "SPREAD",
        actor_options: Optional[Sequence[dict[str, Any]]] = None,
        mmap: bool = True,
        verify: bool = True,
    ) -> None:
        self.paths = [os.fspath(p) for p in shards]
        if not self.paths:
            raise ValueError("shards: expected at least one shard folder")
        for p in self.paths:
            if not os.path.isdir(p):
                raise ValueError(f"shards: {p} is not a folder")
        if actor_options is not None and len(actor_options) != len(self.paths):
            raise ValueError(
                f"actor_options: {len(actor_options)} entries for {len(self.paths)} shards"
            )
        if not num_cpus_per_shard > 0:
            raise ValueError(f"num_cpus_per_shard: must be > 0, got {num_cpus_per_shard!r}")
        self.timeout_s = timeout_s
        self._options = [
            {
                "num_cpus": num_cpus_per_shard,
                "max_restarts": max_restarts,
                "max_task_retries": max_task_retries,
                "scheduling_strategy": scheduling_strategy,
                **(actor_options[i] if actor_options else {}),
            }
            for i in range(len(self.paths))
        ]
        self._open_args = (bool(mmap), bool(verify), max(1, int(num_cpus_per_shard)))
        self.actors: list[Any] = [self._start(i) for i in range(len(self.paths))]
        try:
            self._gather([a.pid.remote() for a in self.actors], "start", start_timeout_s)
            dims = {s["dim"] for s in self.shard_stats()}
            if len(dims) != 1:
                raise ValueError(f"shards: the shards have different dimensions {sorted(dims)}")
        except BaseException:
            self.close()  # no actor left behind, holding CPUs, pending or not
            raise
        self.dim = dims.pop()

    def _start(self, shard: int) -> Any:
        return _ShardActor.options(**self._options[shard]).remote(
            self.paths[shard], *self._open_args
        )

    # -- building -----------------------------------------------------------

    @staticmethod
    def create(
        path: PathLike,
        n_shards: int,
        *,
        dim: int,
        train_docs: Any,
        expected_tokens: Optional[int] = None,
        **create_kwargs: Any,
    ) -> list[str]:
        """Create ``n_shards`` empty, trained shard folders ``path/shard-000``, ...

        The first shard is trained on ``train_docs`` (``expected_tokens``:
        the whole corpus's token count, which sizes the centroids); the
        others get a copy of its training files, each committed by renaming
        a finished folder into place. ``create_kwargs``: as
        :meth:`maxsim.Index.create`. Returns the shard folders.
        """
        n_shards = check_count(n_shards, "n_shards")
        root = Path(path)
        root.mkdir(parents=True, exist_ok=True)
        paths = [root / f"shard-{i:03d}" for i in range(n_shards)]
        existing = [p for p in paths if p.exists()]
        if existing:
            raise FileExistsError(f"{existing[0]} already exists")
        first = maxsim.Index.create(paths[0], dim, **create_kwargs)
        first.train(train_docs, expected_tokens=expected_tokens)
        for p in paths[1:]:
            tmp = p.with_name(p.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            for f in sorted(paths[0].iterdir()):
                if f.name != "writer.lock":
                    shutil.copyfile(f, tmp / f.name)
                    with open(tmp / f.name, "rb") as fh:
                        os.fsync(fh.fileno())
            maxsim.Index.open(tmp)  # checks the copy (sizes, checksums, manifest)
            os.rename(tmp, p)
        fd = os.open(root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return [os.fspath(p) for p in paths]

    # -- calls --------------------------------------------------------------

    def _gather(self, refs: list[Any], operation: str, timeout: Optional[float]) -> list[Any]:
        """Every shard's answer, or ShardError for the first that has none."""
        deadline = None if timeout is None else time.monotonic() + timeout
        out = []
        for shard, ref in enumerate(refs):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                out.append(ray.get(ref, timeout=left))
            except ray.exceptions.GetTimeoutError:
                hint = ""
                if operation == "start":  # most often: the cluster cannot place the actor
                    want = self._options[shard].get("num_cpus")
                    free = ray.available_resources().get("CPU", 0.0)
                    hint = (
                        f" (each shard's actor reserves num_cpus={want}; the cluster has "
                        f"{free:g} CPUs free: lower num_cpus_per_shard or add nodes)"
                    )
                raise ShardError(
                    shard, len(refs), self.paths[shard], operation,
                    f"no answer within {timeout} s{hint}",
                ) from None  # fmt: skip
            except _LOST as err:
                cause = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                raise ShardError(
                    shard, len(refs), self.paths[shard], operation,
                    f"its actor is gone ({type(err).__name__}: {cause})",
                ) from err  # fmt: skip
        return out

    def _check_queries(self, queries: Any) -> tuple[bool, list[np.ndarray]]:
        # maxsim.Index.search's own checks and messages, before anything is
        # sent (they read only the index's dim).
        return maxsim.Index._queries(_Dim(self.dim), queries)  # type: ignore[arg-type]

    def search(self, queries: Any, k: int = 10, **kwargs: Any) -> tuple:
        """:meth:`maxsim.Index.search` over every shard: same arguments
        (``nprobe``, ``n_candidates``, ``subset``, ``rerank``, ``exact``,
        ``return_certified``) and the same result shapes."""
        k = as_k(k)
        return_certified = bool(kwargs.get("return_certified", False))
        single, arrays = self._check_queries(queries)
        if "subset" in kwargs and kwargs["subset"] is not None:
            kwargs["subset"] = list(kwargs["subset"])
        shared = ray.put(arrays)
        refs = [a.search.remote(shared, k, kwargs) for a in self.actors]
        answers = self._gather(refs, "search", self.timeout_s)
        scores = np.concatenate([a[0] for a in answers], axis=1)
        ids = np.concatenate([a[1] for a in answers], axis=1)
        # A shard computes its certificate only when asked (it costs a bound per candidate).
        certified = np.logical_and.reduce([a[2] for a in answers]) if return_certified else None
        # Stable: equal scores stay in shard order, then in each shard's order.
        best = np.argsort(-scores.astype(np.float64), axis=1, kind="stable")[:, :k]
        scores = np.take_along_axis(scores, best, axis=1)
        ids = np.take_along_axis(ids, best, axis=1)
        if single:
            scores, ids = scores[0], ids[0]
            certified = None if certified is None else certified[0]
        return (scores, ids, certified) if return_certified else (scores, ids)

    def add(self, ids: Any, docs: Any, *, replace: bool = False) -> None:
        """Add documents, each to its shard (one commit per shard touched).

        Not atomic across shards: if a shard fails, the others' commits
        stand, and the ShardError says which shard failed."""
        from maxsim.index import _doc_list

        arrays = _doc_list(docs, "docs")
        id_list = _ids(ids, "ids")
        if len(id_list) != len(arrays):
            raise ValueError(f"ids: {len(id_list)} ids for {len(arrays)} documents")
        parts = _route(id_list, len(self.actors))
        refs, shards = [], []
        for shard, pos in enumerate(parts):
            if len(pos):
                part = [arrays[p] for p in pos]
                refs.append(self.actors[shard].add.remote(_take(id_list, pos), part, replace))
                shards.append(shard)
        self._gather_writes(refs, shards, "add")

    def delete(self, ids: Any) -> int:
        """Delete documents by id, on their shards. Returns the number deleted."""
        id_list = _ids(ids, "ids")
        parts = _route(id_list, len(self.actors))
        refs, shards = [], []
        for shard, pos in enumerate(parts):
            if len(pos):
                refs.append(self.actors[shard].delete.remote(_take(id_list, pos)))
                shards.append(shard)
        return int(sum(self._gather_writes(refs, shards, "delete")))

    def _gather_writes(self, refs: list[Any], shards: list[int], operation: str) -> list[Any]:
        out = []
        for ref, shard in zip(refs, shards):
            try:
                out.append(ray.get(ref, timeout=self.timeout_s))
            except (ray.exceptions.GetTimeoutError, *_LOST) as err:
                raise ShardError(
                    shard, len(self.actors), self.paths[shard], operation,
                    f"{type(err).__name__}; the shard's commit may or may not have happened "
                    "(each commit is atomic): check its ids before writing again",
                ) from err  # fmt: skip
        return out

    def compact(self) -> None:
        """Compact every shard."""
        self._gather([a.compact.remote() for a in self.actors], "compact", self.timeout_s)

    def shard_stats(self) -> list[dict]:
        """Each shard's :meth:`maxsim.Index.stats`."""
        return self._gather([a.stats.remote() for a in self.actors], "stats", self.timeout_s)

    def stats(self) -> dict:
        """Totals over the shards (``n_docs``, ``n_tokens``, ``index_bytes``,
        ``store_bytes``, ``n_tombstones``), ``bytes_per_token``, and ``shards``."""
        per = self.shard_stats()
        total = {
            key: sum(s[key] for s in per)
            for key in ("n_docs", "n_tokens", "index_bytes", "store_bytes", "n_tombstones")
        }
        total["bytes_per_token"] = total["index_bytes"] / max(total["n_tokens"], 1)
        total["n_shards"] = len(per)
        total["shards"] = per
        return total

    def __len__(self) -> int:
        return int(sum(s["n_docs"] for s in self.shard_stats()))

    def reload(self) -> bool:
        """Make every actor pick up commits written to its folder by another
        process (an actor sees its own writes). Returns whether any changed."""
        return any(self._gather([a.reload.remote() for a in self.actors], "reload", self.timeout_s))

    def pids(self) -> list[int]:
        """The process id of each shard's actor."""
        return self._gather([a.pid.remote() for a in self.actors], "pid", self.timeout_s)

    def restart(self, shard: int) -> None:
        """Replace shard ``shard``'s actor (after it died past its restarts)."""
        if not 0 <= shard < len(self.actors):
            raise IndexError(f"shard: {shard} is not in 0..{len(self.actors) - 1}")
        ray.kill(self.actors[shard], no_restart=True)
        self.actors[shard] = self._start(shard)
        self._gather([self.actors[shard].pid.remote()], "start", None)

    def close(self) -> None:
        """End the actors (their shard folders stay)."""
        for actor in self.actors:
            if actor is not None:
                ray.kill(actor, no_restart=True)
        self.actors = []

    def __enter__(self) -> ShardedIndex:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ShardedIndex({len(self.paths)} shards: {self.paths[0]!r}, ...)"


class _Dim:
    """Stands in for a native index where only ``dim`` is read."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
