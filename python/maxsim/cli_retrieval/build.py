"""``maxsim index build CORPUS OUT_DIR``: stream a corpus through an encoder (or
precomputed embeddings) into a retrieval index, one committed batch at a time.

Interrupted (Ctrl-C, SIGTERM, a kill, a crash) and run again with the same
arguments, the build continues after the last committed batch: it re-reads
the documents already indexed (without encoding them) to check, by their
digest, that the corpus still starts with them. Ctrl-C and SIGTERM during a
commit wait for the commit to finish.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np

from .corpus import CorpusDigest, Doc, count_corpus, iter_corpus, resolve_corpus
from .encoders import Encoder, load_encoder, model_record
from .errors import CliError, UsageError, log
from .store import SETTINGS, RetrievalIndex

STORES = ("none", "float16", "bfloat16", "int8", "float32")


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold SIGINT / SIGTERM until the block ends, then raise KeyboardInterrupt."""
    received: list[int] = []

    def hold(signum: int, frame: Any) -> None:
        received.append(signum)

    try:
        old = {s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: signals go elsewhere anyway
        yield
        return
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    if received:
        raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    def raise_interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, raise_interrupt)
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def progress_bar(total: int, initial: int, quiet: bool) -> Any:
    """A docs/s bar with an ETA on stderr, only when stderr is a terminal."""
    enabled = not quiet and sys.stderr.isatty()
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="doc",
        desc="indexing",
        file=sys.stderr,
        dynamic_ncols=True,
        smoothing=0.1,
    )


class Embeddings:
    """Precomputed document embeddings (``--embeddings``), memory-mapped.

    dense / binary: ``.npy`` of shape ``(n_docs, dim)``, float32 / float16.
    colbert: ``.npy`` of shape ``(total_tokens, dim)`` (every document's token
    vectors back to back, in corpus order) and ``--doclens`` ``.npy`` of shape
    ``(n_docs,)`` with each document's token count (ColBERT's ``doclens``).
    """

    def __init__(self, path: str, doclens: Optional[str], kind: str) -> None:
        self.path = path
        try:
            self.array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise CliError(f"{path}: not a readable .npy file ({exc})") from None
        if self.array.ndim != 2 or self.array.dtype.kind != "f":
            raise CliError(
                f"{path}: expected a 2-D float array, got shape "
                f"{self.array.shape} dtype {self.array.dtype}"
            )
        self.offsets: Optional[np.ndarray] = None
        if kind == "colbert":
            if doclens is None:
                raise UsageError("--kind colbert with --embeddings needs --doclens FILE.npy")
            lengths = np.load(doclens, allow_pickle=False)
            if lengths.ndim != 1 or lengths.dtype.kind not in "iu" or (lengths < 1).any():
                raise CliError(f"{doclens}: expected a 1-D array of token counts >= 1")
            if int(lengths.sum()) != self.array.shape[0]:
                raise CliError(
                    f"{doclens}: token counts sum to {int(lengths.sum())}, but {path} has "
                    f"{self.array.shape[0]} rows"
                )
            self.offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
        elif doclens is not None:
            raise UsageError("--doclens goes with --kind colbert")

    @property
    def n_docs(self) -> int:
        return len(self.offsets) - 1 if self.offsets is not None else self.array.shape[0]

    @property
    def dim(self) -> int:
        return int(self.array.shape[1])

    def rows(self, start: int, stop: int) -> Any:
        if self.offsets is None:
            return np.asarray(self.array[start:stop], dtype=np.float32)
        o = self.offsets
        return [
            np.asarray(self.array[o[i] : o[i + 1]], dtype=np.float32) for i in range(start, stop)
        ]


def _settings(
    args: argparse.Namespace, kind: str, dim: int, record: Optional[dict], source: Any
) -> dict:
    store = None if args.store in (None, "none") else args.store
    if kind == "binary" and args.store is None:
        store = "float16"  # exact rescoring of the Hamming candidates, half the bytes of float32
    return {
        "kind": kind,
        "dim": dim,
        "model": record,
        "build": {
            "batch_size": args.batch_size,
            "nbits": args.nbits,
            "codec": args.codec,
            "store": store,
            "train_docs": args.train_docs,
            "embeddings": str(Path(args.embeddings).resolve()) if args.embeddings else None,
        },
        "corpus": source.describe(),
        "created": time.time(),
    }


