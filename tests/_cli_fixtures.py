"""Small BEIR datasets and fixture models for the retrieval command-line tests.

The corpus is made of the fixture tokenizer's words (tests/_model_fixtures.py)
so that the tiny models see no unknown tokens; queries are drawn from the
documents they are judged relevant to.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import _model_fixtures as F  # (sets HF_HUB_OFFLINE)
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
# What ``--threads`` sets in the process (maxsim.cli_retrieval.errors.apply_threads).
CAPTURE = {"capture_output": True, "text": True, "timeout": 900}
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MAXSIM_NUM_THREADS")


def make_beir(folder: Path, n_docs: int = 40, n_queries: int = 8, seed: int = 0) -> Path:
    """A BEIR folder: corpus.jsonl (titles on even ids), queries.jsonl, qrels/test.tsv."""
    rng = np.random.default_rng(seed)
    words = F.WORDS
    folder.mkdir(parents=True, exist_ok=True)
    docs = []
    for i in range(n_docs):
        n = int(rng.integers(4, 30))
        text = " ".join(rng.choice(words, n))
        title = " ".join(rng.choice(words, 3)) if i % 2 == 0 else ""
        docs.append({"_id": f"d{i}", "title": title, "text": text})
    with open(folder / "corpus.jsonl", "w") as f:
        for d in docs:
            f.write(json.dumps(d) + "\n")
    (folder / "qrels").mkdir(exist_ok=True)
    with open(folder / "queries.jsonl", "w") as fq, open(folder / "qrels" / "test.tsv", "w") as fr:
        fr.write("query-id\tcorpus-id\tscore\n")
        for q in range(n_queries):
            target = docs[int(rng.integers(n_docs))]
            words_of = target["text"].split()
            query = " ".join(rng.choice(words_of, min(4, len(words_of)), replace=False))
            fq.write(json.dumps({"_id": f"q{q}", "text": query}) + "\n")
            fr.write(f"q{q}\t{target['_id']}\t1\n")
            other = docs[int(rng.integers(n_docs))]["_id"]
            if other != target["_id"]:
                fr.write(f"q{q}\t{other}\t{int(rng.integers(0, 3))}\n")
        # A query of queries.jsonl that the split does not judge: not evaluated.
        fq.write(json.dumps({"_id": "unjudged", "text": "blue house"}) + "\n")
    return folder


def read_corpus(folder: Path) -> list[dict]:
    with open(folder / "corpus.jsonl") as f:
        return [json.loads(line) for line in f if line.strip()]


def content(doc: dict) -> str:
    return f"{doc['title']} {doc['text']}".strip() if doc.get("title") else doc["text"].strip()


def env() -> dict[str, str]:
    """The environment of a ``python -m maxsim.cli`` child: this checkout's package."""
    import maxsim

    e = dict(os.environ)
    package_root = str(Path(maxsim.__file__).resolve().parent.parent)
    paths = [package_root, str(Path(__file__).resolve().parent)]
    paths += [p for p in sys.path if p and os.path.isdir(p) and p not in paths]
    e["PYTHONPATH"] = os.pathsep.join(paths)
    e["HF_HUB_OFFLINE"] = "1"
    return e


def run_cli(args: list[str], timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "maxsim.cli", *args],
        env=env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        **kw,
    )


def popen_cli(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "maxsim.cli", *args],
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def restore_threads():
    """``--threads N`` run in the test process sets maxsim's, torch's and the OpenMP
    variables' thread counts (as it should in a command); put them back after."""
    import maxsim

    saved_env = {k: os.environ.get(k) for k in THREAD_VARS}
    saved = maxsim.get_num_threads()
    torch = sys.modules.get("torch")
    saved_torch = torch.get_num_threads() if torch is not None else None
    yield
    maxsim.set_num_threads(saved)
    torch = sys.modules.get("torch")
    if torch is not None and saved_torch is not None:
        torch.set_num_threads(saved_torch)
    for k, v in saved_env.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def texts(idx: Path) -> list[str]:
    """The committed and uncommitted text lines of an index, in segment order."""
    return [
        line
        for p in sorted((idx / "texts").glob("seg-*.jsonl"))
        for line in p.read_text().splitlines()
    ]


def committed(idx: Path) -> int:
    """Documents that ``idx/progress.bin`` commits (0 before it exists)."""
    from maxsim.cli_retrieval import progress

    if not (idx / progress.PROGRESS).exists():  # the folder is not in place yet
        return 0
    return progress.read_record(idx)[0].docs  # replaced atomically: never half-written


def roll_back(idx: Path, n_segments: int) -> None:
    """``progress.bin`` as it was after ``n_segments`` batches: a kill right after
    (the journal keeps the later records, as a kill before progress.bin would)."""
    from maxsim.cli_retrieval import progress
    from maxsim.cli_retrieval.corpus import CorpusDigest, Doc

    kept = progress.load(idx).segments[:n_segments]
    n_docs = sum(s.count for s in kept)
    digest = CorpusDigest()
    for line in texts(idx)[:n_docs]:
        d = json.loads(line)
        digest.update(Doc(d["_id"], d["title"], d["text"], ""))
    rolled = progress.Progress(
        docs=n_docs,
        digest=digest.hexdigest() if n_docs else None,
        segments=kept,
        journal_crc=progress.journal_crc(kept),
    )
    progress.write(idx, rolled)


def run_main(args: list, capsys) -> tuple[int, str]:
    """Exit code and stderr of ``maxsim ARGS`` run in this process."""
    from maxsim import cli

    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        cli.main([str(a) for a in args])
    code = exc.value.code
    return (0 if code is None else code), capsys.readouterr().err
