#!/usr/bin/env bash
# CI step, called from .ci/run: the release artifacts, built and tested the way
# users get them.
#   build      scripts/build-wheels: the sdist, and the x86_64 and aarch64
#              manylinux2014 abi3 wheels, each built by pip from the sdist
#   audit      auditwheel (policy, external libraries, ISA level), the sdist's
#              contents, LICENSE, file names carrying Cargo.toml's version
#   py3.9/3.13 the x86_64 wheel in fresh venvs of the oldest and newest CPython
#              of the machine image's pyenv, with no cargo or rustc on PATH: the
#              smoke test (maxsim.__version__ == Cargo.toml's), then the core
#              tests (not the torch/PyLate ones) and the README/docs Python
#              blocks from a copy of tests/, so that only the installed wheel
#              is importable; 3.9 on the scalar
#              kernel, 3.13 on the best one (the kernels are the same code
#              under every Python, so each runs once)
#   aarch64    the aarch64 wheel in an arm64 CPython (Debian's, unpacked from
#              its arm64 packages) under qemu-user: tests/smoke_wheel.py, NEON
#   readme     the README's main command in a fresh venv, at reduced sizes
#   workflow   actionlint (with shellcheck) on .github/workflows, shellcheck on
#              the release scripts
#   targets    cargo clippy for Windows and macOS, where rustup can add their
#              standard libraries (Debian has none recent enough)
# Run some steps only by naming them: `bash .ci/wheels.sh aarch64 workflow`.
# Caches: ~/.cache/maxsim (arm64 packages and wheels), ~/.cache/pip, ~/.cache/zig.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
TOOLS=$PWD/target/wheel-tools/bin        # made by scripts/build-wheels
VENVS=$PWD/target/wheel-venvs
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/maxsim
pkgid=$(cargo pkgid -p maxsim-py)
VERSION=${pkgid##*[#@]}
SDIST=dist/maxsim-$VERSION.tar.gz
WHEEL_TAG=cp39-abi3-manylinux2014_ARCH.manylinux_2_17_ARCH
X86_WHEEL=dist/maxsim-$VERSION-${WHEEL_TAG//ARCH/x86_64}.whl
ARM_WHEEL=dist/maxsim-$VERSION-${WHEEL_TAG//ARCH/aarch64}.whl

TIMES=()
step() {
    local name=$1 t0=$SECONDS
    shift
    echo "== wheels: $name"
    "$@"
    TIMES+=("$(printf '%5d s  %s' $((SECONDS - t0)) "$name")")
}

build() {
    scripts/build-wheels
}

audit() {
    local whl arch
    for arch in x86_64 aarch64; do
        whl=dist/maxsim-$VERSION-${WHEEL_TAG//ARCH/$arch}.whl
        "$TOOLS/auditwheel" show "$whl"
        "$TOOLS/auditwheel" show --json "$whl" >"target/auditwheel-$arch.json"
        "$TOOLS/python" - "target/auditwheel-$arch.json" "manylinux_2_17_$arch" <<'EOF'
import json, sys
report, tag = json.load(open(sys.argv[1])), sys.argv[2]
assert report["overall_tag"] == tag, f"policy {report['overall_tag']}, wheel claims {tag}"
assert not report["external_libs"], f"external libraries: {report['external_libs']}"
assert not report["unsupported_isa"], "needs ISA extensions beyond the baseline"
EOF
        # Listed into a variable first: `unzip | grep -q` under pipefail fails
        # whenever grep exits before unzip has written everything (SIGPIPE).
        local names
        names=$(unzip -Z1 "$whl")
        grep -qx "maxsim-$VERSION.dist-info/licenses/LICENSE" <<<"$names" ||
            { echo "$whl: no LICENSE"; return 1; }
    done
    local listing
    listing=$(tar tzf "$SDIST")
    for f in Cargo.toml Cargo.lock LICENSE README.md pyproject.toml python/maxsim/__init__.py \
        rust/maxsim-core/Cargo.toml rust/maxsim-core/src/lib.rs rust/maxsim-py/Cargo.toml \
        rust/maxsim-py/src/lib.rs; do
        grep -qx "maxsim-$VERSION/$f" <<<"$listing" || { echo "$SDIST lacks $f"; return 1; }
    done
    if grep -E '\.(so|pyd|whl)$' <<<"$listing"; then echo "$SDIST holds built files"; return 1; fi
    ls -l dist/
}

# PATH entries for the venvs under test: every program of the system's bin
# folders except Rust's, so that nothing can fall back to a source build.
NO_RUST_BIN=$PWD/target/no-rust-bin
no_rust_bin() {
    rm -rf "$NO_RUST_BIN"
    mkdir -p "$NO_RUST_BIN"
    local f
    for f in /usr/local/bin/* /usr/bin/* /bin/*; do
        case ${f##*/} in cargo* | rustc* | rustdoc* | rustup* | rust-*) continue ;; esac
        [ -e "$NO_RUST_BIN/${f##*/}" ] || ln -s "$f" "$NO_RUST_BIN/${f##*/}"
    done
}

# The newest pyenv build of CPython X.Y (part of the machine image).
pyenv_python() {
    local root found
    root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
    found=$(printf '%s\n' "$root/versions/$1".* | sort -V | tail -1)
    [ -x "$found/bin/python$1" ] || { echo "no CPython $1 under $root/versions" >&2; return 1; }
    echo "$found/bin/python$1"
}

# x86_wheel_tests X.Y KERNEL...: KERNEL is "best" (maxsim's own choice) or a
# MAXSIM_KERNEL value. The kernels are the same code under every Python, so
# one Python runs them all.
x86_wheel_tests() {
    local minor=$1 venv="$VENVS/py$1" work kernel
    shift
    rm -rf "$venv"
    "$(pyenv_python "$minor")" -m venv "$venv"
    local -x PATH="$venv/bin:$NO_RUST_BIN"
    if command -v cargo || command -v rustc; then echo "Rust is still on PATH"; return 1; fi
    local t0=$SECONDS
    python -m pip install -q --only-binary :all: "$X86_WHEEL"
    echo "installed the wheel (and numpy) into a fresh venv in $((SECONDS - t0)) s"
    python -m pip install -q --only-binary :all: "${X86_WHEEL}[test,bench]"
    work=$(mktemp -d)
    # README.md and docs/ for tests/test_readme_snippets.py: their Python
    # blocks run against the installed wheel too.
    cp -r tests benches docs README.md "$work/"
    (
        cd "$work"
        python tests/smoke_wheel.py --version "$VERSION"
        # The torch, transformers and PyLate tests need several GB per venv;
        # they run in the main suite.
        local core=() f
        for f in tests/test_*.py; do
            case $f in tests/test_models_* | tests/test_pylate_*) ;; *) core+=("$f") ;; esac
        done
        for kernel in "$@"; do
            if [ "$kernel" = best ]; then unset MAXSIM_KERNEL; else export MAXSIM_KERNEL=$kernel; fi
            echo "-- CPython $minor, kernel $(python -c 'import maxsim; print(maxsim.info()["kernel"])')"
            python -m pytest -q -ra -p no:cacheprovider "${core[@]}"
        done
    )
    rm -rf "$work"
}

