"""Benchmark: dataset generation, its per-stage split, and a seed-style reference, in one run.

    python bench/generate.py [--num-samples 20000] [--workers 1 2] [--frames 16] [--image-size 64] [--reference-samples 4000]

1. **Stages** (one process, one shard of `--checkpoint-interval` videos, the same functions and deflate level as
   `write_shard`): render, pack (the npy bytes), compress (raw deflate, level 1, as the zip entry), crc32 (the
   zip's check), hash (the manifest's sha256), write (file write and fsync). The next bound is the largest.
2. **End to end**: `generate_dataset` (render, compress, write, fsync, checksum, commit, the status page's
   description) for each worker count: samples/s and MB/s.
3. **Reference**: the seed project's way, as described in the issue: OpenCV per frame (anti-aliased), float32
   frames, one `np.savez_compressed` file per video, a pool of 2 processes. Needs `opencv-python-headless`
   (`pip install opencv-python-headless`); skipped with a note without it. The ratio is mono3d's best samples/s
   over the reference's, both measured here.
"""
import argparse, hashlib, io, multiprocessing as mp, os, platform, shutil, tempfile, time, zlib
from pathlib import Path
import numpy as np
from mono3d.data import DatasetConfig, RENDER_CHUNK, generate_dataset, render_videos, sample_metadata
from machine import cpu


def machine() -> str: return f'{cpu()}, Python {platform.python_version()}'


def stages(cfg: DatasetConfig, n: int, scratch: Path) -> dict:
    "Seconds of each stage of one shard of `n` videos, in one process."
    t = {}
    s = time.perf_counter(); meta = sample_metadata(cfg, range(n)); t['metadata'] = time.perf_counter() - s
    s = time.perf_counter(); chunks = [render_videos(cfg, meta, lo, min(n, lo + RENDER_CHUNK)) for lo in range(0, n, RENDER_CHUNK)]
    t['render'] = time.perf_counter() - s
    s = time.perf_counter()
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {'descr': '|u1', 'fortran_order': False, 'shape': (n, *chunks[0].shape[1:])})
    for c in chunks: buf.write(c.tobytes())
    for v in meta.values(): np.lib.format.write_array(buf, v, allow_pickle=False)
    raw = buf.getvalue(); t['pack'] = time.perf_counter() - s
    s = time.perf_counter(); z = zlib.compressobj(1, zlib.DEFLATED, -15); packed = z.compress(raw) + z.flush(); t['compress'] = time.perf_counter() - s
    s = time.perf_counter(); zlib.crc32(raw); t['crc32'] = time.perf_counter() - s
    s = time.perf_counter(); hashlib.sha256(packed).hexdigest(); t['sha256'] = time.perf_counter() - s
    s = time.perf_counter()
    with open(scratch / 'shard.bin', 'wb') as f: f.write(packed); f.flush(); os.fsync(f.fileno())
    t['write+fsync'] = time.perf_counter() - s
    t['_bytes'] = (len(raw), len(packed))
    return t


def _reference_video(args):
    "One video the seed project's way: float32 frames drawn by OpenCV, saved alone with savez_compressed."
    import cv2
    out, i, centres, radius, colour, background, size = args
    frames = np.empty((len(centres), size, size, 3), np.float32)
    for k, (x, y) in enumerate(centres):
        img = np.empty((size, size, 3), np.float32); img[:] = background
        cv2.circle(img, (int(round(x * 16)), int(round(y * 16))), int(round(radius * 16)), colour, -1, lineType=cv2.LINE_AA, shift=4)
        frames[k] = img
    np.savez_compressed(os.path.join(out, f'sample_{i:06d}.npz'), video=frames, centres=np.asarray(centres, np.float32))
    return i


