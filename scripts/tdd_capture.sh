#!/usr/bin/env bash
# Record TDD evidence: scripts/tdd_capture.sh red|green|refactor [pytest args...]
#   Writes artifacts/tdd_<phase>.txt (or artifacts/tdd_<TDD_NAME>_<phase>.txt when TDD_NAME is set) with
#   provenance (UTC time, git commit + dirty flag, branch, Python/torch/numpy versions, host, the exact
#   command), the full pytest output and its exit code.
#   red must end with failing tests (else this script exits 1 saying so); green/refactor must pass.
set -u
phase=${1:-}
case "$phase" in red|green|refactor) shift ;;
  *) echo "usage: scripts/tdd_capture.sh red|green|refactor [pytest args...] (phase must be red, green or refactor, got '${phase}')" >&2; exit 2 ;;
esac
root=$(git rev-parse --show-toplevel 2>/dev/null || pwd)
cd "$root" || exit 2
py=${PYTHON:-python}
[ $# -eq 0 ] && set -- tests
name=${TDD_NAME:+${TDD_NAME}_}
out="${TDD_OUT_DIR:-artifacts}/tdd_${name}${phase}.txt"
mkdir -p "$(dirname "$out")"
dirty=no; [ -n "$(git status --porcelain 2>/dev/null)" ] && dirty=yes
{
  echo "# TDD evidence: ${phase}"
  echo "utc_time: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "git_commit: $(git rev-parse HEAD 2>/dev/null || echo none)"
  echo "git_dirty: ${dirty}"
  echo "git_branch: $(git rev-parse --abbrev-ref HEAD 2>/dev/null || echo none)"
  echo "host: $(hostname) ($(uname -srm), $(nproc) cores)"
  "$py" -c 'import sys, platform
try:
    import torch; tv = torch.__version__
except Exception as e: tv = f"not importable ({e.__class__.__name__})"
try:
    import numpy; nv = numpy.__version__
except Exception: nv = "not importable"
print(f"python: {platform.python_version()} ({sys.executable})"); print(f"torch: {tv}"); print(f"numpy: {nv}")'
  echo "command: $py -m pytest $*"
  echo "----- pytest output -----"
} > "$out"
"$py" -m pytest "$@" >> "$out" 2>&1
rc=$?
echo "----- end of pytest output -----" >> "$out"
echo "pytest_exit_code: $rc" >> "$out"
echo "wrote $out (pytest exit code $rc)"
if [ "$phase" = red ]; then
  if [ $rc -eq 0 ]; then echo "red phase expected failing tests, but pytest passed: write the test before the implementation" >&2; exit 1; fi
  exit 0
fi
exit $rc