# An arm64 CPython 3.11 from Debian's arm64 packages, unpacked (their
# maintainer scripts need no running here), for qemu-aarch64-static -L.
ARM_ROOT=$PWD/target/arm64-root
ARM_PACKAGES=(python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libc6 libgcc-s1
    libstdc++6 zlib1g libexpat1 libffi8 libssl3 libbz2-1.0 liblzma5 libsqlite3-0 libncursesw6
    libtinfo6 libreadline8 libuuid1 libcrypt1 libdb5.3 libnsl2 libtirpc3 libgssapi-krb5-2
    libkrb5-3 libk5crypto3 libkrb5support0 libkeyutils1 libcom-err2)
ARM_NUMPY=numpy==2.2.6 # the last numpy with manylinux2014 aarch64 wheels for CPython 3.11

arm64_root() {
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        $SUDO dpkg --add-architecture arm64
        $SUDO apt-get update -qq
    fi
    mkdir -p "$CACHE/arm64-debs"
    local files=() missing=() f
    mapfile -t files < <(apt-get download --print-uris "${ARM_PACKAGES[@]/%/:arm64}" |
        awk '{print $2}')
    for f in "${files[@]}"; do # NAME_VERSION_arm64.deb
        [ -f "$CACHE/arm64-debs/$f" ] || missing+=("${f%%_*}:arm64")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        (cd "$CACHE/arm64-debs" && apt-get download -q "${missing[@]}")
    fi
    rm -rf "$ARM_ROOT"
    mkdir -p "$ARM_ROOT"
    for f in "${files[@]}"; do dpkg-deb -x "$CACHE/arm64-debs/$f" "$ARM_ROOT"; done
}

