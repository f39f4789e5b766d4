"""PyLate's own tests and examples, run against maxsim.

1. The docstring examples of ``pylate.scores`` (``colbert_scores``,
   ``colbert_scores_pairwise``, ``colbert_kd_scores``), from the installed
   PyLate, with maxsim's functions in their place. They need no download.
2. PyLate's repository tests for ``scores`` (``tests/test_colbert_scores.py``,
   ``test_scores_flash.py``, ``test_scores_lik.py``: the CPU-runnable ones),
   taken from the PyLate sdist and run in a subprocess with
   ``maxsim.pylate.patch()`` applied before they import PyLate. The sdist is
   not part of this repository; get it with::

       V=$(python -c 'import pylate; print(pylate.__version__)')
       pip download --no-deps --no-binary :all: "pylate==$V" -d ~/.cache/maxsim

   and, if elsewhere, point ``MAXSIM_PYLATE_SDIST`` at the ``.tar.gz`` (or the
   extracted folder). Without it the test is skipped. PyLate's ``rank`` has no
   repository tests that run offline (its doctest downloads a model).
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import io
import os
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
pylate = pytest.importorskip("pylate")

import maxsim  # noqa: E402
import maxsim.pylate as mp  # noqa: E402
from maxsim.pylate import _fallback  # noqa: E402

UPSTREAM_TESTS = ("test_colbert_scores.py", "test_scores_flash.py", "test_scores_lik.py")


@pytest.fixture(autouse=True)
def _not_patched():
    mp.unpatch()
    yield
    mp.unpatch()


@pytest.mark.parametrize("name", ["colbert_scores", "colbert_scores_pairwise", "colbert_kd_scores"])
def test_pylate_docstring_examples(name: str) -> None:
    original = _fallback.original("pylate.scores", name)
    assert original is not None
    module = importlib.import_module(original.__module__)
    globs = dict(vars(module))
    globs[name] = getattr(mp, name)
    tests = doctest.DocTestFinder().find(original, name, module=module, globs=globs)
    assert tests and tests[0].examples
    out = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test, out=out.write)
    assert runner.failures == 0, out.getvalue()
    assert runner.tries >= 3


def _sdist() -> Path | None:
    env = os.environ.get("MAXSIM_PYLATE_SDIST")
    if env:
        return Path(env).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "maxsim"
    candidate = cache / f"pylate-{pylate.__version__}.tar.gz"
    return candidate if candidate.exists() else None


def _extract_tests(sdist: Path, dest: Path) -> list[str]:
    found = []
    if sdist.is_dir():
        for name in UPSTREAM_TESTS:
            src = sdist / "tests" / name
            if src.exists():
                (dest / name).write_bytes(src.read_bytes())
                found.append(name)
        return found
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            parts = Path(member.name).parts
            if len(parts) == 3 and parts[1] == "tests" and parts[2] in UPSTREAM_TESTS:
                data = tar.extractfile(member)
                assert data is not None
                (dest / parts[2]).write_bytes(data.read())
                found.append(parts[2])
    return found


CONFTEST = textwrap.dedent(
    """
    import maxsim.pylate as mp

    mp.patch()  # before any test module imports from pylate.scores

    import pylate.scores

    assert pylate.scores.colbert_scores is mp.colbert_scores


    def pytest_collection_modifyitems(session, config, items):
        # The upstream modules bound PyLate's names at import: they must be ours.
        seen = set()
        for item in items:
            module = getattr(item, "module", None)
            if module is None or module.__name__ in seen:
                continue
            seen.add(module.__name__)
            for name in ("colbert_scores", "colbert_scores_pairwise", "colbert_kd_scores"):
                if hasattr(module, name):
                    assert getattr(module, name) is getattr(mp, name), (module, name)
    """
)


def test_pylate_repository_scores_tests_pass_patched(tmp_path: Path) -> None:
    sdist = _sdist()
    if sdist is None or not sdist.exists():
        pytest.skip(
            "PyLate sdist not found: pip download --no-deps --no-binary :all: "
            f"pylate=={pylate.__version__} -d ~/.cache/maxsim (or set MAXSIM_PYLATE_SDIST)"
        )
    found = _extract_tests(sdist, tmp_path)
    if not found:
        pytest.skip(f"{sdist} contains none of {UPSTREAM_TESTS}")
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    slow: upstream marker\n")
    package_root = str(Path(maxsim.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    env["HF_HUB_OFFLINE"] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert " passed" in proc.stdout, proc.stdout[-2000:]


OLDER_VERSION_SCRIPT = textwrap.dedent(
    """
    import numpy as np, torch, pylate
    from pylate import rank, retrieve, scores
    import maxsim.pylate as mp

    names = mp.patch()
    mp.unpatch()
    assert "pylate.rank.rank.rerank" in names and "pylate.scores.colbert_scores" in names, names
    rng = np.random.default_rng(0)

    def unit(*shape):
        x = rng.standard_normal(shape).astype(np.float32)
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    Q = [unit(8, 16) for _ in range(3)]
    D = [[unit(int(rng.integers(1, 20)), 16) for _ in range(30)] for _ in range(3)]
    ids = [list(range(30))] * 3
    expected = rank.rerank(ids, Q, D)
    q, d = torch.from_numpy(unit(4, 6, 16)), torch.from_numpy(unit(5, 7, 16))
    dm = (torch.rand(5, 7) > 0.3).float()
    expected_scores = scores.colbert_scores(q, d, None, dm)
    with mp.patched():
        import pylate.retrieve.colbert as rc

        assert rc.rerank is mp.rerank
        got = rank.rerank(ids, Q, D)
        got_scores = scores.colbert_scores(q, d, None, dm)
    for a, b in zip(got, expected):
        assert [r["id"] for r in a] == [r["id"] for r in b]
        assert max(abs(x["score"] - y["score"]) for x, y in zip(a, b)) < 1e-5
    assert torch.allclose(got_scores, expected_scores, atol=1e-5, rtol=0)
    docs = [unit(int(rng.integers(1, 20)), 16) for _ in range(25)]
    index = mp.Index().add_documents([f"d{i}" for i in range(25)], docs)
    results = retrieve.ColBERT(index=index).retrieve(queries_embeddings=Q, k=3)
    for query, result in zip(Q, results):
        ref = [
            float(scores.colbert_scores(torch.from_numpy(query)[None], torch.from_numpy(x)[None]))
            for x in docs
        ]
        order = sorted(range(25), key=lambda i: -ref[i])[:3]
        assert [r["id"] for r in result] == [f"d{i}" for i in order], (result, order)
    print("OK", pylate.__version__)
    """
)

# PyLate 1.4 imports sqlitedict, which PyLate 1.6 no longer installs.
SQLITEDICT_STUB = textwrap.dedent(
    """
    class SqliteDict(dict):
        def __init__(self, *args, **kwargs):
            super().__init__()

        def commit(self):
            pass

        def close(self):
            pass
    """
)


def _older_wheels() -> list[Path]:
    folder = os.environ.get("MAXSIM_PYLATE_OLD_WHEELS")
    if not folder:
        return []
    return sorted(Path(folder).expanduser().glob("pylate-1.[45].*-py3-none-any.whl"))


@pytest.mark.parametrize(
    "wheel", _older_wheels() or [None], ids=lambda w: getattr(w, "name", "none")
)
def test_older_pylate_versions(wheel: Path | None, tmp_path: Path) -> None:
    """PyLate 1.4 / 1.5 from their wheels (put on sys.path, not installed).

    Get them with ``pip download --no-deps pylate==1.4.0 pylate==1.5.0 -d DIR``
    (one at a time) and set ``MAXSIM_PYLATE_OLD_WHEELS=DIR``; skipped otherwise.
    """
    if wheel is None:
        pytest.skip("set MAXSIM_PYLATE_OLD_WHEELS to a folder with pylate 1.4/1.5 wheels")
    import zipfile

    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(tmp_path / "site")
    (tmp_path / "stubs").mkdir()
    if importlib.util.find_spec("sqlitedict") is None:
        (tmp_path / "stubs" / "sqlitedict.py").write_text(SQLITEDICT_STUB)
    package_root = str(Path(maxsim.__file__).resolve().parent.parent)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join(
        [str(tmp_path / "site"), package_root, str(tmp_path / "stubs")]
    )
    proc = subprocess.run(
        [sys.executable, "-c", OLDER_VERSION_SCRIPT],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    version = wheel.name.split("-")[1]
    assert f"OK {version}" in proc.stdout
