# Sourced by speedrun.sh, dev/test.sh and dev/setup.sh: preload tcmalloc into the Python processes they start.
# On CPU, PyTorch allocates and frees tensors of ~100 MB many times per training step (the logits of the CPU preset
# are 134 MB); glibc's malloc gives memory that large back to the kernel on free and page-faults it in again on the
# next allocation. tcmalloc keeps it: a d4 bf16 step went from 3.4 s to 1.9 s on the course machine (00_common has
# the details). NANOCHAT_MALLOC=system keeps the system allocator. dev/setup.sh installs the library.
nanochat_tcmalloc() {   # the path of the library, or nothing
  local f
  for f in /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 /usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4 \
           /usr/lib64/libtcmalloc_minimal.so.4 /usr/lib/libtcmalloc_minimal.so.4; do
    [ -f "$f" ] && { echo "$f"; return 0; }
  done
}
if [ "${NANOCHAT_MALLOC:-tcmalloc}" != system ] && [[ "${LD_PRELOAD:-}" != *tcmalloc* ]]; then
  if TCMALLOC=$(nanochat_tcmalloc) && [ -n "$TCMALLOC" ]; then
    export LD_PRELOAD="$TCMALLOC${LD_PRELOAD:+:$LD_PRELOAD}"
    export TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD=${TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD:-1099511627776}  # no "large alloc" lines
  elif [ "$(uname)" = Linux ]; then
    printf '[malloc] tcmalloc not found (bash dev/setup.sh installs it): CPU training runs with glibc malloc, ~1.5x slower\n' >&2
  fi
fi
