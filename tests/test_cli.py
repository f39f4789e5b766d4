"""The ``maxsim`` command line: ``maxsim info`` and ``maxsim bench`` (tiny sizes).

The benchmark runs in subprocesses (as a user runs it), with ``PYTHONPATH``
pointing at the ``maxsim`` package these tests import. Times are only checked
to be positive; agreement columns must report agreement.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import maxsim
import pytest
from maxsim import cli

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 900  # seconds: generous, the machine may be shared


def _env(*front: Path) -> dict[str, str]:
    env = dict(os.environ)
    package_root = str(Path(maxsim.__file__).resolve().parent.parent)
    paths = [str(p) for p in front] + [package_root]
    paths += [p for p in sys.path if p and os.path.isdir(p) and p not in paths]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def _run(
    args: list[str], cwd: Path, *front: Path, merge_stderr: bool = False
) -> subprocess.CompletedProcess:
    """``python args`` in ``cwd``; ``merge_stderr``: stderr goes into stdout, in
    the order the lines were written."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=_env(*front),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        text=True,
        timeout=TIMEOUT,
    )


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def test_info_prints_json_with_kernel(tmp_path: Path) -> None:
    out = _run(["-m", "maxsim.cli", "info"], tmp_path)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["kernel"] == maxsim.info()["kernel"]


def test_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A narrow terminal: argparse's own version action would wrap the path.
    monkeypatch.setenv("COLUMNS", "30")
    out = _run(["-m", "maxsim.cli", "--version"], tmp_path)
    assert out.returncode == 0, out.stderr
    package = str(Path(maxsim.__file__).resolve().parent)
    assert out.stdout.strip().startswith(f"maxsim {maxsim.__version__} from {package} (Python 3.")


