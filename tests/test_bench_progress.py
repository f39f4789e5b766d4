"""``maxsim bench``'s progress: worker events, the parent's bar or plain lines,
and the titles and notes of the tables (no benchmark runs here)."""

from __future__ import annotations

import io
import json

import pytest
from maxsim.bench import _common, suites
from maxsim.bench.progress import (
    EVENT_PREFIX,
    SuiteProgress,
    emit,
    format_duration,
    read_worker_output,
)


def _event(event: dict) -> str:
    return EVENT_PREFIX + json.dumps(event) + "\n"


def test_worker_events_reach_the_bar_and_the_rows_are_returned() -> None:
    pytest.importorskip("tqdm")
    stream = io.StringIO()
    shown = SuiteProgress("float", runs=2, stream=stream, bar=True)
    shown.start(1)
    worker_stdout = [
        _event({"plan": 3}),
        _event({"step": "fixed"}),
        "a peer printing to stdout\n",
        '{"not": "the result"}\n',
        _event({"step": "variable"}),
        _event({"step": "batch"}),
        json.dumps({"rows": [{"impl": "maxsim"}], "skipped": {}}) + "\n",
    ]
    result = read_worker_output(worker_stdout, shown)
    assert result == {"rows": [{"impl": "maxsim"}], "skipped": {}}
    drawn = stream.getvalue()
    # The second worker has not announced yet: assumed to have as many workloads.
    assert "0/6 workloads done" in drawn
    assert "now: variable, 1 thread(s)" in drawn
    assert "2/6 workloads done" in drawn
    shown.finish_run()
    shown.start(2)
    read_worker_output([_event({"plan": 2}), _event({"step": "fixed"})], shown)
    assert "3/5 workloads done" in stream.getvalue()  # corrected: 3 + 2
    shown.finish_run()
    assert "4/5 workloads done" in stream.getvalue()
    assert shown.close() >= 0


def test_without_a_terminal_plain_lines_per_run_and_workload() -> None:
    stream = io.StringIO()  # not a terminal: no bar by default
    shown = SuiteProgress("binary", runs=2, stream=stream)
    for threads in (1, 2):
        shown.start(threads)
        events = [_event({"plan": 2}), _event({"step": "k10"}), _event({"step": "k100"})]
        read_worker_output(events, shown)
        shown.finish_run()
    run = "[maxsim bench]   k10 (1/2)\n[maxsim bench]   k100 (2/2)\n"
    assert stream.getvalue() == (
        f"[maxsim bench] binary, 1 thread(s)...\n{run}[maxsim bench] binary, 2 thread(s)...\n{run}"
    )


def test_read_worker_output_without_a_result() -> None:
    shown = SuiteProgress("float", runs=1, stream=io.StringIO(), bar=False)
    assert read_worker_output(["Traceback ...\n", "{broken json\n"], shown) is None


def test_plan_and_step_report_only_when_hooked(capsys: pytest.CaptureFixture[str]) -> None:
    _common.plan(2)
    _common.step("fixed")
    assert capsys.readouterr().out == ""
    _common.progress_hook = emit
    try:
        _common.plan(2)
        _common.step("fixed")
    finally:
        _common.progress_hook = None
    assert capsys.readouterr().out == _event({"plan": 2}) + _event({"step": "fixed"})


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.04, "0.0 s"), (41.25, "41.2 s"), (60, "1 min 00 s"), (757, "12 min 37 s")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_titles_name_only_the_peers_that_ran() -> None:
    rows = [{"impl": "maxsim"}, {"impl": "numpy"}]
    assert suites.title("float", rows) == "float32 MaxSim: maxsim vs numpy"
    rows += [{"impl": "torch einsum"}, {"impl": "maxsim-cpu"}]
    assert suites.title("float", rows) == "float32 MaxSim: maxsim vs maxsim-cpu, torch, numpy"
    assert suites.title("binary", [{"impl": "faiss"}]) == (
        "binary Hamming search: maxsim vs faiss IndexBinaryFlat"
    )
    assert suites.title("reduced", [{"impl": "maxsim int8"}]) == (
        "reduced precision: float16 / bfloat16 / int8 documents vs float32"
    )
    assert suites.title("reduced", [{"impl": "numkong bf16 (pre-packed)"}]).endswith(
        "vs float32, NumKong"
    )


def _reduced_rows(with_numkong: bool) -> list[dict]:
    rows = [
        {"suite": "reduced", "workload": "fixed", "impl": "maxsim float32", "threads": 1,
         "ms_per_query": 1.0, "gflops": 1.0, "speedup_vs_float32": 1.0, "doc_mb": 1.0},
        {"suite": "reduced-accuracy", "impl": "maxsim int8", "top10_overlap": 0.98},
    ]  # fmt: skip
    if with_numkong:
        rows.append({"suite": "reduced-accuracy", "impl": "numkong f32", "top10_overlap": 0.55})
    return suites.annotate(rows)


@pytest.mark.parametrize("markdown", [False, True])
def test_numkong_overlap_is_explained_under_its_table(markdown: bool) -> None:
    text = suites.format_suite("reduced", _reduced_rows(True), markdown)
    assert "numkong f32" in text and "0.550" in text
    flat = " ".join(text.split())
    assert "picks each query token's best document token by int8 dot products" in flat
    assert "[-79, 79] on AVX2" in flat
    without = suites.format_suite("reduced", _reduced_rows(False), markdown)
    assert "int8 dot products" not in without


def _read_all(master: int) -> str:
    """Everything written to a pseudo-terminal whose other end is closed (a
    single read may return only part of it)."""
    import os

    chunks = []
    try:
        while chunk := os.read(master, 65536):
            chunks.append(chunk)
    except OSError:  # EIO: the other end is closed and everything was read
        pass
    finally:
        os.close(master)
    return b"".join(chunks).decode()


@pytest.mark.parametrize("rows", [40, 0])
def test_a_terminal_gets_the_bar_unless_it_has_no_size(rows: int) -> None:
    """On a real pseudo-terminal: the bar by default; plain lines where the
    terminal reports 0 rows (tqdm would draw nothing there)."""
    pytest.importorskip("tqdm")
    pty = pytest.importorskip("pty")
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, 120 if rows else 0, 0, 0))
    with open(slave, "w", closefd=True) as stream:
        shown = SuiteProgress("float", runs=1, stream=stream)
        shown.start(1)
        read_worker_output([_event({"plan": 2}), _event({"step": "fixed"})], shown)
        shown.finish_run()
        shown.close()
    drawn = _read_all(master)
    if rows:
        assert "float: 1/2 workloads done" in drawn and "now: fixed, 1 thread(s)" in drawn
        assert "[maxsim bench]" not in drawn
    else:
        assert "[maxsim bench] float, 1 thread(s)..." in drawn
        assert "[maxsim bench]   fixed (1/2)" in drawn and "workloads done" not in drawn
