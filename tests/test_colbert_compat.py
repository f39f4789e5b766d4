"""maxsim.colbert against Stanford ColBERT's scoring contract.

Stanford ColBERT is not installable here, so the reference is a line-by-line
torch transliteration of ``colbert/modeling/colbert.py``
(``colbert_score_reduce``, ``colbert_score``, ``colbert_score_packed``) and of
``segmented_maxsim.cpp`` (stanford-futuredata/ColBERT), plus a float64 numpy
MaxSim from the definition.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import maxsim  # noqa: E402
import maxsim.colbert as mc  # noqa: E402

ATOL = 1e-5


# ------------------------------------------------ Stanford ColBERT, transliterated


def colbert_score_reduce(scores_padded: torch.Tensor, D_mask: torch.Tensor) -> torch.Tensor:
    D_padding = ~D_mask.view(scores_padded.size(0), scores_padded.size(1)).bool()
    scores_padded[D_padding] = -9999
    scores = scores_padded.max(1).values
    return scores.sum(-1)


def colbert_score(Q: torch.Tensor, D_padded: torch.Tensor, D_mask: torch.Tensor) -> torch.Tensor:
    assert Q.dim() == 3 and D_padded.dim() == 3
    assert Q.size(0) in [1, D_padded.size(0)]
    scores = D_padded @ Q.to(dtype=D_padded.dtype).permute(0, 2, 1)
    return colbert_score_reduce(scores, D_mask)


def colbert_score_packed_padded_path(Q, D_packed, D_lengths) -> torch.Tensor:
    """The GPU/flipr branch: StridedTensor(...).as_padded_tensor() then reduce."""
    Q = Q.squeeze(0)
    scores = D_packed @ Q.to(dtype=D_packed.dtype).T
    pieces = torch.split(scores[: int(D_lengths.sum())], D_lengths.tolist())
    padded = torch.nn.utils.rnn.pad_sequence(list(pieces), batch_first=True)
    mask = torch.arange(padded.size(1))[None, :] < D_lengths[:, None]
    return colbert_score_reduce(padded, mask)


def segmented_maxsim(scores: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """segmented_maxsim.cpp: per document, max over its rows starting from 0."""
    max_scores = torch.zeros(lengths.size(0), scores.size(1), dtype=scores.dtype)
    offset = 0
    for i, n in enumerate(lengths.tolist()):
        for j in range(n):
            max_scores[i] = torch.maximum(max_scores[i], scores[offset + j])
        offset += n
    return max_scores.sum(1)


def colbert_score_packed_cpu_path(Q, D_packed, D_lengths) -> torch.Tensor:
    Q = Q.squeeze(0)
    scores = D_packed @ Q.to(dtype=D_packed.dtype).T
    return segmented_maxsim(scores, D_lengths)


# ----------------------------------------------------------------------- helpers


def unit(rng: np.random.Generator, *shape: int) -> torch.Tensor:
    x = rng.standard_normal(shape).astype(np.float32)
    return torch.from_numpy(x / np.linalg.norm(x, axis=-1, keepdims=True))


def ref_maxsim(q, d) -> float:
    q, d = np.asarray(q, np.float64), np.asarray(d, np.float64)
    return float((q @ d.T).max(axis=1).sum())


def padded_batch(rng, lengths: list[int], dim: int):
    docs = [unit(rng, n, dim) for n in lengths]
    D_padded = torch.nn.utils.rnn.pad_sequence(docs, batch_first=True)
    D_mask = torch.arange(D_padded.size(1))[None, :] < torch.tensor(lengths)[:, None]
    # Garbage in the padding: it must never be a match.
    D_padded[~D_mask] = 7.0
    return docs, D_padded, D_mask


# ------------------------------------------------------------------------- score


@pytest.mark.parametrize("mask_shape", ["2d", "3d"])
@pytest.mark.parametrize("mask_dtype", [torch.bool, torch.float32, torch.int64])
def test_score_matches_colbert(mask_shape: str, mask_dtype) -> None:
    rng = np.random.default_rng(0)
    docs, D_padded, D_mask = padded_batch(rng, [5, 1, 9, 3, 9], 32)
    Q = unit(rng, 1, 8, 32)
    mask = D_mask.to(mask_dtype)
    if mask_shape == "3d":
        mask = mask.unsqueeze(-1)  # ColBERT's doc(keep_dims='return_mask') shape
    expected = colbert_score(Q, D_padded.clone(), mask)
    got = mc.score(Q, D_padded, mask)
    assert got.shape == (5,) and got.dtype == torch.float32
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)
    np.testing.assert_allclose(got, [ref_maxsim(Q[0], d) for d in docs], atol=ATOL)


def test_score_mask_with_holes() -> None:
    """Masked tokens inside a document (ColBERT's punctuation skiplist)."""
    rng = np.random.default_rng(9)
    _, D_padded, D_mask = padded_batch(rng, [6, 8, 2], 16)
    D_mask[0, 1] = D_mask[1, 3] = D_mask[1, 4] = False
    D_padded[~D_mask] = 5.0
    Q = unit(rng, 1, 7, 16)
    expected = colbert_score(Q, D_padded.clone(), D_mask)
    got = mc.score(Q, D_padded, D_mask)
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)
    real = [D_padded[i][D_mask[i]] for i in range(3)]
    np.testing.assert_allclose(got, [ref_maxsim(Q[0], d) for d in real], atol=ATOL)