aarch64_smoke() {
    arm64_root
    local site=$ARM_ROOT/site wheels=$CACHE/aarch64-wheels platform
    platform=(--only-binary :all: --platform manylinux2014_aarch64 --python-version 3.11
        --implementation cp)
    "$TOOLS/python" -m pip download -q "${platform[@]}" -d "$wheels" "$ARM_NUMPY"
    # pip resolves for the arm64 interpreter's tags, so a wheel tagged for
    # another architecture or a newer glibc is refused here.
    "$TOOLS/python" -m pip install -q "${platform[@]}" --no-index --find-links "$wheels" \
        --target "$site" "$ARM_NUMPY" "$ARM_WHEEL"
    PYTHONPATH=$site qemu-aarch64-static -L "$ARM_ROOT" "$ARM_ROOT/usr/bin/python3.11" \
        tests/smoke_wheel.py --kernel neon --version "$VERSION"
}

readme_main_command() {
    local venv=$VENVS/readme
    rm -rf "$venv"
    python3 -m venv "$venv"
    (
        # shellcheck disable=SC1091
        . "$venv/bin/activate"
        # The README's "Run the benchmark" command, at sizes for CI.
        python3 -m pip install -q ".[bench]" &&
            maxsim bench --docs 20 --repeat 1 --threads 1 --json target/readme-bench.json
    )
    "$TOOLS/python" - target/readme-bench.json <<'EOF'
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
for suite in ("float", "binary", "reduced"):
    impls = {r["impl"] for r in rows if r["suite"] == suite}
    assert impls, f"no {suite} rows"
    print(f"{suite}: {sorted(impls)}")
EOF
}

workflow_lint() {
    command -v shellcheck >/dev/null ||
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null
    "$TOOLS/actionlint" -no-color .github/workflows/*.yml
    shellcheck .ci/wheels.sh scripts/build-wheels
}

other_targets() {
    local t
    for t in x86_64-pc-windows-msvc aarch64-apple-darwin; do
        if ! timeout 180 rustup target add "$t" >/dev/null 2>&1; then
            echo "NOT CHECKED: $t (rustup could not add its standard library)"
            continue
        fi
        CARGO_TARGET_DIR=target/check cargo clippy -q -p maxsim-core -p maxsim-py --release \
            --target "$t" -- -D warnings
        echo "checked: $t"
    done
}

no_rust_bin
STEPS=("$@")
[ ${#STEPS[@]} -gt 0 ] || STEPS=(build audit py3.9 py3.13 aarch64 readme workflow targets)
for name in "${STEPS[@]}"; do
    case $name in
        build) step "build: sdist, x86_64 and aarch64 wheels" build ;;
        audit) step "audit: auditwheel, sdist contents, version" audit ;;
        py3.9 | py3.13)
            kernels=(best)
            if [ "$name" = py3.9 ]; then kernels=(scalar); fi
            step "x86_64 wheel, CPython ${name#py}, no Rust" x86_wheel_tests "${name#py}" "${kernels[@]}"
            ;;
        aarch64) step "aarch64 wheel, arm64 CPython under qemu" aarch64_smoke ;;
        readme) step "README main command, fresh venv" readme_main_command ;;
        workflow) step "release workflow lint" workflow_lint ;;
        targets) step "Windows and macOS clippy" other_targets ;;
        *) echo "unknown step $name" >&2; exit 2 ;;
    esac
done
echo "== wheels: step times"
printf '%s\n' "${TIMES[@]}"
