#!/usr/bin/env bash
# One idempotent set-up for everything: system packages (where apt and root are available),
# the .venv with torch first, the Rust tokenizer, the package itself (editable, with the dev and export extras)
# and the embedded corpus. speedrun.sh and dev/test.sh both call it; a second run changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
t0=$SECONDS
say() { printf '\033[1m[setup %3ds]\033[0m %s\n' $((SECONDS - t0)) "$*"; }

# --- 1. system packages: pandoc (docs site), chromium (browser tests), Debian's Rust crates
#        (the tokenizer builds offline against them), a word list (spelling task), tcmalloc (dev/malloc.sh)
APT_PKGS="pandoc chromium chromium-driver wamerican librust-pyo3-dev librust-fancy-regex-dev
librust-rayon-dev librust-indexmap-dev librust-ahash-dev librust-log-dev libtcmalloc-minimal4"
if command -v apt-get >/dev/null 2>&1; then
  missing=$(for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
  if [ -n "$missing" ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
    if [ -z "$SUDO" ] || sudo -n true 2>/dev/null; then
      say "apt: installing $(echo $missing)"
      export DEBIAN_FRONTEND=noninteractive
      $SUDO apt-get install -y -q --no-install-recommends $missing >/dev/null 2>&1 \
        || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q --no-install-recommends $missing >/dev/null; } \
        || say "apt: could not install some of: $(echo $missing) (continuing; the tests that need them will say so)"
    else
      say "apt: not root and no passwordless sudo; skipping system packages: $(echo $missing)"
    fi
  fi
else
  say "apt: not a Debian/Ubuntu machine; install pandoc, chromium and a Rust toolchain yourself"
fi

# --- 2. the virtual environment; the Rust tokenizer builds in the background (cargo, CPU) while pip
#        installs torch and the Python packages (downloads and unpacking, mostly I/O)
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || { say "creating .venv"; "$PY" -m venv .venv; }
VPY=$ROOT/.venv/bin/python
pipi() {  # quiet pip install; hides only the warnings about this machine's absent local indexes. Bytecode is
  # compiled once at the end, on all cores (below), not file by file inside each pip run
  "$VPY" -m pip install -q --disable-pip-version-check --no-compile "$@" 2> >(grep -v "^WARNING: Location 'file://" >&2)
}
PIP=pipi
# an interrupted set-up leaves no background build behind
trap 'kill ${RUST_PID:-} ${CORPUS_PID:-} 2>/dev/null || true' EXIT

# stamps make the slow steps run only when their inputs change
stamp() { sha256sum "$@" 2>/dev/null | sha256sum | cut -c1-16; }
fresh() { [ -f ".venv/.stamp-$1" ] && [ "$(cat ".venv/.stamp-$1")" = "$2" ]; }
mark() { echo "$2" > ".venv/.stamp-$1"; }

RUST_PID=""
if [ -f rustbpe/Cargo.toml ]; then
  # crates.io is unreachable on the course machines: where Debian's crate registry exists, point cargo
  # at it with a directory-source replacement (an untracked file, so elsewhere crates.io is used).
  if [ -d /usr/share/cargo/registry ] && [ ! -f rustbpe/.cargo/config.toml ]; then
    mkdir -p rustbpe/.cargo
    printf '%s\n' '# written by dev/setup.sh: build against Debian'"'"'s crates (librust-*-dev), offline' \
      '[source.crates-io]' 'replace-with = "debian"' '[source.debian]' 'directory = "/usr/share/cargo/registry"' \
      > rustbpe/.cargo/config.toml
  fi
  RUST_HASH=$(stamp rustbpe/Cargo.toml rustbpe/pyproject.toml $(find rustbpe/src rustbpe/.cargo -type f 2>/dev/null | sort))
  if ! fresh rustbpe "$RUST_HASH"; then
    say "building the Rust tokenizer (rustbpe) in the background"
    $PIP maturin >/dev/null
    RUST_WHEELS=$(mktemp -d)
    # a wheel into a temporary folder (nothing in .venv changes while pip works there); installed below
    (cd rustbpe && "$ROOT/.venv/bin/maturin" build --release -q -i "$VPY" -o "$RUST_WHEELS") > "$RUST_WHEELS/build.log" 2>&1 &
    RUST_PID=$!
  fi
fi

if ! "$VPY" -c "import torch" 2>/dev/null; then
  # TORCH_SPEC overrides; the default takes a local CPU wheel on the course machines and
  # the matching build (CUDA on Linux) from PyPI elsewhere.
  spec=${TORCH_SPEC:-torch==2.13.0}
  say "installing $spec"
  $PIP "$spec" 2>/dev/null || $PIP "torch>=2.5"
fi

# the embedded corpus (cached under NANOCHAT_BASE_DIR; built only when missing) builds in the background too,
# while pip installs the rest: it needs only torch, pyarrow, tqdm and this folder on the path
CORPUS_PID=""
if [ -n "${NANOCHAT_DATA_DIR:-}" ]; then
  say "NANOCHAT_DATA_DIR=$NANOCHAT_DATA_DIR: using those shards, not building the embedded corpus"
else
  "$VPY" -c "import pyarrow, tqdm" 2>/dev/null || $PIP pyarrow tqdm
  CORPUS_LOG=$(mktemp)
  PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$VPY" -m nanochat.dataset build > "$CORPUS_LOG" 2>&1 &
  CORPUS_PID=$!
fi

h=$(stamp pyproject.toml)
if ! fresh deps "$h" || ! "$VPY" -c "import nanochat" 2>/dev/null; then
  say "installing nanochat (editable) with the dev and export extras"
  $PIP -e ".[dev,export]"
  mark deps "$h"
fi

# the notebook kernel of .venv (JupyterLab started from it) runs on tcmalloc too, as speedrun.sh's scripts do
source dev/malloc.sh
if [ -n "${TCMALLOC:-}" ] && ! grep -q "$TCMALLOC" .venv/share/jupyter/kernels/python3/kernel.json 2>/dev/null; then
  "$VPY" -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (nanochat)" \
    --env LD_PRELOAD "$TCMALLOC" --env TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD 1099511627776 >/dev/null 2>&1 \
    && say "notebook kernel: tcmalloc preloaded (.venv/share/jupyter/kernels/python3)"
fi

# --- 3. bytecode for everything installed (PYTHONDONTWRITEBYTECODE, where set, would otherwise have every
#        process compile torch's sources again), then the background builds' results
SITE=$("$VPY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
"$VPY" -m compileall -q -j 0 "$SITE" >/dev/null 2>&1 || true   # a few files of test data never compile; harmless
if [ -n "$CORPUS_PID" ]; then
  wait "$CORPUS_PID" || { cat "$CORPUS_LOG" >&2; say "FAILED: building the embedded corpus (the log is above)"; exit 1; }
  say "$(tail -n 1 "$CORPUS_LOG")"; rm -f "$CORPUS_LOG"
fi
if [ -n "$RUST_PID" ]; then
  wait "$RUST_PID" || { cat "$RUST_WHEELS/build.log" >&2; say "FAILED: building rustbpe (the log is above)"; exit 1; }
  $PIP --no-deps --force-reinstall "$RUST_WHEELS"/*.whl
  mark rustbpe "$RUST_HASH"; rm -rf "$RUST_WHEELS"
  say "rustbpe built and installed"
fi
say "ready in $((SECONDS - t0)) s (activate with: source .venv/bin/activate)"
