#!/usr/bin/env bash
# One idempotent set-up for everything: system packages (where apt and root are available),
# the .venv with torch first, the Rust tokenizer, the package itself (editable, with dev extras)
# and the embedded corpus. speedrun.sh and dev/test.sh both call it; a second run changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
t0=$SECONDS

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

# --- 2. the virtual environment, torch first
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || { say "creating .venv"; "$PY" -m venv .venv; }
VPY=$ROOT/.venv/bin/python
pipi() {  # quiet pip install; hides only the warnings about this machine's absent local indexes
  "$VPY" -m pip install -q --disable-pip-version-check "$@" 2> >(grep -v "^WARNING: Location 'file://" >&2)
}
PIP=pipi
if ! "$VPY" -c "import torch" 2>/dev/null; then
  # TORCH_SPEC overrides; the default takes a local CPU wheel on the course machines and
  # the matching build (CUDA on Linux) from PyPI elsewhere.
  spec=${TORCH_SPEC:-torch==2.13.0}
  say "installing $spec"
  $PIP "$spec" 2>/dev/null || $PIP "torch>=2.5"
fi

# --- 3. stamps make the slow steps run only when their inputs change
stamp() { sha256sum "$@" 2>/dev/null | sha256sum | cut -c1-16; }
fresh() { [ -f ".venv/.stamp-$1" ] && [ "$(cat ".venv/.stamp-$1")" = "$2" ]; }
mark() { echo "$2" > ".venv/.stamp-$1"; }

if [ -f rustbpe/Cargo.toml ]; then
  # crates.io is unreachable on the course machines: where Debian's crate registry exists, point cargo
  # at it with a directory-source replacement (an untracked file, so elsewhere crates.io is used).
  if [ -d /usr/share/cargo/registry ] && [ ! -f rustbpe/.cargo/config.toml ]; then
    mkdir -p rustbpe/.cargo
    printf '%s\n' '# written by dev/setup.sh: build against Debian'"'"'s crates (librust-*-dev), offline' \
      '[source.crates-io]' 'replace-with = "debian"' '[source.debian]' 'directory = "/usr/share/cargo/registry"' \
      > rustbpe/.cargo/config.toml
  fi
  h=$(stamp rustbpe/Cargo.toml rustbpe/pyproject.toml $(find rustbpe/src rustbpe/.cargo -type f 2>/dev/null | sort))
  if ! fresh rustbpe "$h"; then
    say "building the Rust tokenizer (rustbpe)"
    $PIP maturin >/dev/null
    # maturin is already in .venv (on PATH for the build hook), so no build environment is downloaded
    PATH="$ROOT/.venv/bin:$PATH" $PIP --no-build-isolation ./rustbpe
    mark rustbpe "$h"
  fi
fi

h=$(stamp pyproject.toml)
if ! fresh deps "$h" || ! "$VPY" -c "import nanochat" 2>/dev/null; then
  say "installing nanochat (editable) with dev extras"
  $PIP -e ".[dev]"
  mark deps "$h"
fi

# the notebook kernel of .venv (JupyterLab started from it) runs on tcmalloc too, as speedrun.sh's scripts do
source dev/malloc.sh
if [ -n "${TCMALLOC:-}" ] && ! grep -q "$TCMALLOC" .venv/share/jupyter/kernels/python3/kernel.json 2>/dev/null; then
  "$VPY" -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (nanochat)" \
    --env LD_PRELOAD "$TCMALLOC" --env TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD 1099511627776 >/dev/null 2>&1 \
    && say "notebook kernel: tcmalloc preloaded (.venv/share/jupyter/kernels/python3)"
fi

# --- 4. the embedded corpus (cached under NANOCHAT_BASE_DIR; built only when missing)
if [ -n "${NANOCHAT_DATA_DIR:-}" ]; then
  say "NANOCHAT_DATA_DIR=$NANOCHAT_DATA_DIR: using those shards, not building the embedded corpus"
elif "$VPY" -c "import nanochat.dataset" 2>/dev/null; then
  "$VPY" -m nanochat.dataset build
fi
say "ready in $((SECONDS - t0)) s (activate with: source .venv/bin/activate)"
