"""The suites of ``maxsim bench``: what each measures, its reference peer, its table.

* ``float``: float32 MaxSim (fixed, variable, batch) vs maxsim-cpu, torch, numpy
  (:mod:`maxsim.bench.float32`);
* ``binary``: Hamming search vs faiss ``IndexBinaryFlat``, usearch, numpy
  (:mod:`maxsim.bench.binary`);
* ``reduced``: float16 / bfloat16 / int8 documents vs float32, maxsim-cpu, NumKong
  (:mod:`maxsim.bench.reduced`), plus top-10 overlap with float32 MaxSim;
* ``pylate``: ``maxsim.pylate`` vs PyLate's ``rerank`` and ``colbert_scores``
  (:mod:`maxsim.bench.pylate`; needs torch and pylate).

:func:`run_suite` measures one suite at one thread count (``maxsim bench`` calls
it in a fresh worker process per suite and thread count); :func:`annotate` adds
the keys every row shares (``suite``, ``workload``, ``threads``, ``impl``,
``median_ms``, ``time_unit``, ``speedup``, ``speedup_vs``, ``agrees``);
:func:`format_suite` prints a suite's rows as a table.
"""

from __future__ import annotations

import textwrap
from typing import Any, Callable, Optional, Sequence

from . import _common

SUITES = ("float", "binary", "reduced", "pylate")
DEFAULT_SUITES = ("float", "binary", "reduced")

#: Per suite, the reference of ``speedup``: the first of these measured in the
#: same (workload, threads) group. Peers first, maxsim's own baseline last.
REFERENCES: dict[str, tuple[str, ...]] = {
    "float": ("maxsim-cpu", "numpy"),
    "binary": ("faiss", "usearch", "numpy"),
    "reduced": (
        "maxsim-cpu float32",
        "numkong bf16 end-to-end (cast + pack + score)",
        "maxsim float32",
        "maxsim bfloat16 end-to-end (quantize + score)",
    ),
    "pylate": ("pylate.rank.rerank", "pylate.scores.colbert_scores"),
}

#: Codes in the binary suite's database per ``--docs`` document.
BINARY_CODES_PER_DOC = 1000


def run_suite(
    suite: str,
    threads: int,
    repeat: int,
    docs: int,
    workloads: Sequence[str] = ("fixed", "variable", "batch"),
    first: bool = True,
) -> list[dict]:
    """Rows of ``suite`` at ``threads`` threads, measured in this process.

    The process should have been started with the thread variables of
    :data:`maxsim.bench._common.THREAD_ENV` set to ``threads`` (peers size their
    pools once per process). ``first``: this is the first thread count of the
    run (the reduced suite's accuracy rows are measured once, there).
    """
    import maxsim

    torch = _common.optional("torch") if suite in ("float", "pylate") else None
    if torch is not None:
        torch.set_num_threads(threads)
    maxsim.set_num_threads(threads)
    if suite == "float":
        from . import float32
        from . import workloads as wl

        rows = []
        _common.plan(len(workloads))
        for name in workloads:
            _common.step(name)
            w = wl.make(name, n_docs=docs)
            for row in float32.run(w, repeat):
                rows.append({"suite": "float", **row, "threads": threads})
            del w
        return rows
    if suite == "binary":
        from .binary import binary_rows

        return binary_rows(
            threads_list=[threads], n=docs * BINARY_CODES_PER_DOC, repeat=max(1, repeat)
        )
    if suite == "reduced":
        from .reduced import worker_rows

        return worker_rows(threads, repeat, n_docs=docs, accuracy=first)
    if suite == "pylate":
        from .pylate import pylate_rows

        return pylate_rows(repeats=repeat, memory=False, config={"n_docs": docs}, threads=threads)
    raise ValueError(f"unknown suite {suite!r}; expected one of {', '.join(SUITES)}")


def annotate(rows: list[dict]) -> list[dict]:
    """Adds the common keys to rows of any suite, in place; returns ``rows``.

    ``median_ms`` is the median time of one query (float, binary, reduced) or one
    call (pylate; ``time_unit`` says which); ``speedup`` is the reference's
    ``median_ms`` over the row's, in the same suite, workload and thread count
    (``speedup_vs`` names the reference, see :data:`REFERENCES`): above 1, the
    row is that many times faster than the peer. ``agrees``: the row's results
    match the suite's reference results (``None``: not compared).
    """
    for r in rows:
        suite = r.get("suite")
        if suite == "pylate" or "benchmark" in r:
            r["suite"] = "pylate"
            r.setdefault("description", r["workload"])
            r["workload"] = r["benchmark"]
            r["impl"] = r["implementation"]
            r["time_unit"] = "call"
            r["agrees"] = r["same_as_pylate"]
        elif suite == "reduced-accuracy":
            continue
        else:
            r["median_ms"] = r["ms_per_query"]
            r["time_unit"] = "query"
            if suite == "float":
                r["agrees"] = r["agrees_with_maxsim"]
            elif suite == "reduced":
                r["agrees"] = None
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["suite"] in REFERENCES:
            groups.setdefault((r["suite"], r["workload"], r["threads"]), []).append(r)
    for (suite, _, _), group in groups.items():
        by_impl = {r["impl"]: r for r in group}
        ref = next((by_impl[name] for name in REFERENCES[suite] if name in by_impl), None)
        for r in group:
            ok = ref is not None and ref["median_ms"] > 0 and r["median_ms"] > 0
            r["speedup"] = ref["median_ms"] / r["median_ms"] if ok else None
            r["speedup_vs"] = ref["impl"] if ok else None
    return rows


