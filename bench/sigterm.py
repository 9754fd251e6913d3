"""Benchmark: seconds from SIGTERM to exit, for every phase of every job (the target: under 10 s, what container
runtimes wait before SIGKILL).

    python bench/sigterm.py [--work DIR] [--repeat 2]

Each case starts the real command (`python -m mono3d.cli ...`), waits until the job is in the phase named, sends
SIGTERM, and measures the time until the process has exited; it also checks the exit code (143) and that the
progress file says PREEMPTED. Phases:

- generate, 2 workers, shards of 2,000 16x64x64 videos in flight;
- train: while it generates its default dataset; in a clip step; in a full-size step; in a validation of 256
  held-out 16x64x64 videos;
- evaluate: while it trains a classification head.
"""
import argparse, json, os, platform, signal, subprocess, sys, tempfile, time
from pathlib import Path


def cli(*args): return [sys.executable, '-m', 'mono3d.cli', *map(str, args)]


def progress(d):
    try: return json.loads((Path(d) / 'progress.json').read_text())
    except (FileNotFoundError, ValueError): return {}


def wait(pred, timeout=600):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred(): return True
        time.sleep(0.05)
    raise SystemExit('timed out waiting for the phase')


def stop(proc, where) -> tuple[float, int, str]:
    t0 = time.monotonic(); proc.send_signal(signal.SIGTERM); proc.wait(120)
    return time.monotonic() - t0, proc.returncode, progress(where).get('status')


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--work', default=None, help='scratch directory (default: a temporary one)')
    ap.add_argument('--repeat', type=int, default=2)
    a = ap.parse_args()
    work = Path(a.work or tempfile.mkdtemp(prefix='mono3d-bench-sigterm-'))
    print(f'machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}', flush=True)
    data = work / 'data'
    subprocess.run(cli('generate', data, '--num-samples', 600, '--no-bar'), check=True, capture_output=True)
    small = ['--channels', 8, '--channel-mults', '1,2,2', '--no-bar', '--progress-every', 0.1]
    rows = []

    def case(name, cmd, where, ready):
        for k in range(a.repeat):
            d = Path(str(where).replace('{k}', str(k)))
            p = subprocess.Popen(cli(*[str(c).replace('{k}', str(k)) for c in cmd]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait(lambda: ready(d, p))
            dt, code, status = stop(p, d)
            rows.append((name, dt, code, status))
            print(f'{name:<52s} {dt:6.2f} s  exit {code}  {status}', flush=True)

    case('generate: 2 workers, 2,000-video shards in flight', ['generate', work / 'gen{k}', '--num-samples', 40000,
         '--checkpoint-interval', 2000, '--workers', 2, '--no-bar'], work / 'gen{k}',
         lambda d, p: progress(d).get('pid') == p.pid and time.sleep(1.5) is None)
    case('train: generating its default dataset', ['train', work / 'tg{k}', '--num-samples', 40000, *small], work / 'tg{k}' / 'data',
         lambda d, p: progress(d).get('pid') == p.pid and progress(d).get('done', 0) >= 1000)
    base = ['--data-dir', data, '--num-samples', 600, *small]
    case('train: in a clip step', ['train', work / 'tc{k}', *base, '--epochs', 100], work / 'tc{k}',
         lambda d, p: progress(d).get('job') == 'train' and progress(d).get('done', 0) >= 5)
    case('train: in a full-size step', ['train', work / 'tf{k}', *base, '--epochs', 100, '--full-size-fraction', 1.0],
         work / 'tf{k}', lambda d, p: progress(d).get('job') == 'train' and progress(d).get('done', 0) >= 3)
    case('train: validating 256 held-out 16x64x64 videos', ['train', work / 'tv{k}', *base, '--val-samples', 256, '--epochs', 100,
         '--val-every-steps', 3, '--crop-batch-size', 4, '--batch-size', 2], work / 'tv{k}',
         lambda d, p: progress(d).get('job') == 'train' and progress(d).get('done', 0) >= 3 and time.sleep(1.0) is None)
    tok = work / 'tok'
    subprocess.run(cli('train', tok, *base, '--epochs', 1), check=True, capture_output=True)
    case('evaluate: training a classification head', ['evaluate', tok, '--out-dir', work / 'ev{k}', '--num-samples', 2000,
         '--head-epochs', 50], work / 'ev{k}', lambda d, p: progress(d).get('done', 0) >= 2 and time.sleep(2.0) is None)
    worst = max(dt for _, dt, _, _ in rows)
    print(f'worst: {worst:.2f} s; all exit 143 and PREEMPTED: {all(c == 143 and s == "PREEMPTED" for _, _, c, s in rows)}')


if __name__ == '__main__':
    main()
