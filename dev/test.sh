#!/usr/bin/env bash
# The test command: set up, then check that the notebooks are clean and the library is in sync
# with them, run every notebook as a test, the Rust tests, and finally pytest (its summary line
# is the last thing printed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash dev/setup.sh
source .venv/bin/activate
source dev/malloc.sh   # the notebooks, the scripts and the tests run on tcmalloc, as speedrun.sh's stages do
say() { printf '\033[1m[test]\033[0m %s\n' "$*"; }

snapshot() { { git status --porcelain --untracked-files=all; git diff; } | sha256sum; }
before=$(snapshot)
nbdev-clean >/dev/null
nbdev-export
python dev/docs.py readme
if [ "$before" != "$(snapshot)" ]; then
  say "FAIL: nbdev-clean, nbdev-export or dev/docs.py readme changed files. Run them, review and commit:"
  git status --short
  exit 1
fi
say "notebooks clean, library in sync"

say "nbdev-test"
nbdev-test --do-print --timing

if [ -f rustbpe/Cargo.toml ]; then
  say "cargo test (rustbpe)"
  (cd rustbpe && cargo test -q --lib 2>&1 | tail -n 3)  # the unit tests; pipefail keeps a failure fatal
fi

say "pytest"
set +e
python -m pytest -q "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then echo "pytest collected no tests: that is a failure"; exit 1; fi
exit $rc
