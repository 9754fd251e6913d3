"""Benchmark: the whole CI, `.ci/run`, on N consecutive fresh clones of one commit; a flaky test shows as a failure.

    python bench/fresh_clones.py [--runs 10] [--repo .] [--commit HEAD] [--work /tmp/fresh-clones] [--out FILE]

Each run clones the repository afresh (`git clone`, then `git checkout COMMIT`), so it has no virtual environment,
no `runs/` and no build output, and runs `.ci/run` in it: a fresh virtual environment, the installs and the README's
test command, exactly what CI runs. It prints one line per run as it ends (exit code, wall time, pytest's summary
line) and at the end the runs, the failures and the consecutive passes. Failed runs keep their clone and full log
under `--work`; passed ones are removed. One run takes 16-21 minutes on the 2-core CPU, so 10 take about 3 hours.
"""
import argparse, platform, re, shutil, subprocess, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu


def one_run(repo: Path, commit: str, work: Path, i: int) -> tuple[int, float, str, Path]:
    "Clone, check out, run `.ci/run`; `(exit code, seconds, pytest summary, log path)`."
    clone, log = work / f'clone-{i:02d}', work / f'run-{i:02d}.log'
    shutil.rmtree(clone, ignore_errors=True)
    subprocess.run(['git', 'clone', '-q', str(repo), str(clone)], check=True)
    subprocess.run(['git', '-C', str(clone), 'checkout', '-q', commit], check=True)
    t0 = time.monotonic()
    with open(log, 'wb') as f: rc = subprocess.run(['.ci/run'], cwd=clone, stdout=f, stderr=subprocess.STDOUT).returncode
    took = time.monotonic() - t0
    text = log.read_text(errors='replace')
    summary = next((l.strip('= ') for l in reversed(text.splitlines()) if re.search(r'\d+ (passed|failed)', l)), 'no pytest summary')
    if rc == 0: shutil.rmtree(clone, ignore_errors=True)
    return rc, took, summary, log


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--runs', type=int, default=10)
    ap.add_argument('--repo', default='.')
    ap.add_argument('--commit', default='HEAD')
    ap.add_argument('--work', default='/tmp/fresh-clones')
    ap.add_argument('--out', default=None, help='also append every line to this file')
    a = ap.parse_args()
    if a.runs < 1: ap.error(f'--runs must be at least 1, got {a.runs}')
    repo = Path(a.repo).resolve()
    commit = subprocess.run(['git', '-C', str(repo), 'rev-parse', a.commit], capture_output=True, text=True, check=True).stdout.strip()
    work = Path(a.work); work.mkdir(parents=True, exist_ok=True)
    out = open(a.out, 'a') if a.out else None
    def say(line: str):
        print(line, flush=True)
        if out: out.write(line + '\n'); out.flush()
    say(f"# bench/fresh_clones.py  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    say(f'# machine: {cpu()}, Python {platform.python_version()}')
    say(f'# commit {commit[:10]}, {a.runs} consecutive fresh clones, each running .ci/run; work in {work}')
    failures, streak, best = 0, 0, 0
    for i in range(a.runs):
        rc, took, summary, log = one_run(repo, commit, work, i)
        failures += rc != 0
        streak = streak + 1 if rc == 0 else 0
        best = max(best, streak)
        say(f"run {i:2d}  {'ok  ' if rc == 0 else 'FAIL'}  rc {rc}  {took / 60:5.1f} min  {summary}" + ('' if rc == 0 else f'  (log: {log})'))
    say(f'runs {a.runs}, failures {failures}, longest run of consecutive passes {best}')
    sys.exit(1 if failures else 0)


if __name__ == '__main__': main()
