"""``maxsim eval --plot``: one PNG with recall against latency over a sweep, and
the metrics before and after the rerank. matplotlib is imported here only
(``pip install 'maxsim[cli]'``), with the non-interactive Agg backend."""

from __future__ import annotations

from pathlib import Path


def plot_results(path: Path, result: dict, metric: str) -> None:
    try:
        import matplotlib
    except ImportError:
        raise ImportError("--plot needs matplotlib (pip install 'maxsim[cli]')") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = result.get("sweep") or []
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    if sweep:
        knob = next(k for k in sweep[0] if k not in (metric, "p50_ms"))
        xs = [p["p50_ms"] for p in sweep]
        ys = [p[metric] for p in sweep]
        left.plot(xs, ys, marker="o")
        for p, x, y in zip(sweep, xs, ys):
            left.annotate(
                f"{knob}={p[knob]}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8
            )
        stage = "rerank" if knob == "candidates" else "search"
        left.set_xlabel(f"p50 {stage} latency per query (ms)")
        left.set_ylabel(metric)
        left.set_title(f"{metric} against latency, over {knob}")
        left.grid(True, alpha=0.3)
    names = list(result["metrics"]["first_stage"])
    first = [result["metrics"]["first_stage"][n] for n in names]
    reranked = result["metrics"].get("reranked")
    width = 0.38 if reranked else 0.6
    xs = range(len(names))
    right.bar([x - (width / 2 if reranked else 0) for x in xs], first, width, label="first stage")
    if reranked:
        right.bar(
            [x + width / 2 for x in xs], [reranked[n] for n in names], width, label="reranked"
        )
    right.set_xticks(list(xs))
    right.set_xticklabels(names)
    right.set_ylim(0, 1)
    right.set_title("metrics" + (" before and after the rerank" if reranked else ""))
    right.legend()
    fig.suptitle(
        f"{Path(result['dataset']).name} ({result['split']}, {result['n_queries']} "
        f"queries, {result['index']['kind']} index)"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