def reference(cfg: DatasetConfig, n: int, scratch: Path) -> float | None:
    "Samples/s of the seed-style reference (None without OpenCV)."
    try: import cv2  # noqa: F401
    except ImportError: return None
    meta = sample_metadata(cfg, range(n))
    bg = tuple(float(c) / 255 for c in cfg.background)
    jobs = [(str(scratch), i, meta['centers_2d'][i, 0].tolist(), float(meta['radii_px'][i, 0].mean()),
             tuple(float(c) / 255 for c in meta['colours'][i]), bg, cfg.image_size) for i in range(n)]
    s = time.perf_counter()
    with mp.get_context('fork').Pool(2) as pool: list(pool.imap_unordered(_reference_video, jobs, chunksize=16))
    return n / (time.perf_counter() - s)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--num-samples', type=int, default=20_000)
    ap.add_argument('--checkpoint-interval', type=int, default=1000)
    ap.add_argument('--frames', type=int, default=16)
    ap.add_argument('--image-size', type=int, default=64)
    ap.add_argument('--workers', type=int, nargs='+', default=[1, 2])
    ap.add_argument('--reference-samples', type=int, default=4000, help='videos the reference makes (0: skip it)')
    ap.add_argument('--dir', default=None, help='scratch directory (default: a temporary one, removed after)')
    a = ap.parse_args()
    print(f'# bench/generate.py  {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}\n# {machine()}')
    cfg = DatasetConfig(frames=a.frames, image_size=a.image_size)
    root = Path(a.dir or tempfile.mkdtemp(prefix='mono3d-bench-')); root.mkdir(parents=True, exist_ok=True)
    st = stages(cfg, a.checkpoint_interval, root)
    raw, packed = st.pop('_bytes'); total = sum(st.values())
    print(f'\n## stages of one shard of {a.checkpoint_interval} videos, one process ({raw / 1e6:,.1f} MB raw, {packed / 1e6:,.2f} MB deflated)')
    print('| stage | s | share | videos/s alone |\n|---|---|---|---|')
    for k, v in st.items(): print(f'| {k} | {v:.3f} | {100 * v / total:.0f}% | {a.checkpoint_interval / max(v, 1e-9):,.0f} |')
    print(f'| all | {total:.3f} | 100% | {a.checkpoint_interval / total:,.0f} |')
    raw_mb, best = a.num_samples * a.frames * a.image_size ** 2 * 3 / 1e6, 0.0
    print(f'\n## end to end: generate_dataset, {a.num_samples} videos of {a.frames}x{a.image_size}x{a.image_size}')
    for w in a.workers:
        d = root / f'w{w}'; shutil.rmtree(d, ignore_errors=True)
        t0 = time.perf_counter()
        generate_dataset(d, a.num_samples, checkpoint_interval=a.checkpoint_interval, frames=a.frames,
                         image_size=a.image_size, workers=w, bar=False, quiet=True, progress_every=30)
        dt = time.perf_counter() - t0
        disk_mb = sum(p.stat().st_size for p in d.iterdir() if p.is_file()) / 1e6
        best = max(best, a.num_samples / dt)
        print(f'workers={w}: {dt:.2f} s -> {a.num_samples / dt:,.0f} samples/s, {raw_mb / dt:,.0f} MB/s of video, '
              f'{disk_mb / dt:,.1f} MB/s written ({disk_mb:,.1f} MB on disk)', flush=True)
        shutil.rmtree(d, ignore_errors=True)
    if a.reference_samples:
        ref_dir = root / 'reference'; ref_dir.mkdir(exist_ok=True)
        r = reference(cfg, a.reference_samples, ref_dir)
        if r is None: print('\nreference: skipped (pip install opencv-python-headless)')
        else: print(f'\n## reference (OpenCV per frame, float32, savez_compressed per video, pool of 2): {a.reference_samples} videos '
                    f'-> {r:,.1f} samples/s; mono3d best {best:,.0f} samples/s = {best / r:.1f}x')
        shutil.rmtree(ref_dir, ignore_errors=True)
    if a.dir is None: shutil.rmtree(root, ignore_errors=True)


if __name__ == '__main__':
    main()