def test_score_aligned_queries() -> None:
    rng = np.random.default_rng(1)
    docs, D_padded, D_mask = padded_batch(rng, [4, 2, 6], 16)
    Q = unit(rng, 3, 5, 16)
    expected = colbert_score(Q, D_padded.clone(), D_mask)
    got = mc.score(Q, D_padded, D_mask)
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)
    np.testing.assert_allclose(got, [ref_maxsim(Q[i], docs[i]) for i in range(3)], atol=ATOL)


def test_score_negative_similarities_padding_never_matches() -> None:
    Q = torch.tensor([[[1.0, 0.0]]])
    D_padded = torch.tensor([[[-0.5, 0.0], [0.0, 0.0]], [[-0.25, 1.0], [9.0, 9.0]]])
    D_mask = torch.tensor([[1, 0], [1, 0]])
    got = mc.score(Q, D_padded, D_mask)
    torch.testing.assert_close(got, colbert_score(Q, D_padded.clone(), D_mask))
    assert got.tolist() == [-0.5, -0.25]


def test_score_document_without_tokens() -> None:
    rng = np.random.default_rng(2)
    _, D_padded, D_mask = padded_batch(rng, [3, 4], 8)
    D_mask[1] = False
    Q = unit(rng, 1, 6, 8)
    expected = colbert_score(Q, D_padded.clone(), D_mask)
    got = mc.score(Q, D_padded, D_mask)
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)
    assert got[1].item() == -9999.0 * 6


def test_score_numpy_and_half_inputs() -> None:
    rng = np.random.default_rng(3)
    _, D_padded, D_mask = padded_batch(rng, [3, 7], 8)
    Q = unit(rng, 1, 4, 8)
    got = mc.score(Q.numpy(), D_padded.numpy(), D_mask.numpy())
    torch.testing.assert_close(got, colbert_score(Q, D_padded.clone(), D_mask), atol=ATOL, rtol=0)
    half = mc.score(Q, D_padded.half(), D_mask)
    assert half.dtype == torch.float16  # ColBERT scores in D's dtype
    torch.testing.assert_close(
        half.float(),
        colbert_score(Q.half().float(), D_padded.half().float(), D_mask),
        atol=1e-2,
        rtol=0,
    )


def test_score_byte_swapped_numpy_inputs() -> None:
    """numpy arrays in the other byte order (which torch cannot wrap) score as
    the same values in native order, in D's dtype."""
    rng = np.random.default_rng(4)
    _, D_padded, D_mask = padded_batch(rng, [3, 7], 8)
    Q = unit(rng, 1, 4, 8).numpy()
    D = D_padded.numpy()

    def swap(x: np.ndarray) -> np.ndarray:
        return x.astype(x.dtype.newbyteorder("S"))

    expected = mc.score(Q, D, D_mask.numpy())
    got = mc.score(swap(Q), swap(D), D_mask.numpy())
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, atol=0, rtol=0)
    flat, lengths = D.reshape(-1, 8), np.array([7, 7])
    got_packed = mc.score_packed(swap(Q), swap(flat), swap(lengths))
    torch.testing.assert_close(got_packed, mc.score_packed(Q, flat, lengths), atol=0, rtol=0)


def test_score_bad_input() -> None:
    rng = np.random.default_rng(4)
    _, D_padded, D_mask = padded_batch(rng, [3, 7], 8)
    with pytest.raises(ValueError, match=r"Q: expected \(1, Lq, d\) or \(2, Lq, d\).*\(3, 4, 8\)"):
        mc.score(unit(rng, 3, 4, 8), D_padded, D_mask)
    with pytest.raises(ValueError, match=r"D_mask.*\(2, 7\).*\(2, 6\)"):
        mc.score(unit(rng, 1, 4, 8), D_padded, D_mask[:, :6])
    with pytest.raises(ValueError, match=r"embedding size 4.*8"):
        mc.score(unit(rng, 1, 4, 4), D_padded, D_mask)
    with pytest.raises(TypeError, match=r"D_padded.*int64"):
        mc.score(unit(rng, 1, 4, 8), D_padded.long(), D_mask)
    with pytest.raises(NotImplementedError, match="flipr"):
        mc.score(
            unit(rng, 1, 4, 8), D_padded, D_mask, config=type("C", (), {"interaction": "flipr"})()
        )


# ------------------------------------------------------------------ score_packed