def sort_rows(rows: list[dict], suites: Sequence[str]) -> list[dict]:
    """Suite order, then workloads in order of first appearance, then threads."""
    first_seen: dict[tuple, int] = {}
    for r in rows:
        first_seen.setdefault((r["suite"], r.get("workload")), len(first_seen))
    order = {s: i for i, s in enumerate(suites)}

    def key(r: dict) -> tuple:
        suite = r["suite"]
        base = suite.split("-")[0]
        return (
            order.get(base, len(order)),
            suite != base,
            first_seen[(suite, r.get("workload"))],
            r.get("threads") or 0,
        )

    return sorted(rows, key=key)


def _ratio(x: Optional[float]) -> str:
    return "-" if x is None else f"{x:.2f}x"


def _agrees(x: Optional[bool]) -> str:
    return {True: "yes", False: "NO", None: "-"}[x]


Column = tuple[str, Callable[[dict], str]]

TITLES = {
    "float": "float32 MaxSim: maxsim",
    "binary": "binary Hamming search: maxsim",
    "reduced": "reduced precision: float16 / bfloat16 / int8 documents vs float32",
    "pylate": "PyLate: maxsim.pylate vs pylate.rank.rerank and pylate.scores.colbert_scores",
}

#: Per suite, the peers a title may name, by the prefix of their rows' ``impl``.
#: A title names only the peers that have rows: each is optional, and the
#: ``bench`` extra does not install torch, for one.
TITLE_PEERS: dict[str, tuple[tuple[str, str], ...]] = {
    "float": (("maxsim-cpu", "maxsim-cpu"), ("torch", "torch"), ("numpy", "numpy")),
    "binary": (("faiss", "faiss IndexBinaryFlat"), ("usearch", "usearch"), ("numpy", "numpy")),
    "reduced": (("maxsim-cpu", "maxsim-cpu"), ("numkong", "NumKong")),
}

#: Why NumKong's top-10 overlap is low, under the reduced suite's table.
NUMKONG_NOTE = (
    "numkong f32 / bf16 overlap: NumKong's MaxSim picks each query token's best document "
    "token by int8 dot products (values quantized per vector to [-79, 79] on AVX2, "
    "[-127, 127] with VNNI) and recomputes only that pair in full precision; on random "
    "data the best and runner-up similarities are often closer than the int8 error, so it "
    "often refines a token other than the best, understating that query token's similarity "
    "(NumKong's include/numkong/maxsim/README.md; it returns summed angular distances, "
    "1 - cos, ranked ascending here)"
)


def title(suite: str, rows: Sequence[dict]) -> str:
    """The suite's table title, naming the peers among ``rows``' implementations."""
    base = TITLES.get(suite, suite)
    impls = {str(r.get("impl", "")) for r in rows}
    peers = [
        name
        for prefix, name in TITLE_PEERS.get(suite, ())
        if any(impl.startswith(prefix) for impl in impls)
    ]
    if not peers:
        return base
    joiner = ", " if suite == "reduced" else " vs "
    return f"{base}{joiner}{', '.join(peers)}"


def _columns(suite: str, peak_gflops: Optional[float]) -> list[Column]:
    unit = "ms/call" if suite == "pylate" else "ms/query"
    cols: list[Column] = [
        ("workload", lambda r: str(r["workload"])),
        ("threads", lambda r: str(r["threads"])),
        ("impl", lambda r: str(r["impl"])),
        (unit, lambda r: f"{r['median_ms']:.3f}"),
        ("speedup", lambda r: _ratio(r.get("speedup"))),
    ]
    if suite == "float":

        def peak(r: dict) -> str:
            return f"{100 * r['gflops'] / (peak_gflops * r['threads']):.0f}%"

        cols += [("GFLOP/s", lambda r: f"{r['gflops']:.1f}")]
        if peak_gflops:
            cols += [("% peak", peak)]
        cols += [("agrees", lambda r: _agrees(r.get("agrees")))]
    elif suite == "binary":
        cols += [
            ("GB/s", lambda r: f"{r['gbps']:.1f}"),
            ("cpu ms/query", lambda r: f"{r['cpu_ms_per_query']:.3f}"),
            ("agrees", lambda r: _agrees(r.get("agrees"))),
        ]
    elif suite == "reduced":
        cols += [
            ("vs float32", lambda r: _ratio(r.get("speedup_vs_float32"))),
            ("GFLOP/s", lambda r: f"{r['gflops']:.1f}"),
            ("docs MB", lambda r: "-" if r.get("doc_mb") is None else f"{r['doc_mb']:.1f}"),
        ]
    elif suite == "pylate":
        cols += [
            ("GFLOP/s", lambda r: f"{r['gflops']:.1f}"),
            ("agrees", lambda r: _agrees(r.get("agrees"))),
        ]
    return cols


