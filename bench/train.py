"""Benchmark: training throughput of the default tokenizer, in one process and under torchrun (DDP).

    python bench/train.py [--steps 60] [--procs 1,2] [--batch-size 8] [--full-size] [--device auto] [--precision auto] [--compile]

For each process count it runs a real `mono3d train` (or `torchrun --standalone --nproc_per_node N -m
mono3d.train`) on the default 16x64x64 data for `--steps` steps of the per-process batch, with three
checkpoints and one validation, and prints what the run recorded in metrics.json: videos/s (all processes)
in the steps, the time per step split into waiting for data, forward+backward+optimizer, checkpoint writing
and validation, and the peak memory of rank 0 (GPU: max allocated; CPU: max resident set, and its batch
workers'). It times the default recipe (clips, then full-size videos); `--full-size` times full-size videos only.
"""
import argparse, json, os, platform, subprocess, sys, tempfile, time
from pathlib import Path
import torch


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--steps', type=int, default=60)
    ap.add_argument('--procs', default='1,2', help='process counts to run, comma separated (default: 1,2)')
    ap.add_argument('--batch-size', type=int, default=8, help='per-process batch (default: 8)')
    ap.add_argument('--full-size', action='store_true', help='full-size videos every step (no clips)')
    ap.add_argument('--device', default='auto')
    ap.add_argument('--precision', default='auto')
    ap.add_argument('--compile', action='store_true')
    ap.add_argument('--work', default=None, help='scratch directory (default: a temporary one)')
    a = ap.parse_args()
    work = Path(a.work or tempfile.mkdtemp(prefix='mono3d-bench-train-'))
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    print(f'machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, '
          f'GPU: {gpu or "none"}', flush=True)
    procs = [int(p) for p in a.procs.split(',')]
    val = 32
    rows = []
    for n in procs:
        G = a.batch_size * n
        num = 5000
        run = work / f'run-{n}proc'
        flags = ['--num-samples', str(num), '--val-samples', str(val), '--batch-size', str(a.batch_size), '--steps', str(a.steps),
                 '--ckpt-every-steps', str(max(1, a.steps // 3)), '--print-every', str(max(1, a.steps // 4)), '--val-every-steps', str(10 ** 6),
                 '--device', a.device, '--precision', a.precision, '--data-dir', str(work / f'data-{num}'), '--no-bar']
        if a.full_size: flags += ['--crop-size', '0', '--crop-frames', '0']
        if a.compile: flags.append('--compile')
        if not (work / f'data-{num}' / 'dataset.json').is_file():
            subprocess.run([sys.executable, '-m', 'mono3d.cli', 'generate', str(work / f'data-{num}'), '--num-samples', str(num), '--no-bar'],
                           check=True, capture_output=True)
        cmd = ([sys.executable, '-m', 'mono3d.train'] if n == 1 else
               [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', str(n), '-m', 'mono3d.train'])
        t0 = time.perf_counter()
        r = subprocess.run(cmd + [str(run)] + flags, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            print(r.stdout[-2000:], r.stderr[-3000:]); sys.exit(f'{n}-process run failed')
        m = json.loads((run / 'metrics.json').read_text()); t = m['timing']
        rows.append((n, G, t, wall, len(m['history']['checkpoints'])))
        ms = lambda s: 1000 * s / t['steps']
        print(f"{n} process(es), {t['threads']} thread(s) each, {t['device']} {t['precision']}"
              f"{' compiled' if t['compile'] else ''}: {t['videos_per_s']:.1f} videos/s in the steps over {t['steps']} steps; per step "
              f"waiting for data {ms(t['data_wait_s']):.1f} ms, forward+backward+optimizer {ms(t['step_s']):.1f} ms; "
              f"checkpoints {t['checkpoint_s']:.2f} s for {rows[-1][4]} ({1000 * t['checkpoint_s'] / max(rows[-1][4], 1):.0f} ms each), "
              f"validation {t['validation_s']:.1f} s; peak memory (rank 0) {t['rss_mb']:.0f} MB (+ batch workers {t['children_rss_mb']:.0f} MB)"
              + (f", GPU {t['gpu_mb']:.0f} MB" if 'gpu_mb' in t else '') + f"; command wall clock {wall:.0f} s", flush=True)
    if len(rows) > 1:
        base = rows[0][2]['videos_per_s']
        print('scaling: ' + ', '.join(f'{n} procs {t["videos_per_s"] / base:.2f}x' for n, _, t, _, _ in rows))


if __name__ == '__main__':
    main()
