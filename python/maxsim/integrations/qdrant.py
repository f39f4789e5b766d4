"""Qdrant: rerank a dense prefetch by exact MaxSim on stored multivectors.

Needs ``qdrant-client`` (``pip install "maxsim[qdrant]"``); works with a
server and with the client's in-process local mode (``QdrantClient(":memory:")``
or ``path=``). A collection keeps a dense vector for the first stage and a
multivector (``multivector_config=MultiVectorConfig(comparator=MAX_SIM)``)
for the second::

    from qdrant_client import models
    from maxsim.integrations import qdrant as mq

    hits = mq.query_points(
        client, "docs",
        prefetch=models.Prefetch(query=dense_query, using="dense", limit=100),
        query=colbert_query, using="colbert", limit=10,
    ).points

:func:`query_points` takes the arguments of ``client.query_points`` for this
query shape and gives Qdrant's own ``max_sim`` scores (tested against local
mode): it runs the prefetch with ``with_vectors=[using]`` and scores the
returned multivectors with maxsim's kernels. :func:`rerank_points` does the
second half for points you already hold.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import numpy as np

import maxsim

from ._common import best_first, check_count, missing_framework

try:
    from qdrant_client import QdrantClient, models
    from qdrant_client.http.models import QueryResponse
except ImportError as err:  # pragma: no cover - exercised in a venv without it
    raise ImportError(missing_framework("qdrant-client", "qdrant", __name__)) from err

__all__ = ["multivector_distance", "query_points", "rerank_points"]

#: Qdrant's guard against dividing by a zero norm (its local mode's ``EPSILON``).
_EPSILON = 1.1920929e-07
_SUPPORTED = (models.Distance.COSINE, models.Distance.DOT)
Point = Union[models.ScoredPoint, models.Record]


def _as_distance(distance: Any) -> models.Distance:
    try:
        value = models.Distance(distance)
    except ValueError:
        raise ValueError(
            f"distance: expected 'Cosine' or 'Dot' (a qdrant_client.models.Distance), got "
            f"{distance!r}"
        ) from None
    if value not in _SUPPORTED:
        raise ValueError(
            f"distance: MaxSim reranking supports Cosine and Dot multivectors, not {value.value}"
        )
    return value


def multivector_distance(client: QdrantClient, collection_name: str, using: Optional[str]) -> str:
    """The distance of the multivector ``using`` (``None``: the unnamed vector)
    of a collection; ValueError if it is not a MaxSim multivector."""
    vectors = client.get_collection(collection_name).config.params.vectors
    if isinstance(vectors, dict):
        params = vectors.get(using or "")
        if params is None:
            raise ValueError(
                f"using={using!r}: collection {collection_name!r} has no such vector "
                f"(it has {sorted(vectors)})"
            )
    else:
        if using:
            raise ValueError(
                f"using={using!r}: collection {collection_name!r} has one unnamed vector"
            )
        params = vectors
    config = params.multivector_config
    if config is None or config.comparator != models.MultiVectorComparator.MAX_SIM:
        raise ValueError(
            f"using={using!r}: the vector of collection {collection_name!r} is not a "
            "multivector with comparator max_sim"
        )
    return _as_distance(params.distance).value


def _query_matrix(query: Any, distance: models.Distance) -> np.ndarray:
    q = np.array(query, dtype=np.float32)
    if q.ndim != 2 or q.shape[0] == 0 or q.shape[1] == 0:
        raise ValueError(
            f"query: expected a multivector, a non-empty 2-D (n_tokens, dim) array or list "
            f"of lists, got shape {q.shape}"
        )
    if not np.isfinite(q).all():
        raise ValueError(f"query: contains NaN or inf (shape {q.shape})")
    if distance == models.Distance.COSINE:  # Qdrant normalises the query rows
        norms = np.linalg.norm(q, axis=1, keepdims=True)
        q /= np.where(norms != 0.0, norms, _EPSILON)
    return np.ascontiguousarray(q)


def _multivector(point: Point, i: int, using: Optional[str], dim: int) -> np.ndarray:
    vector = point.vector
    if isinstance(vector, dict):
        vector = vector.get(using or "")
    elif using:
        vector = None
    hint = f"query with with_vectors=[{using!r}]" if using else "query with with_vectors=True"
    if vector is None:
        raise ValueError(f"points[{i}] (id {point.id!r}): has no {using!r} multivector; {hint}")
    try:
        matrix = np.asarray(vector, dtype=np.float32)
    except (TypeError, ValueError):
        raise ValueError(
            f"points[{i}] (id {point.id!r}): its {using!r} vector is not a multivector"
        ) from None
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] != dim:
        raise ValueError(
            f"points[{i}] (id {point.id!r}): expected an (n_tokens, {dim}) multivector, got "
            f"shape {matrix.shape}"
        )
    return matrix


def rerank_points(
    points: Sequence[Point],
    query: Any,
    *,
    using: Optional[str],
    distance: Any = "Cosine",
    limit: Optional[int] = 10,
    score_threshold: Optional[float] = None,
) -> list[models.ScoredPoint]:
    """Rerank points by exact MaxSim of ``query`` on their ``using`` multivectors.

    Args:
        points: ``ScoredPoint``s or ``Record``s holding the multivector
            (retrieved with ``with_vectors=[using]``).
        query: the query multivector, ``(n_tokens, dim)``.
        using: the multivector's name (``None``: the unnamed vector).
        distance: the multivector's distance, ``"Cosine"`` (the query's rows are
            normalised, as Qdrant does; stored vectors are normalised at upsert)
            or ``"Dot"``; :func:`multivector_distance` reads it from a collection.
        limit: points kept (``None``: all).
        score_threshold: drop points scoring below it.

    Returns:
        Copies of the points as ``ScoredPoint``s (``Record``s get version 0),
        ``score`` = ``Σ_i max_j sim(q_i, d_j)`` (float32 arithmetic), best first;
        ties keep the input order.
    """
    distance = _as_distance(distance)
    limit = check_count(limit, "limit", allow_none=True)
    points = list(points)
    q = _query_matrix(query, distance)
    if not points:
        return []
    docs = [_multivector(p, i, using, q.shape[1]) for i, p in enumerate(points)]
    scores = maxsim.scores(q, docs)
    order = best_first(scores)
    if score_threshold is not None:
        order = order[scores[order] >= score_threshold]
    out = []
    for i in order[:limit]:
        p = points[i]
        out.append(
            models.ScoredPoint(
                id=p.id,
                version=getattr(p, "version", 0),
                score=float(scores[i]),
                payload=p.payload,
                vector=p.vector,
                shard_key=p.shard_key,
                order_value=getattr(p, "order_value", None),
            )
        )
    return out


def _merge_filters(*filters: Optional[models.Filter]) -> Optional[models.Filter]:
    present = [f for f in filters if f is not None]
    if len(present) <= 1:
        return present[0] if present else None
    return models.Filter(must=present)


def _keep_vectors(point: models.ScoredPoint, with_vectors: Any, using: Optional[str]) -> None:
    if with_vectors is True:
        return
    if not with_vectors:
        point.vector = None
    elif isinstance(point.vector, dict):
        point.vector = {k: v for k, v in point.vector.items() if k in with_vectors}


def query_points(
    client: QdrantClient,
    collection_name: str,
    *,
    prefetch: Union[models.Prefetch, Sequence[models.Prefetch]],
    query: Any,
    using: Optional[str] = None,
    limit: int = 10,
    query_filter: Optional[models.Filter] = None,
    with_payload: Any = True,
    with_vectors: Any = False,
    score_threshold: Optional[float] = None,
    distance: Any = None,
    **kwargs: Any,
) -> QueryResponse:
    """``client.query_points(collection_name, prefetch=..., query=multivector,
    using=..., ...)``, with the MaxSim rescoring done by maxsim.

    Each prefetch runs as its own query (``query_filter`` applies to it too,
    as Qdrant propagates it), returning the ``using`` multivectors; the union
    of their points (first occurrence kept) is reranked by
    :func:`rerank_points`. ``distance`` skips the collection lookup of
    :func:`multivector_distance`. Other keyword arguments (``consistency``,
    ``shard_key_selector``, ``timeout``) go to the prefetch queries.
    """
    limit = check_count(limit, "limit")
    if distance is None:
        distance = multivector_distance(client, collection_name, using)
    prefetches = [prefetch] if isinstance(prefetch, models.Prefetch) else list(prefetch)
    if not prefetches or not all(isinstance(p, models.Prefetch) for p in prefetches):
        raise TypeError("prefetch: expected a qdrant_client.models.Prefetch or a list of them")
    if with_vectors is True:
        fetch: Any = True
    else:
        fetch = sorted({using or "", *(with_vectors or [])})
        fetch = fetch if using else True  # the unnamed vector is fetched with True
    candidates: dict[Any, Point] = {}
    for p in prefetches:
        response = client.query_points(
            collection_name,
            query=p.query,
            using=p.using,
            prefetch=p.prefetch,
            query_filter=_merge_filters(query_filter, p.filter),
            search_params=p.params,
            limit=10 if p.limit is None else p.limit,
            score_threshold=p.score_threshold,
            lookup_from=p.lookup_from,
            with_payload=with_payload,
            with_vectors=fetch,
            **kwargs,
        )
        for point in response.points:
            candidates.setdefault(point.id, point)
    hits = rerank_points(
        list(candidates.values()),
        query,
        using=using,
        distance=distance,
        limit=limit,
        score_threshold=score_threshold,
    )
    for hit in hits:
        _keep_vectors(hit, with_vectors, using)
    return QueryResponse(points=hits)