def format_suite(
    suite: str, rows: list[dict], markdown: bool = False, peak_gflops: Optional[float] = None
) -> str:
    """The table of one suite (with its title and footnotes), from annotated rows."""
    mine = [r for r in rows if r["suite"] == suite]
    text = title(suite, mine)
    out = [f"### {text}", ""] if markdown else [f"== {text} =="]
    if not mine:
        return "\n".join(out + ["(no rows)"])
    cols = _columns(suite, peak_gflops)
    out.append(
        _common.render_table(
            [h for h, _ in cols], [[f(r) for _, f in cols] for r in mine], markdown
        )
    )
    refs: dict[str, list[str]] = {}
    for r in mine:
        if r.get("speedup_vs"):
            names = refs.setdefault(r["speedup_vs"], [])
            if r["workload"] not in names:
                names.append(r["workload"])
    if len(refs) == 1:
        ref_text = next(iter(refs))
    elif refs:
        ref_text = (
            "the reference ("
            + "; ".join(f"{ref}: {', '.join(names)}" for ref, names in refs.items())
            + ")"
        )
    else:
        ref_text = "the reference peer"
    notes = [
        f"speedup = median ms of {ref_text} / median ms of the row, same workload and "
        "threads (> 1: faster than that peer)"
    ]
    if suite == "float" and peak_gflops:
        notes.append("% peak = GFLOP/s / (threads x single-core fp32 FMA peak)")
    if suite == "float":
        notes.append("agrees = scores within 1e-3 of maxsim's")
    if suite == "binary":
        from .binary import l1_peaks, memory_note

        notes.append("agrees = same distances as maxsim (and same ids: faiss, maxsim-index)")
        peaks = l1_peaks(mine)
        if peaks:
            notes.append(
                "L1-resident kernel ceiling, 1 thread (wall / CPU time): "
                + ", ".join(f"{b}: {w:.1f} / {c:.1f} GB/s" for b, (w, c) in peaks.items())
            )
        note = memory_note(mine)
        if note:
            notes.append(note)
    if suite == "reduced":
        notes.append("vs float32 = maxsim float32 ms / row ms; NumKong is single-threaded")
        if any(r["impl"].startswith("numkong") for r in rows if r["suite"] == f"{suite}-accuracy"):
            notes.append(NUMKONG_NOTE)
    if suite == "pylate":
        from .pylate import floor_note

        notes.append("agrees = same ids and order as PyLate, scores within 1e-5")
        torch_build = next((r["torch"] for r in mine if r.get("torch")), None)
        if torch_build:
            notes.append(f"PyLate ran on torch {torch_build}")
        note = floor_note(mine)
        if note:
            notes.append(note)
        for name in dict.fromkeys(r["workload"] for r in mine):
            desc = next(r.get("description") for r in mine if r["workload"] == name)
            notes.append(f"{name}: {desc}")
    acc = [r for r in rows if r["suite"] == f"{suite}-accuracy"]
    if acc:
        out += ["", "top-10 overlap with float32 MaxSim (random data):"]
        out.append(
            _common.render_table(
                ["impl", "top-10 overlap"],
                [[r["impl"], f"{r['top10_overlap']:.3f}"] for r in acc],
                markdown,
            )
        )
    if markdown:
        out += [""] + [f"- {n}" for n in notes]
    else:  # plain text: notes wrapped for a terminal
        out += [""] + [
            textwrap.fill(n, 100, initial_indent="  ", subsequent_indent="    ") for n in notes
        ]
    return "\n".join(out)


def summary(info: dict[str, Any]) -> str:
    """One line: the kernels maxsim selected on this machine."""
    from maxsim import _native

    reduced = info.get("reduced_kernels") or {}
    parts = [f"float kernel={info['kernel']}", f"binary kernel={_native.binary_impls()[1]}"]
    parts += [f"{k}={v}" for k, v in reduced.items()]
    return "; ".join(parts)