def _same_request(index: RetrievalIndex, args: argparse.Namespace, kind: str, source: Any) -> None:
    """A rerun must ask for the index that is there (else it is not a resume)."""
    s = index.settings
    problems = []
    if kind != "auto" and kind != s["kind"]:
        problems.append(f"--kind {kind} (the index is {s['kind']})")
    if source.describe()["path"] != s["corpus"]["path"]:
        problems.append(f"corpus {source.path} (the index reads {s['corpus']['path']})")
    model = s.get("model")
    if args.model and model is not None:
        from .encoders import fingerprint, model_dir

        if fingerprint(model_dir(args.model)) != model["fingerprint"]:
            problems.append(f"--model {args.model} (the index was built with {model['name']})")
    if problems:
        raise CliError(
            f"{index.path} holds an index built with other settings: {'; '.join(problems)}. "
            "Pass --overwrite to replace it, or another OUT_DIR"
        )


def _skip_committed(docs: Iterator[Doc], index: RetrievalIndex, digest: CorpusDigest) -> None:
    for _ in range(index.n_docs):
        doc = next(docs, None)
        if doc is None:
            raise CliError(
                f"the corpus now has fewer documents than the {index.n_docs} "
                f"{index.path} already indexed; rebuild with --overwrite"
            )
        digest.update(doc)
    if index.n_docs and digest.hexdigest() != index.progress.digest:
        raise CliError(
            f"the corpus changed since {index.path} was partly built (its first "
            f"{index.n_docs} documents differ); rebuild with --overwrite"
        )


def _batches(docs: Iterator[Doc], size: int) -> Iterator[list[Doc]]:
    batch: list[Doc] = []
    for doc in docs:
        batch.append(doc)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _vectors(
    batch: list[Doc],
    start: int,
    encoder: Optional[Encoder],
    emb: Optional[Embeddings],
    batch_size: int,
) -> Any:
    if emb is not None:
        if start + len(batch) > emb.n_docs:
            raise CliError(
                f"{emb.path}: embeddings for {emb.n_docs} documents, the corpus has more"
            )
        return emb.rows(start, start + len(batch))
    assert encoder is not None
    return encoder.encode_documents([d.content for d in batch], batch_size)


def _commit(index: RetrievalIndex, batch: list[Doc], vectors: Any, digest: CorpusDigest) -> None:
    for doc in batch:
        digest.update(doc)
    rescore = None
    if index.kind == "binary":
        import maxsim.binary

        store = index.settings["build"]["store"]
        if store is not None:
            rescore = (
                maxsim.quantize(vectors, store)
                if store == "int8"
                else vectors.astype(np.float16 if store == "float16" else np.float32)
            )
        vectors = maxsim.binary.quantize(vectors)
    if index.kind == "dense" and not np.isfinite(vectors).all():
        raise CliError(f"{batch[0].source}: NaN or inf in the embeddings of this batch")
    with deferred_interrupts():
        index.commit_batch(batch, vectors, digest.hexdigest(), rescore=rescore)


def _train_colbert(index: RetrievalIndex, pending: list[tuple[list[Doc], Any]], total: int) -> None:
    sample = [v for _, vecs in pending for v in vecs]
    n_tokens = sum(v.shape[0] for v in sample)
    expected = max(n_tokens, int(n_tokens / max(len(sample), 1) * total))
    log.info(
        f"training centroids on {len(sample)} documents ({n_tokens} tokens; "
        f"~{expected} tokens expected in all)"
    )
    with deferred_interrupts():
        index.colbert_index().train(sample, expected_tokens=expected)


