#!/usr/bin/env bash
# The one command that verifies the AMX kernels on a machine that has AMX
# (an Intel Xeon of the Sapphire Rapids generation or newer: `lscpu` shows
# amx_tile). AMX is off by default until this has passed on real hardware
# (dispatch::Kernel::is_verified). On such a machine it:
#   * runs the core crate's tests with MAXSIM_KERNEL=amx and
#     MAXSIM_REQUIRE_ISA=amx (every kernel against the scalar reference; a
#     missing AMX fails instead of skipping);
#   * runs the Python test suite's kernel tests with MAXSIM_KERNEL=amx
#     (needs python3 >= 3.9 there; see "python kit" below);
#   * runs rust/maxsim-core/examples/amx_timing.rs, whose last lines check
#     the reduced-precision work's AMX speed targets (batched bf16 on AMX
#     >= 1.5 TFLOP/s; >= 5x the AVX-512 float32 batch), on 1 thread and on
#     every core;
#   * prints one verdict line: "DEVICE CHECK: PASS", "FAIL (...)" or
#     "INCOMPLETE (...)".
# When it passes, flip the default: make Kernel::is_verified true for Amx.
#
# Here, first:  bash benches/device_check.sh --build    (fills target/device)
# Then, on a lent device machine:
#               run(command="bash benches/device_check.sh",
#                   carry=["target/device"], timeout_s=540)
# The log is $OUT/device_check.log (printed too). Nothing is built on the
# device: the test binaries need only glibc; the Python tests install the
# carried maxsim wheel (and pytest, hypothesis, ml_dtypes, and numpy if the
# device's python3 lacks it) into a fresh venv with --no-index.
# DEVICE_KERNEL=avx2 (or another kernel) runs the same checks elsewhere, to
# try the script on a machine without AMX.
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=target/device
KERNEL=${DEVICE_KERNEL:-amx}

if [ "${1:-}" = "--build" ]; then
    rm -rf "$DIR"
    mkdir -p "$DIR/wheels"
    cargo test -p maxsim-core --release --no-run --message-format=json 2>/dev/null |
        python3 -c '
import json, sys
for line in sys.stdin:
    msg = json.loads(line)
    if msg.get("reason") == "compiler-artifact" and msg.get("executable") and msg["profile"]["test"]:
        print(msg["executable"])
' | while read -r exe; do cp "$exe" "$DIR/test-$(basename "$exe")"; done
    cargo build -q --release -p maxsim-core --example amx_timing --example kernel_paths
    cp target/release/examples/amx_timing target/release/examples/kernel_paths "$DIR/"
    strip "$DIR"/test-* "$DIR"/amx_timing "$DIR"/kernel_paths 2>/dev/null || true
    # Python kit: the abi3 wheel, the pure-Python test dependencies, and the
    # binary ones (ml_dtypes, numpy) for the CPython versions common on
    # Linux servers; numpy only where the carry budget (64 MiB) allows.
    python3 -m maturin build --release -q -o "$DIR/wheels" >/dev/null 2>&1 ||
        maturin build --release -q -o "$DIR/wheels" >/dev/null
    python3 -m pip download -q --only-binary=:all: -d "$DIR/wheels" \
        pytest hypothesis >/dev/null
    for py in 3.10 3.11 3.12; do
        python3 -m pip download -q --only-binary=:all: --no-deps --python-version "$py" \
            -d "$DIR/wheels" ml_dtypes numpy >/dev/null || true
    done
    du -sh "$DIR" "$DIR/wheels"
    ls "$DIR"
    exit 0
fi

if [ ! -x "$DIR/amx_timing" ]; then
    echo "no $DIR/amx_timing: run 'bash benches/device_check.sh --build' here and carry $DIR" >&2
    exit 2
fi
OUT=${OUT:-/tmp/device_check}
mkdir -p "$OUT"
failures=()
gaps=()
{
    echo "== CPU"
    lscpu | grep -E "Model name|^CPU\(s\)|Thread\(s\)|Socket|L3"
    echo "flags: $(grep -o -w -E 'amx_[a-z0-9]+|avx512_bf16|avx512_vnni|avx512_fp16|avx512_vpopcntdq' /proc/cpuinfo | sort -u | tr '\n' ' ')"
    echo "== kernel paths"
    MAXSIM_KERNEL=$KERNEL "$DIR/kernel_paths"

    echo "== core tests, MAXSIM_KERNEL=$KERNEL MAXSIM_REQUIRE_ISA=$KERNEL"
    for test in "$DIR"/test-*; do
        MAXSIM_KERNEL=$KERNEL MAXSIM_REQUIRE_ISA=$KERNEL \
            timeout 240 "$test" --test-threads=8 -q >"$OUT/$(basename "$test").log" 2>&1
        rc=$?
        tail -2 "$OUT/$(basename "$test").log"
        echo "$(basename "$test") rc=$rc"
        [ "$rc" = 0 ] || failures+=("rust $(basename "$test")")
    done

    echo "== python tests, MAXSIM_KERNEL=$KERNEL"
    if ! command -v python3 >/dev/null; then
        gaps+=("no python3")
    else
        VENV=$OUT/venv
        rm -rf "$VENV"
        if python3 -c "import numpy" 2>/dev/null; then
            python3 -m venv --system-site-packages "$VENV"
        else
            python3 -m venv "$VENV"
        fi
        if "$VENV/bin/python" -m pip install -q --no-index --find-links "$DIR/wheels" \
            maxsim pytest hypothesis ml_dtypes numpy; then
            # From $OUT, so that the installed wheel is what is tested.
            (cd "$OUT" && MAXSIM_KERNEL=$KERNEL MAXSIM_REQUIRE_ISA=$KERNEL \
                timeout 300 "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
                --rootdir "$OLDPWD" "$OLDPWD/tests/test_core.py" \
                "$OLDPWD/tests/test_core_properties.py" "$OLDPWD/tests/test_reduced.py" \
                "$OLDPWD/tests/test_binary.py" "$OLDPWD/tests/test_kernel_env.py" \
                "$OLDPWD/tests/test_list_docs.py" "$OLDPWD/tests/test_concurrency.py" 2>&1 | tail -15)
            rc=${PIPESTATUS[0]}
            echo "python rc=$rc"
            [ "$rc" = 0 ] || failures+=("python tests")
        else
            gaps+=("python kit does not install on python $(python3 -V 2>&1)")
        fi
    fi

    for threads in 1 "$(nproc)"; do
        echo "== amx_timing, $threads thread(s)"
        timeout 150 "$DIR/amx_timing" "$threads" | tee "$OUT/amx_timing_$threads.log"
        if [ "$KERNEL" = amx ]; then
            grep -q "^target amx_bf16_tflops" "$OUT/amx_timing_$threads.log" ||
                failures+=("no AMX row in amx_timing ($threads threads)")
            if [ "$threads" = 1 ] && grep -q "^target .*: missed" "$OUT/amx_timing_1.log"; then
                failures+=("AMX speed target missed on 1 thread")
            fi
        fi
    done

    if [ ${#failures[@]} -gt 0 ]; then
        echo "DEVICE CHECK: FAIL (${failures[*]}) kernel=$KERNEL"
    elif [ ${#gaps[@]} -gt 0 ]; then
        echo "DEVICE CHECK: INCOMPLETE (${gaps[*]}) kernel=$KERNEL"
    else
        echo "DEVICE CHECK: PASS kernel=$KERNEL"
    fi
} 2>&1 | tee "$OUT/device_check.log"
grep -q "^DEVICE CHECK: PASS" "$OUT/device_check.log"
