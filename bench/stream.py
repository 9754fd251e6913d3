"""Benchmark: training reads its videos from the shards on demand. Peak memory must not grow with the dataset, and
the step speed must not suffer.

    python bench/stream.py [--sizes 5000,50000] [--steps 60] [--workers 0,1] [--work DIR]

Generates one dataset of max(--sizes) default 16x64x64 videos (resumable, so a second run reuses it), then for
each size and batch-worker count runs a real `mono3d train` of the default tokenizer for `--steps` steps with
the default recipe (clips, then full-size videos) and prints what the run recorded in metrics.json: peak
resident memory of the training process and of its batch workers, videos per second in the training steps,
and the time spent waiting for data. `--full-size` times full-size videos only (the path that the README's
earlier in-memory figures were measured on).
"""
import argparse, json, os, platform, subprocess, sys, tempfile, time
from pathlib import Path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--sizes', default='5000,50000', help='num_samples of the runs, comma separated')
    ap.add_argument('--steps', type=int, default=60)
    ap.add_argument('--workers', default='0,1', help='batch worker processes, comma separated')
    ap.add_argument('--full-size', action='store_true', help='full-size videos every step (no clips)')
    ap.add_argument('--work', default=None, help='scratch directory (default: a temporary one)')
    a = ap.parse_args()
    sizes, workers = [int(s) for s in a.sizes.split(',')], [int(w) for w in a.workers.split(',')]
    work = Path(a.work or tempfile.mkdtemp(prefix='mono3d-bench-stream-'))
    print(f'machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}', flush=True)
    data = work / 'data'
    t0 = time.perf_counter()
    subprocess.run([sys.executable, '-m', 'mono3d.cli', 'generate', str(data), '--num-samples', str(max(sizes)), '--no-bar'],
                   check=True, capture_output=True)
    print(f'dataset: {max(sizes)} videos in {data} ({sum(p.stat().st_size for p in data.glob("*.npz")) / 2**20:.0f} MB on disk), '
          f'ready in {time.perf_counter() - t0:.0f} s', flush=True)
    extra = ['--crop-size', '0', '--crop-frames', '0'] if a.full_size else []
    for n in sizes:
        for w in workers:
            run = work / f'run-{n}-w{w}'
            cmd = [sys.executable, '-m', 'mono3d.train', str(run), '--data-dir', str(data), '--num-samples', str(n),
                   '--steps', str(a.steps), '--workers', str(w), '--val-every-steps', str(10 ** 6), '--no-bar', *extra]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0: sys.exit(f'run failed:\n{r.stderr[-3000:]}')
            t = json.loads((run / 'metrics.json').read_text())['timing']
            steps = t['steps']
            print(f'{n:>7,} videos, {w} batch worker(s): peak RSS training process {t["rss_mb"]:,.0f} MB, batch workers '
                  f'{t["children_rss_mb"]:,.0f} MB; {t["videos_per_s"]:.1f} videos/s in steps '
                  f'({1000 * t["step_s"] / steps:.0f} ms/step), waiting for data {1000 * t["data_wait_s"] / steps:.1f} ms/step', flush=True)


if __name__ == '__main__':
    main()
