"""Benchmark: what the canonical gradient order costs, against the all-reduce, at 1 and 2 processes.

    python bench/elastic.py [--steps 24] [--micro-batches 8] [--work DIR]

Trains the default tokenizer on the default video size for `--steps` steps with the same global batch (32 clips,
then 8 full videos) three ways, on 1 process (`mono3d train`) and on 2 (`torchrun`, gloo), one thread per process:

- `ddp`: `--micro-batches 0`, one micro-batch per process, DistributedDataParallel's all-reduce (the default);
- `allreduce`: `--micro-batches K --grad-order allreduce`, K micro-batches, each process adds its own, one all-reduce;
- `canonical`: `--micro-batches K`, the flat per-micro-batch gradients all-gathered and added in micro-batch order.

It prints the mean seconds of a first-phase (clip) step, the seconds spent combining gradients (all-gather or
all-reduce, from metrics.json's `combine_s`), the peak memory, and each run's weights hash (canonical at W=1 and
W=2 must be equal).
"""
import argparse, hashlib, json, os, platform, subprocess, sys, tempfile, time
from pathlib import Path
from machine import cpu


def run(cmd, env):
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0: sys.exit(f'failed ({r.returncode}): {" ".join(cmd)}\n{r.stderr[-3000:]}')
    return time.time() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--steps', type=int, default=24)
    ap.add_argument('--micro-batches', type=int, default=8)
    ap.add_argument('--work', default=None)
    a = ap.parse_args()
    work = Path(a.work or tempfile.mkdtemp(prefix='mono3d-elastic-'))
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1'}
    print(f'# bench/elastic.py  {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}\n# machine: {cpu()}, Python {platform.python_version()}\n'
          f'# default tokenizer, 16x64x64 videos, {a.steps} steps, global batch 32 clips of 8x24x24 then 8 full videos, 1 thread per process',
          flush=True)
    data = work / 'data'
    run([sys.executable, '-m', 'mono3d.cli', 'generate', str(data), '--num-samples', '400', '--no-bar'], env)
    k = a.micro_batches
    common = ['--data-dir', str(data), '--num-samples', '400', '--val-samples', '16', '--steps', str(a.steps), '--threads', '1',
              '--val-every-steps', '100000', '--ckpt-every-steps', '100000', '--no-bar', '--print-every', '1000']
    modes = {'ddp': lambda w: ['--micro-batches', '0', '--crop-batch-size', str(32 // w), '--batch-size', str(8 // w)],
             'allreduce': lambda w: ['--micro-batches', str(k), '--grad-order', 'allreduce', '--crop-batch-size', str(32 // k),
                                     '--batch-size', str(max(1, 8 // k))],
             'canonical': lambda w: ['--micro-batches', str(k), '--crop-batch-size', str(32 // k), '--batch-size', str(max(1, 8 // k))]}
    print('\n| processes | gradients | clip step s | combine s/step | wall s | peak RSS MB (rank 0) | weights sha256 |\n|---|---|---|---|---|---|---|', flush=True)
    for w in (1, 2):
        for name, flags in modes.items():
            d = work / f'{name}_w{w}'
            launch = ([sys.executable, '-m', 'mono3d.cli', 'train'] if w == 1 else
                      [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', str(w), '-m', 'mono3d.train'])
            wall = run([*launch, str(d), *common, *flags(w)], env)
            m = json.loads((d / 'metrics.json').read_text())
            t, clip = m['timing'], m['timing']['phases'].get('clip', {})
            step_s = clip.get('seconds', 0) / max(1, clip.get('steps', 1))
            h = hashlib.sha256((d / 'tokenizer.safetensors').read_bytes()).hexdigest()[:12]
            print(f'| {w} | {name} | {step_s:.3f} | {t.get("combine_s", 0.0) / max(1, t["steps"]):.4f} | {wall:.0f} | {t["rss_mb"]:.0f} | {h} |', flush=True)


if __name__ == '__main__': main()
