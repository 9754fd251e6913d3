"""Benchmark: end-to-end dataset generation (render + compress + write + fsync + checksum + commit).

    python bench/generate.py [--num-samples 20000] [--workers 1 2] [--frames 16] [--image-size 64]

Prints samples/s and MB/s (raw video bytes produced per second, and bytes written to disk per second)
for each worker count. Target (issue 2): >= 2,000 samples/s for 20,000 samples of 16x64x64 RGB on the
2-core machine.
"""
import argparse, os, platform, shutil, tempfile, time
from pathlib import Path
from mono3d.data import generate_dataset


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--num-samples', type=int, default=20_000)
    ap.add_argument('--checkpoint-interval', type=int, default=1000)
    ap.add_argument('--frames', type=int, default=16)
    ap.add_argument('--image-size', type=int, default=64)
    ap.add_argument('--workers', type=int, nargs='+', default=[1, 2])
    ap.add_argument('--dir', default=None, help='scratch directory (default: a temporary one, removed after)')
    a = ap.parse_args()
    print(f'machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}')
    raw_mb = a.num_samples * a.frames * a.image_size ** 2 * 3 / 1e6
    for w in a.workers:
        d = Path(a.dir or tempfile.mkdtemp(prefix='mono3d-bench-')) / f'w{w}'
        shutil.rmtree(d, ignore_errors=True)
        t0 = time.perf_counter()
        generate_dataset(d, a.num_samples, checkpoint_interval=a.checkpoint_interval, frames=a.frames,
                         image_size=a.image_size, workers=w, bar=False, progress_every=30)
        dt = time.perf_counter() - t0
        disk_mb = sum(p.stat().st_size for p in d.iterdir()) / 1e6
        print(f'generate workers={w}: {a.num_samples} samples of {a.frames}x{a.image_size}x{a.image_size} in {dt:.2f} s '
              f'-> {a.num_samples / dt:,.0f} samples/s, {raw_mb / dt:,.0f} MB/s of video, {disk_mb / dt:,.1f} MB/s written '
              f'({disk_mb:,.1f} MB on disk, {raw_mb / disk_mb:,.0f}x smaller than raw)', flush=True)
        shutil.rmtree(d.parent if a.dir is None else d, ignore_errors=True)


if __name__ == '__main__':
    main()
