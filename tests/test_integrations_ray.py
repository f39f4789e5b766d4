"""maxsim.integrations.ray on a real local Ray cluster (``ray.init(num_cpus=2)``,
shut down at the end): MaxSimScorer in ``Dataset.map_batches``, ShardedIndex
against one index over the same documents, and shard actors killed
(SIGKILL) while a search is in flight.

References: MaxSim in float64 numpy on the stored vectors (``Index.get``),
and a single :class:`maxsim.Index` over the same documents."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import _model_fixtures as F  # noqa: I001  (sets HF_HUB_OFFLINE before the imports below)
import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

import maxsim  # noqa: E402
from conftest import normalised, reference_maxsim  # noqa: E402
from maxsim.integrations.ray import MaxSimScorer, ShardedIndex, ShardError, shard_of  # noqa: E402

DIM, N_DOCS = 16, 300


@pytest.fixture(scope="module")
def cluster():
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=150 * 1024**2,
        log_to_driver=False,
        logging_level="ERROR",
    )
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus():
    rng = np.random.default_rng(7)
    docs = [normalised(rng, int(rng.integers(1, 40)), DIM) for _ in range(N_DOCS)]
    queries = [normalised(rng, int(rng.integers(1, 12)), DIM) for _ in range(6)]
    return docs, queries


@pytest.fixture(scope="module")
def single(tmp_path_factory, corpus):
    docs, _ = corpus
    index = maxsim.Index.create(
        tmp_path_factory.mktemp("single") / "ix", DIM, store="float32", n_centroids=32
    )
    index.train(docs)
    index.add(np.arange(N_DOCS), docs)
    return index


@pytest.fixture(scope="module")
def shard_paths(tmp_path_factory, corpus):
    docs, _ = corpus
    root = tmp_path_factory.mktemp("sharded")
    paths = ShardedIndex.create(root, 2, dim=DIM, train_docs=docs, store="float32", n_centroids=32)
    for shard, path in enumerate(paths):  # written offline, routed as ShardedIndex.add would
        index = maxsim.Index.open(path)
        mine = [i for i in range(N_DOCS) if shard_of(i, 2) == shard]
        index.add(np.array(mine), [docs[i] for i in mine])
    return paths


def reference(index: maxsim.Index, query: np.ndarray, ids) -> np.ndarray:
    return np.array([reference_maxsim(query, v) for v in index.get(list(ids))])


# ------------------------------------------------------------------ MaxSimScorer


def test_scorer_on_index_ids(single, corpus):
    _, queries = corpus
    rng = np.random.default_rng(1)
    cands = rng.choice(N_DOCS, size=(len(queries), 25), replace=False)
    batch = {"query": np.array(queries, dtype=object), "candidates": cands, "qid": np.arange(6)}
    out = MaxSimScorer(single.path, top_k=5)(batch)
    assert out["scores"].shape == (6, 25) and out["scores"].dtype == np.float32
    assert out["qid"].tolist() == list(range(6))
    for r, q in enumerate(queries):
        want = reference(single, q, cands[r])
        np.testing.assert_allclose(out["scores"][r], want, rtol=1e-5, atol=1e-5)
        assert out["top_indices"][r].tolist() == np.argsort(-want, kind="stable")[:5].tolist()
    # Ragged candidate lists, read-only (zero-copy) inputs, top_k past a row's length.
    ragged = np.empty(2, dtype=object)
    ragged[:] = [cands[0][:3], cands[1]]
    fixed = np.stack([queries[0][:1], queries[1][:1]])
    fixed.setflags(write=False)
    out = MaxSimScorer(single.path, top_k=4, keep_columns=False)(
        {"query": fixed, "candidates": ragged}
    )
    assert set(out) == {"scores", "top_indices", "top_scores"}
    np.testing.assert_allclose(
        out["scores"][0], reference(single, fixed[0], cands[0][:3]), rtol=1e-5
    )
    assert out["top_indices"][0, 3] == -1 and np.isneginf(out["top_scores"][0, 3])


def test_scorer_on_vectors_texts_and_errors(tmp_path, single, corpus):
    docs, queries = corpus
    fixed = np.stack([np.stack([d[:1] for d in docs[:4]])] * 2)  # (2, 4, 1, DIM)
    out = MaxSimScorer()({"query": np.stack([queries[0][:2]] * 2), "candidates": fixed})
    want = [reference_maxsim(queries[0][:2], d[:1]) for d in docs[:4]]
    np.testing.assert_allclose(out["scores"][1], want, rtol=1e-5)
    rows = np.empty(1, dtype=object)
    rows[0] = np.array(docs[:5], dtype=object)
    out = MaxSimScorer()({"query": np.array([queries[1]], dtype=object), "candidates": rows})
    np.testing.assert_allclose(
        out["scores"][0], [reference_maxsim(queries[1], d) for d in docs[:5]], rtol=1e-5
    )
    colbert = F.make_pylate_dir(tmp_path / "colbert", seed=2)
    texts = [["a dog and a cat", "protein expression", "blue house"], ["gene"]]
    cand_col = np.empty(2, dtype=object)
    cand_col[:] = texts
    out = MaxSimScorer(model=colbert)(
        {"query": np.array(["cells", "genes"]), "candidates": cand_col}
    )
    from maxsim.models import ColBERT

    model = ColBERT.from_pretrained(colbert)
    for r, query in enumerate(["cells", "genes"]):
        q = model.encode(query, is_query=True)
        want = [reference_maxsim(q, model.encode(t, is_query=False)) for t in texts[r]]
        np.testing.assert_allclose(out["scores"][r], want, rtol=1e-5)
    scorer = MaxSimScorer(single.path)
    with pytest.raises(ValueError, match=r"candidates\[1\]: id 12345 is not in the index"):
        scorer({"query": np.stack([queries[0]] * 2), "candidates": np.array([[1, 2], [3, 12345]])})
    with pytest.raises(KeyError, match="batch has no column 'candidates'"):
        scorer({"query": np.stack([queries[0]])})
    with pytest.raises(TypeError, match="text queries need a model="):
        scorer({"query": np.array(["cells"]), "candidates": np.array([[1]])})
    with pytest.raises(ValueError, match=r"query\[0\]: expected .* got shape \(16,\)"):
        scorer({"query": np.zeros((1, DIM), np.float32), "candidates": np.array([[1]])})


def test_scorer_in_map_batches_loads_once_per_actor(cluster, single, corpus, tmp_path):
    _, queries = corpus
    rng = np.random.default_rng(3)
    rows = [
        {"qid": i, "query": queries[i % 6][:1].copy(), "candidates": rng.choice(N_DOCS, 20, False)}
        for i in range(40)
    ]
    log = tmp_path / "loads.txt"
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        result = (
            ray.data.from_items(rows)
            .map_batches(
                CountingScorer,
                fn_constructor_args=(os.fspath(log), single.path),
                fn_constructor_kwargs={"top_k": 3},
                compute=ray.data.ActorPoolStrategy(size=2),
                num_cpus=1,
                batch_size=5,
                zero_copy_batch=True,
            )
            .take_all()
        )
    finally:
        ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert sorted(r["qid"] for r in result) == list(range(40))
    for r in result:
        want = reference(single, rows[r["qid"]]["query"], rows[r["qid"]]["candidates"])
        np.testing.assert_allclose(r["scores"], want, rtol=1e-5, atol=1e-5)
        assert r["top_indices"].tolist() == np.argsort(-want, kind="stable")[:3].tolist()
    # 8 batches over a pool of 2 actors: each actor loads once, however the
    # batches spread (on a busy machine one actor may get none of them).
    loads = [int(p) for p in log.read_text().split()]
    scorer_pids = [int(s.split(":")[0]) for s in {r["scorer"] for r in result}]
    assert len(loads) == len(set(loads)) <= 2, loads
    assert len(scorer_pids) == len(set(scorer_pids)), scorer_pids  # one scorer per actor
    assert set(scorer_pids) <= set(loads)


class CountingScorer(MaxSimScorer):
    """Logs each construction (the index opens there) and tags rows with
    the scorer that scored them."""

    def __init__(self, log: str, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tag = f"{os.getpid()}:{id(self)}"
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")

    def __call__(self, batch):
        out = super().__call__(batch)
        out["scorer"] = np.array([self.tag] * len(out["scores"]))
        return out


# ------------------------------------------------------------------ ShardedIndex


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_candidates": N_DOCS},  # every candidate of the probed lists scored
        {"n_candidates": N_DOCS, "rerank": "exact"},
        {"exact": True},  # certified exhaustive top-k
        {"subset": list(range(0, N_DOCS, 7))},  # a subset below n_candidates
    ],
)
def test_sharded_equals_one_index(cluster, single, shard_paths, corpus, kwargs):
    _, queries = corpus
    with ShardedIndex(shard_paths) as sharded:
        assert len(sharded) == len(single) == N_DOCS
        assert sharded.stats()["n_tokens"] == single.stats()["n_tokens"]
        for k in (1, 10, 2 * N_DOCS):
            want_s, want_i = single.search(queries, k, **kwargs)
            got_s, got_i = sharded.search(queries, k, **kwargs)
            np.testing.assert_array_equal(got_i, want_i)
            np.testing.assert_array_equal(got_s, want_s)  # bitwise: same codes, same kernels
        one = sharded.search(queries[2], 5, return_certified=True, **kwargs)
        want = single.search(queries[2], 5, return_certified=True, **kwargs)
        assert one[0].shape == (5,) and np.array_equal(one[1], want[1])
        if "exact" in kwargs:
            assert bool(one[2]) and bool(want[2])
        reranked = "exact" in kwargs or kwargs.get("rerank") == "exact"
        if one[2] and reranked:  # certified by every shard: the exhaustive top-k of all
            docs, _ = corpus
            exhaustive_s, exhaustive_i = maxsim.topk(queries[2], docs, k=5)
            np.testing.assert_array_equal(one[1], exhaustive_i)
            np.testing.assert_allclose(one[0], exhaustive_s, rtol=1e-5)


def test_sharded_writes_route_by_id(cluster, tmp_path, corpus, single):
    docs, queries = corpus
    paths = ShardedIndex.create(
        tmp_path, 3, dim=DIM, train_docs=docs, store="float32", n_centroids=32
    )
    with pytest.raises(FileExistsError):
        ShardedIndex.create(tmp_path, 3, dim=DIM, train_docs=docs)
    names = [f"doc-{i}" for i in range(N_DOCS)]
    with ShardedIndex(paths, num_cpus_per_shard=0.5) as sharded:  # 3 shards on 2 CPUs
        sharded.add(names, docs)
        for shard, path in enumerate(paths):
            held = maxsim.Index.open(path).ids()
            assert sorted(held) == sorted(n for n in names if shard_of(n, 3) == shard)
        s, i = sharded.search(queries, 10, exact=True)
        want_s, want_i = single.search(queries, 10, exact=True)
        assert i.tolist() == [[f"doc-{j}" for j in row] for row in want_i.tolist()]
        np.testing.assert_array_equal(s, want_s)
        assert sharded.delete(names[:10]) == 10 and len(sharded) == N_DOCS - 10
        with pytest.raises(ValueError, match="queries: dimension 3"):
            sharded.search(np.ones((2, 3), np.float32), 5)
        with pytest.raises(ValueError, match="nprobe"):
            sharded.search(queries[0], 5, nprobe=0)


@pytest.mark.parametrize("n_shards", [1, 4])
def test_any_shard_count_gives_the_exhaustive_top_k(cluster, tmp_path, corpus, n_shards):
    """1 shard and 4 (more shards than CPUs): the same results as exhaustive
    maxsim.topk, and as one index with every candidate scored."""
    docs, queries = corpus
    paths = ShardedIndex.create(
        tmp_path, n_shards, dim=DIM, train_docs=docs, store="float32", n_centroids=32
    )
    with ShardedIndex(paths, num_cpus_per_shard=0.5) as sharded:
        sharded.add(np.arange(N_DOCS), docs)
        held = [s["n_docs"] for s in sharded.shard_stats()]
        assert sum(held) == N_DOCS and (n_shards == 1 or min(held) > 0)
        got_s, got_i = sharded.search(queries, 10, exact=True)
        for r, q in enumerate(queries):
            want_s, want_i = maxsim.topk(q, docs, k=10)
            np.testing.assert_array_equal(got_i[r], want_i)
            np.testing.assert_allclose(got_s[r], want_s, rtol=1e-5, atol=1e-6)
        wide = sharded.search(queries, 10, n_candidates=N_DOCS, rerank="exact")
        np.testing.assert_array_equal(wide[1], got_i)


def _stop_then_kill(pid: int, search, *, wait: float = 1.0):
    """SIGSTOP shard ``pid``, start ``search`` in a thread (it reaches the
    stopped actor and waits there), SIGKILL the actor while the search is in
    flight; returns (result or exception, whether it was still in flight)."""
    os.kill(pid, signal.SIGSTOP)
    box: dict = {}

    def run():
        try:
            box["result"] = search()
        except Exception as err:  # noqa: BLE001  (the test inspects it)
            box["error"] = err

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(wait)
    in_flight = thread.is_alive()
    os.kill(pid, signal.SIGKILL)
    thread.join(120)
    assert not thread.is_alive(), "the search hung after the kill"
    return box, in_flight


def test_actor_killed_mid_query_is_retried(cluster, single, shard_paths, corpus):
    _, queries = corpus
    with ShardedIndex(shard_paths, max_restarts=1, max_task_retries=1) as sharded:
        pids = sharded.pids()
        box, in_flight = _stop_then_kill(
            pids[1], lambda: sharded.search(queries, 10, n_candidates=N_DOCS)
        )
        assert in_flight and "error" not in box, box.get("error")
        want = single.search(queries, 10, n_candidates=N_DOCS)
        np.testing.assert_array_equal(box["result"][1], want[1])  # complete, not partial
        np.testing.assert_array_equal(box["result"][0], want[0])
        new = sharded.pids()
        assert new[0] == pids[0] and new[1] != pids[1]  # Ray restarted shard 1's actor


def test_actor_killed_without_restarts_names_the_shard(cluster, single, shard_paths, corpus):
    _, queries = corpus
    with ShardedIndex(shard_paths, max_restarts=0, max_task_retries=0) as sharded:
        box, in_flight = _stop_then_kill(sharded.pids()[0], lambda: sharded.search(queries, 10))
        assert in_flight and "result" not in box
        err = box["error"]
        assert isinstance(err, ShardError) and err.shard == 0 and err.path == shard_paths[0]
        assert f"shard 0 of 2 ({shard_paths[0]}) failed during search" in str(err)
        with pytest.raises(ShardError, match="shard 0 of 2"):  # still dead: no partial answer
            sharded.search(queries, 10)
        sharded.restart(0)
        got = sharded.search(queries, 10, exact=True)
        np.testing.assert_array_equal(got[1], single.search(queries, 10, exact=True)[1])


def test_stuck_shard_times_out(cluster, shard_paths, corpus):
    _, queries = corpus
    with ShardedIndex(shard_paths, timeout_s=2.0) as sharded:
        pid = sharded.pids()[1]
        os.kill(pid, signal.SIGSTOP)
        try:
            with pytest.raises(ShardError, match="shard 1 of 2 .* no answer within 2.0 s"):
                sharded.search(queries, 10)
        finally:
            os.kill(pid, signal.SIGCONT)


def test_unplaceable_shards_fail_with_a_hint(cluster, shard_paths):
    with pytest.raises(ShardError, match=r"shard 0 of 2 .* failed during start: .*num_cpus=3"):
        ShardedIndex(shard_paths, num_cpus_per_shard=3, start_timeout_s=2)
    with pytest.raises(ValueError, match="shards: .* is not a folder"):
        ShardedIndex([shard_paths[0], shard_paths[0] + "-missing"])
    with pytest.raises(ValueError, match="actor_options: 1 entries for 2 shards"):
        ShardedIndex(shard_paths, actor_options=[{}])
    with ShardedIndex(shard_paths) as sharded:  # the failed start left no actor holding CPUs
        assert len(sharded) == N_DOCS