def open_or_create(
    args: argparse.Namespace, source: Any
) -> tuple[RetrievalIndex, Optional[Encoder], Optional[Embeddings]]:
    out = Path(args.out_dir)
    kind = args.kind
    if args.overwrite and out.exists():
        if (out / SETTINGS).exists() or not any(out.iterdir()):
            shutil.rmtree(out)
        else:
            raise CliError(f"{out}: not a maxsim retrieval index; --overwrite only replaces one")
    encoder: Optional[Encoder] = None
    emb: Optional[Embeddings] = None
    if (out / SETTINGS).exists():
        index = RetrievalIndex.open(out)
        _same_request(index, args, kind, source)
        kind = index.kind
        if index.settings["build"]["embeddings"]:
            emb = Embeddings(index.settings["build"]["embeddings"], args.doclens, kind)
        return index, None, emb  # the encoder loads in build(), if there is work left
    if out.exists() and any(out.iterdir()):
        raise CliError(f"{out}: exists and is not empty (and not an index); choose another OUT_DIR")
    if args.embeddings:
        if kind == "auto":
            kind = "colbert" if args.doclens else "dense"
        emb = Embeddings(args.embeddings, args.doclens, kind)
        record = model_record(args.model, kind, args.backend) if args.model else None
        if record is not None and record["dim"] != emb.dim:
            raise CliError(
                f"{args.embeddings}: dimension {emb.dim}, but --model {args.model} "
                f"gives {record['dim']}"
            )
        dim = emb.dim
    else:
        if not args.model:
            raise UsageError("pass --model MODEL (or --embeddings FILE)")
        encoder = load_encoder(args.model, "dense" if kind == "binary" else kind, args.backend)
        kind = "binary" if kind == "binary" else encoder.kind
        encoder.kind = kind
        record, dim = encoder.record, encoder.dim
    if kind == "binary" and args.store == "bfloat16":
        raise UsageError("--kind binary rescoring stores float16, int8 or float32 (or none)")
    return RetrievalIndex.create(out, _settings(args, kind, dim, record, source)), encoder, emb


def build(args: argparse.Namespace) -> int:
    source = resolve_corpus(args.corpus)
    total = count_corpus(source)  # validates a JSONL corpus before any encoding
    index, encoder, emb = open_or_create(args, source)
    if index.complete and index.n_docs == total:
        log.info(f"{index.path}: complete ({index.n_docs} documents); nothing to do")
        return 0
    if encoder is None and emb is None:  # a resume (or a corpus grown since)
        model = index.settings["model"]
        encoder = load_encoder(model["path"], index.kind, model["backend"])
    start = index.resume_point()
    if start:
        log.info(f"resuming {index.path} after {start} committed documents")
    docs = iter_corpus(source)
    digest = CorpusDigest()
    _skip_committed(docs, index, digest)
    bar = progress_bar(total, start, args.quiet)
    t0, done = time.perf_counter(), 0
    colbert_untrained = (
        index.kind == "colbert" and index.colbert_index().stats()["n_centroids"] == 0
    )
    pending: list[tuple[list[Doc], Any]] = []
    position = start
    try:
        with sigterm_as_interrupt():
            for batch in _batches(docs, args.batch_size):
                vectors = _vectors(batch, position, encoder, emb, args.batch_size)
                position += len(batch)
                if colbert_untrained:
                    pending.append((batch, vectors))
                    if sum(len(b) for b, _ in pending) < args.train_docs:
                        continue
                    _train_colbert(index, pending, total)
                    colbert_untrained = False
                else:
                    pending = [(batch, vectors)]
                for b, v in pending:
                    _commit(index, b, v, digest)
                    done += len(b)
                    if bar is not None:
                        bar.update(len(b))
                pending = []
            if pending:  # a corpus smaller than --train-docs
                _train_colbert(index, pending, total)
                for b, v in pending:
                    _commit(index, b, v, digest)
                    done += len(b)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        print(
            f"maxsim: interrupted; {index.n_docs} of {total} documents are committed in "
            f"{index.path}. Run the same command again to resume.",
            file=sys.stderr,
        )
        raise SystemExit(130) from None
    if bar is not None:
        bar.close()
    if emb is not None and emb.n_docs != index.n_docs:
        raise CliError(
            f"{emb.path}: embeddings for {emb.n_docs} documents, but the corpus has {index.n_docs}"
        )
    if index.kind == "colbert" and index.colbert_index().stats()["n_segments"] > 1:
        # One segment per committed batch made the build resumable; search is
        # faster over one. compact() is one atomic commit: a kill here leaves
        # the same documents, and the rerun compacts again.
        log.info(f"{index.path}: merging the index segments")
        with deferred_interrupts():
            index.colbert_index().compact()
    index.mark_complete(index.n_docs)
    elapsed = time.perf_counter() - t0
    rate = done / elapsed if elapsed > 0 else 0.0
    log.info(
        f"{index.path}: {index.n_docs} documents ({index.kind}, dim {index.dim}); "
        f"{done} indexed in {elapsed:.1f} s ({rate:.0f} docs/s)"
    )
    return 0
