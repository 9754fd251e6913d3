#!/usr/bin/env bash
# The whole test suite, as the README's test command runs it (and CI through .ci/run):
#   1. nbdev_clean and nbdev_export, then check that they changed nothing (notebooks are clean and are the source of mono3d/)
#   2. README.md in sync with nbs/index.ipynb, and ruff: no unused imports or variables (F401, F841)
#   3. nbdev_test: every notebook in nbs/ runs as a test
#   4. pytest: the long-running-process suite on real runs (slow tests included), spread over two pytest-xdist workers,
#      one test file per worker (extra arguments go to pytest; `-n 0` runs it in one process)
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== nbdev_clean + nbdev_export (sync check)"
nbdev_clean
nbdev_export
drift=$(git status --porcelain -- mono3d nbs settings.ini 2>/dev/null || true)
if [ -n "$drift" ]; then
  echo "nbdev_clean/nbdev_export changed files: clean and export the notebooks, commit both" >&2
  echo "$drift" >&2; git --no-pager diff --stat -- mono3d >&2 || true; exit 1
fi
echo "== README.md from nbs/index.ipynb"
python scripts/make_readme.py --check
echo "== ruff (unused imports and variables)"
ruff check --select F401,F841 mono3d tests bench scripts
echo "== nbdev_test"
nbdev_test --n_workers 2 --do_print --flags slow
echo "== pytest"
set +e
python -m pytest -n 2 --dist loadfile "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi
exit $rc