def test_help_hides_the_internal_worker(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "{bench,info,export,index,search,eval}" in text and "--version" in text
    assert "_worker" not in text
    with pytest.raises(SystemExit) as exc:
        cli.main(["_nope"])
    assert exc.value.code == 2
    assert "_worker" not in capsys.readouterr().err


def test_worker_still_runs_and_reports_progress(tmp_path: Path) -> None:
    """``maxsim _worker`` (what ``maxsim bench`` spawns): progress events, then
    the rows as the last JSON line."""
    from maxsim.bench.progress import EVENT_PREFIX

    args = ["-m", "maxsim.cli", "_worker", "--suite", "float", "--threads", "1"]
    args += ["--workloads", "fixed,batch", "--repeat", "1", "--docs", "3"]
    out = _run(args, tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    events = [json.loads(x[len(EVENT_PREFIX) :]) for x in lines if x.startswith(EVENT_PREFIX)]
    assert events == [{"plan": 2}, {"step": "fixed"}, {"step": "batch"}]
    rows = json.loads(lines[-1])["rows"]
    assert {r["workload"] for r in rows} == {"fixed", "batch"}


def test_bench_help_says_how_to_get_the_peers_and_how_long(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        cli.main(["bench", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # unwrapped
    assert "pip install '.[bench]'" in text
    assert "pip install 'dist/maxsim-<version>-<tags>.whl[bench]'" in text
    assert "pip install 'maxsim[bench]', once maxsim is published there (it is not yet)" in text
    assert "the bench extra does not install it" in text  # torch
    assert "time: a full run at the default sizes took" in text


def test_bench_help_lists_suites(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for word in ("--suite", "float", "binary", "reduced", "pylate", "--docs", "--repeat"):
        assert word in text


@pytest.mark.parametrize(
    "argv",
    [
        ["bench", "--suite", "float,nope"],
        ["bench", "--threads", "0"],
        ["bench", "--workloads", "fixed,huge"],
        ["bench", "--docs", "0"],
    ],
)
def test_bench_rejects_bad_arguments(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2


def test_suite_list_parsing() -> None:
    assert cli._suite_list("all") == ["float", "binary", "reduced", "pylate"]
    assert cli._suite_list("reduced, float,reduced") == ["reduced", "float"]
    assert cli._thread_list("1,all") == sorted({1, os.cpu_count() or 1})


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    tmp = tmp_path_factory.mktemp("bench")
    out_json = tmp / "out.json"
    args = ["-m", "maxsim.cli", "bench", "--suite", "float,binary,reduced"]
    args += ["--docs", "20", "--repeat", "1", "--threads", "1", "--json", str(out_json)]
    out = _run(args, tmp, merge_stderr=True)
    assert out.returncode == 0, out.stdout
    return json.loads(out_json.read_text()), out.stdout


def test_bench_prints_each_table_when_its_suite_is_done(bench_run: tuple[dict, str]) -> None:
    """stderr is not a terminal here: no bar, plain lines per suite and thread
    count and per workload, and each table comes before the next suite starts."""
    text = bench_run[1]
    positions = [
        text.index(marker)
        for marker in (
            "[maxsim bench] float, 1 thread(s)...",
            "[maxsim bench]   fixed (1/3)",
            "[maxsim bench]   batch (3/3)",
            "== float32 MaxSim",
            "[maxsim bench] float: ",
            "[maxsim bench] binary, 1 thread(s)...",
            "== binary Hamming search",
            "[maxsim bench] reduced, 1 thread(s)...",
            "== reduced precision",
            "[maxsim bench] all suites: ",
        )
    ]
    assert positions == sorted(positions), text
    assert "\r" not in text and "workloads done" not in text  # no progress bar in a log


def _rows(data: dict, suite: str) -> list[dict]:
    rows = [r for r in data["rows"] if r["suite"] == suite]
    assert rows, f"no {suite} rows"
    return rows


def test_bench_json_has_every_suite(bench_run: tuple[dict, str]) -> None:
    data, stdout = bench_run
    assert data["suites"] == ["float", "binary", "reduced"]
    assert data["threads"] == [1]
    assert data["info"]["kernel"] == maxsim.info()["kernel"]
    for suite in ("float", "binary", "reduced"):
        for r in _rows(data, suite):
            assert r["threads"] == 1
            assert r["median_ms"] > 0, r
            assert r["time_unit"] == "query"
            for key in ("workload", "impl", "speedup", "speedup_vs", "agrees"):
                assert key in r
            assert r["speedup"] is not None and r["speedup"] > 0, r
        refs = {r["speedup_vs"] for r in _rows(data, suite)}
        for r in _rows(data, suite):
            if r["impl"] in refs:
                assert r["speedup"] == pytest.approx(1.0)
    for title in ("float32 MaxSim", "binary Hamming search", "reduced precision"):
        assert title in stdout
    float_title = next(line for line in stdout.splitlines() if "== float32 MaxSim" in line)
    assert ("torch" in float_title) == _importable("torch")
    assert ("maxsim-cpu" in float_title) == _importable("maxsim_cpu")


def test_bench_float_rows_agree(bench_run: tuple[dict, str]) -> None:
    rows = _rows(bench_run[0], "float")
    assert {r["workload"] for r in rows} == {"fixed", "variable", "batch"}
    impls = {r["impl"] for r in rows}
    assert {"maxsim", "numpy"} <= impls
    if _importable("maxsim_cpu"):
        assert "maxsim-cpu" in impls
        assert {r["speedup_vs"] for r in rows} == {"maxsim-cpu"}
    for r in rows:
        assert r["agrees"] is True, r
        assert r["gflops"] > 0


def test_bench_binary_rows_agree(bench_run: tuple[dict, str]) -> None:
    rows = _rows(bench_run[0], "binary")
    impls = {r["impl"] for r in rows}
    assert {"maxsim", "maxsim-index", "numpy"} <= impls
    if _importable("faiss"):
        assert "faiss" in impls
        assert {r["speedup_vs"] for r in rows} == {"faiss"}
    if _importable("usearch.index"):
        assert "usearch" in impls
    workloads = {r["workload"] for r in rows}
    assert "hamming_20k_512bit_100q_k10" in workloads
    assert "hamming_20k_1024bit_1q_k10" in workloads
    for r in rows:
        assert r["agrees"] is True, r
        assert r["gbps"] > 0
    single = [r for r in rows if "_1q_" in r["workload"]]
    assert single and all(r["mem_read_gbps"] > 0 for r in single)
    assert not any("mem_read_gbps" in r for r in rows if "_1q_" not in r["workload"])
    assert "memory read bandwidth (a plain read" in bench_run[1]


def test_bench_reduced_rows_and_accuracy(bench_run: tuple[dict, str]) -> None:
    data = bench_run[0]
    rows = _rows(data, "reduced")
    impls = {r["impl"] for r in rows}
    for dtype in ("float32", "float16", "bfloat16", "int8"):
        assert f"maxsim {dtype}" in impls
    if _importable("maxsim_cpu"):
        assert "maxsim-cpu float32" in impls
    if _importable("numkong") and _importable("ml_dtypes"):
        assert "numkong bf16 (pre-packed)" in impls
    assert {r["workload"] for r in rows} >= {"fixed", "variable", "batch64"}
    accuracy = {r["impl"]: r["top10_overlap"] for r in _rows(data, "reduced-accuracy")}
    for dtype in ("float16", "bfloat16", "int8"):
        assert accuracy[f"maxsim {dtype}"] >= 0.9, accuracy
    # NumKong's low overlap is explained under the table whenever it is shown.
    has_numkong = any(name.startswith("numkong") for name in accuracy)
    assert ("NumKong's MaxSim picks each query token's best" in bench_run[1]) == has_numkong


def test_bench_skips_missing_peers(tmp_path: Path) -> None:
    """A peer whose import fails is skipped with a note; the run still succeeds."""
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    names = ("faiss", "usearch", "numkong", "maxsim_cpu", "torch", "pylate")
    for name in names:
        (blocked / f"{name}.py").write_text(f"raise ImportError('{name} blocked by test')\n")
    out_json = tmp_path / "out.json"
    args = ["-m", "maxsim.cli", "bench", "--suite", "all", "--workloads", "fixed"]
    args += ["--docs", "5", "--repeat", "1", "--threads", "1", "--json", str(out_json)]
    out = _run(args, tmp_path, blocked)
    assert out.returncode == 0, out.stdout + out.stderr
    data = json.loads(out_json.read_text())
    impls = {r["impl"] for r in data["rows"]}
    assert {"maxsim", "numpy", "maxsim-index", "maxsim int8"} <= impls
    for impl in impls:
        assert not impl.startswith(("faiss", "usearch", "numkong", "maxsim-cpu", "torch")), impl
    assert not [r for r in data["rows"] if r["suite"] == "pylate"]
    notes = "\n".join(data["notes"])
    for name in ("faiss", "usearch", "numkong", "maxsim_cpu", "torch", "pylate"):
        assert name in notes
    assert "note: faiss is not available" in out.stdout
    # Titles name only the peers that ran.
    titles = [line for line in out.stdout.splitlines() if line.startswith("== ")]
    assert titles[:3] == [
        "== float32 MaxSim: maxsim vs numpy ==",
        "== binary Hamming search: maxsim vs numpy ==",
        "== reduced precision: float16 / bfloat16 / int8 documents vs float32 ==",
    ]


def test_bench_wrappers_keep_their_command_lines(tmp_path: Path) -> None:
    binary = _run(
        [str(ROOT / "benches" / "bench_binary.py"), "--n", "2000", "--bits", "512", "--k", "10"]
        + ["--queries", "5", "--repeat", "1", "--threads", "1", "--no-peers"]
        + ["--json", str(tmp_path / "binary.json")],
        tmp_path,
    )
    assert binary.returncode == 0, binary.stderr
    assert "vs faiss" in binary.stdout and "L1-resident kernel ceiling" in binary.stdout
    assert "memory read bandwidth" in binary.stdout
    rows = json.loads((tmp_path / "binary.json").read_text())
    assert {r["impl"] for r in rows} == {"maxsim", "maxsim-index"}
    assert all(r["agrees"] for r in rows)

    reduced = _run(
        [str(ROOT / "benches" / "bench_reduced.py"), "--threads", "1", "--repeat", "1"]
        + ["--workloads", "fixed", "--docs", "5", "--no-peers"]
        + ["--json", str(tmp_path / "reduced.json")],
        tmp_path,
    )
    assert reduced.returncode == 0, reduced.stderr
    assert "| fixed | maxsim int8 | 1 |" in reduced.stdout
    rows = json.loads((tmp_path / "reduced.json").read_text())["rows"]
    assert {r["impl"] for r in rows} == {
        f"maxsim {d}" for d in ("float32", "float16", "bfloat16", "int8")
    }


def test_bench_pylate_suite(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("pylate")
    out_json = tmp_path / "out.json"
    args = ["-m", "maxsim.cli", "bench", "--suite", "pylate", "--docs", "8", "--repeat", "1"]
    args += ["--threads", "1", "--json", str(out_json)]
    out = _run(args, tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = _rows(json.loads(out_json.read_text()), "pylate")
    by = {(r["workload"], r["impl"]): r for r in rows}
    assert set(by) == {
        ("rerank", "pylate.rank.rerank"),
        ("rerank", "maxsim.pylate.rerank"),
        ("rerank", "maxsim.pylate.rerank(exact=True)"),
        ("colbert_scores", "pylate.scores.colbert_scores"),
        ("colbert_scores", "maxsim.pylate.colbert_scores"),
    }
    for r in rows:
        assert r["median_ms"] > 0 and r["time_unit"] == "call"
        assert r["speedup"] > 0
    assert by[("rerank", "maxsim.pylate.rerank")]["agrees"] is True
    assert by[("colbert_scores", "maxsim.pylate.colbert_scores")]["agrees"] is True
    assert by[("rerank", "pylate.rank.rerank")]["speedup"] == pytest.approx(1.0)
    # The printed table carries the products-only floor where the CPU has AVX512_BF16.
    peak = by[("rerank", "pylate.rank.rerank")]["bf16_peak_gflops"]
    assert ("floor = the MaxSim products alone" in out.stdout) == (peak is not None)


def test_read_bandwidth_probe_checks_its_arguments() -> None:
    from maxsim import _native

    assert _native.read_bandwidth_gbs(1, mib=8, passes=2) > 0
    assert _native.read_bandwidth_gbs(2, mib=8, passes=2) > 0
    for bad in ({"threads": 0}, {"threads": 1, "mib": 0}, {"threads": 1, "passes": -3}):
        with pytest.raises(ValueError, match="must be at least 1"):
            _native.read_bandwidth_gbs(**bad)


def test_alternating_medians_times_every_call_in_turn() -> None:
    """One warm-up per call, then rounds x repeat timed calls, in alternation;
    each result is that call's median over rounds, in milliseconds."""
    import time

    from maxsim.bench.timing import alternating_medians_ms

    order: list[str] = []

    def fast() -> None:
        order.append("fast")

    def slow() -> None:
        order.append("slow")
        time.sleep(0.02)

    fast_ms, slow_ms = alternating_medians_ms([fast, slow], rounds=3, repeat=2)
    assert order == ["fast", "slow"] + ["fast", "fast", "slow", "slow"] * 3
    assert fast_ms >= 0 and slow_ms >= 20  # time.sleep waits at least as long as asked


def test_median_seconds_warms_up_for_a_minimum_time() -> None:
    """Untimed calls go on until ``min_warmup_seconds`` have passed (at least
    ``warmup`` of them); ``warmup=0`` times from the first call."""
    import time

    from maxsim.bench.timing import median_seconds

    calls: list[float] = []

    def sleeper(seconds: float):
        def fn() -> None:
            calls.append(time.perf_counter())
            time.sleep(seconds)

        return fn

    # 10 ms calls and a 50 ms minimum: the first timed call starts 50 ms or
    # more after the first untimed one, and no more than 5 untimed calls ran
    # (each takes at least 10 ms, so 5 of them already reach 50 ms).
    median = median_seconds(sleeper(0.01), repeat=3, min_warmup_seconds=0.05)
    untimed = len(calls) - 3
    assert 1 <= untimed <= 5 and median >= 0.01
    assert calls[untimed] - calls[0] >= 0.05
    calls.clear()
    # A call longer than the minimum: exactly `warmup` untimed calls.
    median_seconds(sleeper(0.03), repeat=2, warmup=2, min_warmup_seconds=0.01)
    assert len(calls) == 2 + 2
    calls.clear()
    median_seconds(sleeper(0.0), repeat=4, warmup=0, min_warmup_seconds=10.0)
    assert len(calls) == 4


@pytest.mark.parametrize(
    ("target", "problem"),
    [("missing/out.json", "does not exist"), (".", "is a directory")],
)
def test_bench_json_target_is_checked_before_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    target: str, problem: str,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "_bench", lambda args: pytest.fail("the run started"))
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", "--json", target])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"--json {target}: " in err and problem in err, err


def test_bench_json_write_is_atomic(tmp_path: Path) -> None:
    """A write that fails half-way (a row json cannot encode) keeps the old file
    whole and leaves no temporary behind."""
    out = tmp_path / "rows.json"
    cli._write_json(str(out), {"rows": [1, 2]})
    assert json.loads(out.read_text()) == {"rows": [1, 2]}
    with pytest.raises(TypeError):
        cli._write_json(str(out), {"rows": [1, object()]})
    assert json.loads(out.read_text()) == {"rows": [1, 2]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.json"]


def test_bench_json_survives_sigkill(tmp_path: Path) -> None:
    """A process killed (SIGKILL) while it rewrites the file, at several
    moments: the file always parses, as the old rows or the new."""
    out = tmp_path / "rows.json"
    old = {"rows": list(range(10))}
    new = {"rows": list(range(300_000))}  # a few MB: the kill lands mid-write
    writer = (
        "import sys; from maxsim import cli\n"
        "new = {'rows': list(range(300_000))}\n"
        "print('ready', flush=True)\n"
        "while True: cli._write_json(sys.argv[1], new)\n"
    )
    for delay in (0.0, 0.01, 0.05, 0.2):
        cli._write_json(str(out), old)
        proc = subprocess.Popen(
            [sys.executable, "-c", writer, str(out)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        time.sleep(delay)
        proc.kill()
        proc.wait(timeout=TIMEOUT)
        assert json.loads(out.read_text()) in (old, new)
