#!/usr/bin/env bash
# One prepared run for a lent device machine (its x86-64 host CPU may have
# AMX, and it has 16 cores), so that a session with one spends its minutes
# measuring, not building:
#   * the core crate's tests, which compare every kernel the CPU supports
#     (AMX included) with the scalar reference;
#   * rust/maxsim-core/examples/amx_timing.rs, the reduced-precision issue's
#     AMX figures (batched bfloat16 TFLOP/s on one core, AMX against the
#     AVX-512 float32 batch), on 1 thread and on every core.
#
# Here, first:  bash benches/device_check.sh --build   (fills target/device)
# Then:         run(command="bash benches/device_check.sh",
#                   carry=["target/device"], timeout_s=480)
# The log is $OUT/device_check.log (printed too). Nothing is built or
# installed on the device; the binaries need only glibc.
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=target/device

if [ "${1:-}" = "--build" ]; then
    rm -rf "$DIR"
    mkdir -p "$DIR"
    cargo test -p maxsim-core --release --no-run --message-format=json 2>/dev/null |
        python3 -c '
import json, sys
for line in sys.stdin:
    msg = json.loads(line)
    if msg.get("reason") == "compiler-artifact" and msg.get("executable") and msg["profile"]["test"]:
        print(msg["executable"])
' | while read -r exe; do cp "$exe" "$DIR/test-$(basename "$exe")"; done
    cargo build -q --release -p maxsim-core --example amx_timing
    cp target/release/examples/amx_timing "$DIR/"
    strip "$DIR"/* 2>/dev/null || true
    du -sh "$DIR"
    ls "$DIR"
    exit 0
fi

if [ ! -x "$DIR/amx_timing" ]; then
    echo "no $DIR/amx_timing: run 'bash benches/device_check.sh --build' here and carry $DIR" >&2
    exit 2
fi
OUT=${OUT:-/tmp/device_check}
mkdir -p "$OUT"
{
    echo "== CPU"
    lscpu | grep -E "Model name|^CPU\(s\)|Thread\(s\)|Socket|L3"
    echo "flags: $(grep -o -w -E 'amx_[a-z0-9]+|avx512_bf16|avx512_vnni|avx512_fp16|avx512_vpopcntdq' /proc/cpuinfo | sort -u | tr '\n' ' ')"
    echo "== core tests (every supported kernel against the scalar reference)"
    for test in "$DIR"/test-*; do
        timeout 240 "$test" --test-threads=8 -q 2>&1 | tail -3
        echo "$(basename "$test") rc=${PIPESTATUS[0]}"
    done
    echo "== amx_timing, 1 thread"
    timeout 150 "$DIR/amx_timing" 1
    echo "== amx_timing, $(nproc) threads"
    timeout 100 "$DIR/amx_timing" "$(nproc)"
} 2>&1 | tee "$OUT/device_check.log"
