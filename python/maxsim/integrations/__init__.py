"""maxsim inside the frameworks applications already run.

Each integration is its own module behind its own extra, and imports its
framework only when that module is imported (``import maxsim`` and
``import maxsim.integrations`` import none of them):

* :mod:`maxsim.integrations.langchain` (``pip install "maxsim[langchain]"``):
  ``MaxSimRetriever`` (a ``BaseRetriever`` over a :class:`maxsim.Index` or a
  corpus of embeddings) and ``MaxSimCompressor`` (a ``BaseDocumentCompressor``
  that reranks with a ColBERT model or a cross-encoder).
* :mod:`maxsim.integrations.llamaindex` (``maxsim[llamaindex]``):
  ``MaxSimRerank``, a node postprocessor with ``ColbertRerank``'s arguments,
  which runs on the ONNX backend without torch.
* :mod:`maxsim.integrations.qdrant` (``maxsim[qdrant]``): rerank points of a
  dense prefetch by exact MaxSim on their stored multivectors.
* :mod:`maxsim.integrations.ray` (``maxsim[ray]``): ``MaxSimScorer`` for
  ``Dataset.map_batches`` and ``ShardedIndex``, an index split over actors.

See docs/integrations.md.
"""

from __future__ import annotations

__all__: list[str] = []
