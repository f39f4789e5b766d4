"""maxsim.Index survives SIGKILL at any point of add, delete and compact.

A child process runs a fixed sequence of operations on one index and logs
each one after it returns; the parent kills it with SIGKILL at a random
moment, many times. After each kill the index must open (checksums
verified) in the state of the last acknowledged operation or of the one
that was running (committed but not yet acknowledged), with every document
exactly as added: an exact search equals exhaustive ``maxsim.topk`` over
the documents that state holds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import maxsim
import numpy as np
import pytest
from maxsim import Index

DIM = 16
BATCH = 40
ROUNDS = int(os.environ.get("MAXSIM_CRASH_ROUNDS", "25"))

CHILD = r"""
import os, sys
import numpy as np
sys.path.insert(0, os.environ["MAXSIM_TEST_DIR"])
from test_index_crash import batch_docs, op_kind
from maxsim import Index
path, log, start, stop = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def ack(line):
    with open(log, "a") as f:
        f.write(line + "\n"); f.flush(); os.fsync(f.fileno())
if os.path.exists(os.path.join(path, "manifest.json")):
    index = Index.open(path)
else:
    index = Index.create(path, %d, store="float32", n_centroids=16)
ack("ready")
for j in range(start, stop):
    kind = op_kind(j)
    if kind == "add":
        index.add(np.arange(j * %d, (j + 1) * %d), batch_docs(j))
    elif kind == "delete":
        ids = [i for i in range((j - 1) * %d, j * %d) if i %% 3 == 0]
        index.delete(ids)
    else:
        index.compact()
    ack(str(j))
""" % (DIM, BATCH, BATCH, BATCH, BATCH)  # noqa: UP031


def op_kind(j: int) -> str:
    if j % 4 != 3:
        return "add"
    return "delete" if j % 8 == 3 else "compact"


def batch_docs(j: int) -> list[np.ndarray]:
    rng = np.random.default_rng(1000 + j)
    docs = []
    for _ in range(BATCH):
        x = rng.standard_normal((int(rng.integers(1, 12)), DIM)).astype(np.float32)
        docs.append(x / np.linalg.norm(x, axis=1, keepdims=True))
    return docs


def state(j: int) -> dict[int, np.ndarray]:
    """Live documents after operations 0..j (in insertion order)."""
    live: dict[int, np.ndarray] = {}
    for op in range(j + 1):
        kind = op_kind(op)
        if kind == "add":
            live.update(zip(range(op * BATCH, (op + 1) * BATCH), batch_docs(op)))
        elif kind == "delete":
            for i in range((op - 1) * BATCH, op * BATCH):
                if i % 3 == 0:
                    live.pop(i)
    return live


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_sigkill_at_random_points_keeps_the_last_commit(tmp_path) -> None:
    path = tmp_path / "ix"
    rng = np.random.default_rng(7)
    env = dict(os.environ, MAXSIM_TEST_DIR=os.path.dirname(__file__), MAXSIM_NUM_THREADS="1")
    query = batch_docs(10_000)[0]
    done = -1  # operations 0..done are committed
    kills_inside = 0
    for round_ in range(ROUNDS):
        log = tmp_path / f"log{round_}"
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), str(log), str(done + 1), str(done + 200)],
            env=env,
        )
        deadline = time.monotonic() + 60
        while not (log.exists() and log.read_text().startswith("ready")):
            assert child.poll() is None, "child died before starting"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        time.sleep(float(rng.uniform(0.0, 0.4)))
        child.send_signal(signal.SIGKILL)
        child.wait()
        acked = [int(x) for x in log.read_text().split()[1:]]
        last = acked[-1] if acked else done
        index = Index.open(path)  # verifies every checksum
        ids = index.ids()
        expected_now, expected_next = state(last), state(last + 1)
        if list(ids) == list(expected_now):
            live = expected_now
            done = last
        else:
            assert list(ids) == list(expected_next), f"round {round_}: state after op {last}?"
            live = expected_next
            done = last + 1
            kills_inside += 1
        assert len(index) == len(live)
        if live:
            names = list(live)
            want_s, want_i = maxsim.topk(query, list(live.values()), k=5)
            s, i = index.search(query, 5, exact=True)
            assert list(i) == [names[w] for w in want_i]
            np.testing.assert_array_equal(s, want_s)
        del index
    # Some kills must have landed between a commit and its acknowledgement
    # or in the middle of an operation; most rounds ran several operations.
    assert done >= ROUNDS
    leftovers = [p.name for p in path.iterdir() if p.name.startswith("manifest.json.tmp")]
    writer = Index.open(path)
    writer.compact()  # taking the writer lock removes what killed writers left
    names = {p.name for p in path.iterdir()}
    assert not any(n.startswith("manifest.json.tmp") for n in names), (leftovers, names)