def packed(rng, lengths: list[int], dim: int):
    docs = [unit(rng, n, dim) for n in lengths]
    return docs, torch.cat(docs), torch.tensor(lengths)


@pytest.mark.parametrize("q_shape", ["3d", "2d"])
def test_score_packed_matches_colbert(q_shape: str) -> None:
    rng = np.random.default_rng(5)
    docs, D_packed, D_lengths = packed(rng, [4, 1, 11, 6, 2], 32)
    Q = unit(rng, 1, 8, 32)
    q = Q if q_shape == "3d" else Q[0]
    got = mc.score_packed(q, D_packed, D_lengths)
    torch.testing.assert_close(
        got, colbert_score_packed_padded_path(Q, D_packed, D_lengths), atol=ATOL, rtol=0
    )
    np.testing.assert_allclose(got, [ref_maxsim(Q[0], d) for d in docs], atol=ATOL)
    floored = mc.score_packed(q, D_packed, D_lengths, zero_floor=True)
    torch.testing.assert_close(
        floored, colbert_score_packed_cpu_path(Q, D_packed, D_lengths), atol=ATOL, rtol=0
    )


def test_score_packed_zero_floor_differs_on_negative_scores() -> None:
    Q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    D_packed = torch.tensor([[-0.6, -0.8], [-0.8, -0.6], [0.6, 0.8]])
    D_lengths = torch.tensor([2, 1])
    exact = mc.score_packed(Q, D_packed, D_lengths)
    cpu = mc.score_packed(Q, D_packed, D_lengths, zero_floor=True)
    torch.testing.assert_close(exact, torch.tensor([-1.2, 1.4]))
    torch.testing.assert_close(cpu, colbert_score_packed_cpu_path(Q[None], D_packed, D_lengths))
    torch.testing.assert_close(cpu, torch.tensor([0.0, 1.4]))


def test_score_packed_is_zero_copy(monkeypatch) -> None:
    rng = np.random.default_rng(6)
    _, D_packed, D_lengths = packed(rng, [3, 5, 2], 16)
    seen = []
    real = maxsim.PackedDocs

    def spy(flat, offsets):
        seen.append(flat)
        return real(flat, offsets)

    # maxsim.colbert reaches the core through its ``_maxsim`` global.
    monkeypatch.setattr(mc, "_maxsim", SimpleNamespace(PackedDocs=spy, scores=maxsim.scores))
    mc.score_packed(unit(rng, 4, 16), D_packed, D_lengths)
    assert len(seen) == 1
    assert np.shares_memory(seen[0], D_packed.numpy())


def test_score_packed_empty_documents_and_extra_rows() -> None:
    rng = np.random.default_rng(7)
    docs, D_packed, _ = packed(rng, [3, 2], 8)
    D_lengths = torch.tensor([0, 3, 0, 2, 0])
    Q = unit(rng, 1, 5, 8)
    got = mc.score_packed(Q, D_packed, D_lengths)
    torch.testing.assert_close(
        got, colbert_score_packed_padded_path(Q, D_packed, D_lengths), atol=ATOL, rtol=0
    )
    assert got[0].item() == -9999.0 * 5
    floored = mc.score_packed(Q, D_packed, D_lengths, zero_floor=True)
    torch.testing.assert_close(
        floored, colbert_score_packed_cpu_path(Q, D_packed, D_lengths), atol=ATOL, rtol=0
    )
    # Rows past sum(D_lengths) are ignored, as in ColBERT.
    extra = torch.cat([D_packed, unit(rng, 4, 8)])
    torch.testing.assert_close(mc.score_packed(Q, extra, D_lengths), got)


def test_score_packed_bad_input() -> None:
    rng = np.random.default_rng(8)
    _, D_packed, D_lengths = packed(rng, [3, 2], 8)
    with pytest.raises(ValueError, match=r"D_lengths sums to 6 tokens but D_packed has only 5"):
        mc.score_packed(unit(rng, 4, 8), D_packed, torch.tensor([3, 3]))
    with pytest.raises(ValueError, match=r"Q: expected \(1, Lq, d\) or \(Lq, d\).*\(2, 4, 8\)"):
        mc.score_packed(unit(rng, 2, 4, 8), D_packed, D_lengths)
    with pytest.raises(TypeError, match=r"D_lengths.*float32"):
        mc.score_packed(unit(rng, 4, 8), D_packed, torch.tensor([3.0, 2.0]))
    with pytest.raises(ValueError, match=r"D_lengths.*>= 0"):
        mc.score_packed(unit(rng, 4, 8), D_packed, torch.tensor([-1, 2]))
    with pytest.raises(ValueError, match=r"D_packed: expected a 2-D.*\(1, 5, 8\)"):
        mc.score_packed(unit(rng, 4, 8), D_packed[None], D_lengths)
    with pytest.raises(TypeError, match=r"Q: expected a torch.Tensor or numpy array.*list"):
        mc.score_packed([[1.0] * 8], D_packed, D_lengths)
