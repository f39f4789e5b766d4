"""Ray: batch scoring with ``Dataset.map_batches`` and an index sharded over actors.

Needs ``ray`` (``pip install "maxsim[ray]"``; ``ray[data]`` for Datasets)::

    import ray
    from maxsim.integrations.ray import MaxSimScorer, ShardedIndex

    scored = dataset.map_batches(
        MaxSimScorer, fn_constructor_kwargs={"index": "docs.index", "top_k": 10},
        compute=ray.data.ActorPoolStrategy(size=4), num_cpus=1, batch_size=256,
        zero_copy_batch=True,
    )

    paths = ShardedIndex.create("docs.shards", 4, dim=128, train_docs=sample)
    with ShardedIndex(paths) as index:
        index.add(ids, docs)
        scores, ids = index.search(queries, k=10)

* :class:`MaxSimScorer` scores each row's candidates for its query (vectors,
  ids of an index, or texts with a ColBERT model); the index and the model
  load once per actor.
* :class:`ShardedIndex` holds one :class:`maxsim.Index` shard per actor and
  searches them by scatter-gather with a global top-k merge; a shard that
  cannot answer raises :class:`ShardError`, never a partial result.

Deployment on a multi-node cluster: docs/integrations.md.
"""

from __future__ import annotations

from ._common import missing_framework

try:
    import ray  # noqa: F401  (the framework itself; the modules below use it)
except ImportError as err:  # pragma: no cover - exercised in a venv without it
    raise ImportError(missing_framework("ray", "ray", __name__)) from err

from ._ray_scorer import MaxSimScorer
from ._ray_shards import ShardedIndex, ShardError, shard_of

__all__ = ["MaxSimScorer", "ShardError", "ShardedIndex", "shard_of"]
