"""Benchmark: the tokenizer's quality and speed, measured on runs of `mono3d train` itself (one training loop).

    python bench/tokenizer.py [RUN_DIR] [--minutes M | --steps N] [-- any mono3d train flags]
    python bench/tokenizer.py --speed-only [--compile] [--levers NAMES] [--batches 4,8,16] [--batch-size 8] [--clip-batch-size 32]
    python bench/tokenizer.py --eval-only RUN_DIR

The default mode runs `mono3d train RUN_DIR` (default `runs/bench-tokenizer`) with the training defaults and the
budget given (`--minutes`: the cosine schedule is sized at the start from the measured step time, and recorded so
that a resume is exact; or `--steps`; neither: the default epochs), then reads what the run recorded and prints the
held-out figures against the targets (PSNR >= blank + 12 dB, SSIM >= 0.97, centroid error <= 1 px, codebook usage
>= 60 %, perplexity >= 100), the time per phase, and where the remaining error is. Running it again resumes the run.

`--speed-only` times the training step of the default tokenizer in one process, each lever both ways on the same
random clips: fp32 against bf16 autocast, channels_last_3d against contiguous, torch.compile against eager, and
batch sizes; for the clip steps and the full-size steps of the default recipe.

`--eval-only RUN_DIR` measures a run's final weights on its held-out videos and says where the error is: squared
error in the background, the object's edge band and its interior. Its held-out line is the one `mono3d train` prints,
which gives the perplexity of the tokens that touch the object apart from the others'.
"""
import argparse, json, os, platform, subprocess, sys, time
from pathlib import Path
import torch
import torch.nn.functional as F

TARGETS = {'psnr_over_blank': (12.0, 'PSNR >= blank + 12 dB'), 'ssim': (0.97, 'SSIM >= 0.97'), 'centroid_err_px': (1.0, 'centroid <= 1 px'),
           'codebook_usage': (0.6, 'usage >= 60%'), 'perplexity': (100.0, 'perplexity >= 100')}


def machine() -> str:
    return (f'{platform.node()} {platform.machine()} ({_cpu()}), {os.cpu_count()} cores, torch {torch.__version__}, '
            f'{torch.get_num_threads()} threads')


def _cpu() -> str:
    try: return next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except (OSError, StopIteration): return platform.processor() or 'unknown CPU'


def targets(m: dict) -> dict:
    return {text: (m[k] <= lim if k == 'centroid_err_px' else m[k] >= lim) for k, (lim, text) in TARGETS.items()}


def speed(a) -> None:
    from mono3d.tokenizer import VideoTokenizer, TokenizerConfig
    from mono3d.loss import ReconstructionLoss
    from mono3d.recipe import tokenizer_step
    print(f'machine: {machine()}', flush=True)
    lf = ReconstructionLoss(10.0)
    def time_steps(shape, cl=False, amp=None, compile=False, n=5):
        torch.manual_seed(0)
        tok = VideoTokenizer(TokenizerConfig())
        if cl: tok = tok.to(memory_format=torch.channels_last_3d)
        model = torch.compile(tok, dynamic=False) if compile else tok
        opt = torch.optim.AdamW(tok.parameters(), lr=1e-3)
        x = torch.rand(*shape)
        if cl: x = x.contiguous(memory_format=torch.channels_last_3d)
        t0 = time.perf_counter()
        for _ in range(2): tokenizer_step(model, lf, opt, None, x, autocast=amp)
        warm = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(n): tokenizer_step(model, lf, opt, None, x, autocast=amp)
        return (time.perf_counter() - t0) / n, warm
    shapes = {'clip step': (a.clip_batch_size, 3, 8, 24, 24), 'full-size step': (a.batch_size, 3, 16, 64, 64)}
    levers = [('fp32, contiguous', {}), ('fp32, channels_last_3d', {'cl': True}), ('bf16 autocast, contiguous', {'amp': torch.bfloat16}),
              ('bf16 autocast, channels_last_3d', {'amp': torch.bfloat16, 'cl': True})]
    if a.compile: levers += [('fp32, channels_last_3d, torch.compile', {'cl': True, 'compile': True})]
    if a.levers:
        keep = [k.strip() for k in a.levers.split(',')]
        levers = [(n, kw) for n, kw in levers if any(k in n for k in keep)]
    for name, shape in shapes.items():
        for lever, kw in levers:
            dt, warm = time_steps(shape, **kw)
            print(f'{name} {tuple(shape)}: {lever:<40s} {dt:.3f} s/step, {shape[0] / dt:6.1f} videos/s  (first two steps {warm:.1f} s)', flush=True)
    for b in [int(b) for b in a.batches.split(',') if b]:
        dt, _ = time_steps((b, 3, 16, 64, 64), cl=True)
        print(f'full-size step, batch {b:>2}, fp32 channels_last_3d: {dt:.3f} s/step, {b / dt:.1f} videos/s', flush=True)


def diagnose(run: Path) -> None:
    "Where the held-out error is, for a run's final weights."
    from mono3d.tokenizer import VideoTokenizer
    from mono3d.data import ShardIndex, videos_to_float
    from mono3d.loss import foreground_mask, MetricSums, format_metrics
    from mono3d.train import split_ids, read_videos, TrainConfig
    rec = json.loads((run / 'run.json').read_text())
    cfg = TrainConfig.from_dict({**rec['config'], 'job': {}})
    tok = VideoTokenizer.load(run / 'tokenizer.safetensors').eval()
    _, val = split_ids(cfg.data.num_samples, cfg.data.val_samples)
    videos = read_videos(ShardIndex(rec['data_dir']), val)
    parts, area = dict.fromkeys(('background', 'edge band', 'interior'), 0.0), dict.fromkeys(('background', 'edge band', 'interior'), 0)
    sums = MetricSums(tok.codebook_size)
    with torch.no_grad():
        for i in range(0, len(videos), 16):
            x = videos_to_float(videos[i:i + 16]); r, c, _ = tok(x); sums.add(r, x, c)
            fg = foreground_mask(x)
            grown = F.max_pool3d(fg.float(), (1, 3, 3), 1, (0, 1, 1)) > 0
            interior = fg & ~(F.max_pool3d((~fg).float(), (1, 3, 3), 1, (0, 1, 1)) > 0)
            err = (r.clamp(0, 1) - x).square().mean(1, keepdim=True)
            for k, m in (('background', ~grown), ('edge band', grown & ~interior), ('interior', interior)):
                parts[k] += float(err[m].sum()); area[k] += int(m.sum())
    print(f'held-out ({len(videos)} videos): {format_metrics(sums.result())}')
    total = sum(parts.values())
    print('error by region (share of squared error, share of pixels): ' + ', '.join(
        f'{k} {100 * v / total:.1f}% of error on {100 * area[k] / sum(area.values()):.1f}% of pixels' for k, v in parts.items()))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('run_dir', nargs='?', default='runs/bench-tokenizer')
    ap.add_argument('--minutes', type=float, default=None, help='training budget in minutes (mono3d train --minutes)')
    ap.add_argument('--steps', type=int, default=None, help='training budget in steps (mono3d train --steps)')
    ap.add_argument('--speed-only', action='store_true', help='only time the training step, each lever both ways')
    ap.add_argument('--compile', action='store_true', help='with --speed-only: also time torch.compile (slow to warm up)')
    ap.add_argument('--levers', default=None, help="with --speed-only: time only the levers whose name contains one of these "
                    "(comma separated, e.g. 'torch.compile'; 'none' for none)")
    ap.add_argument('--batches', default='4,8,16', help="with --speed-only: full-size batch sizes to time ('' for none)")
    ap.add_argument('--batch-size', type=int, default=8)
    ap.add_argument('--clip-batch-size', type=int, default=32)
    ap.add_argument('--eval-only', action='store_true', help="only measure RUN_DIR's final weights and where the error is")
    a, extra = ap.parse_known_args()
    if extra[:1] == ['--']: extra = extra[1:]
    if a.speed_only: return speed(a)
    run = Path(a.run_dir)
    if not a.eval_only:
        print(f'machine: {machine()}', flush=True)
        cmd = [sys.executable, '-m', 'mono3d.train', str(run), '--no-bar', '--print-every', '500', *extra]
        if a.minutes: cmd += ['--minutes', str(a.minutes)]
        if a.steps: cmd += ['--steps', str(a.steps)]
        print('$ ' + ' '.join(cmd[2:]), flush=True)
        t0 = time.perf_counter()
        r = subprocess.run(cmd)
        if r.returncode != 0: sys.exit(f'mono3d train exited with {r.returncode}')
        print(f'wall clock of the command: {(time.perf_counter() - t0) / 60:.1f} min', flush=True)
    m = json.loads((run / 'metrics.json').read_text())
    t, final = m['timing'], m['final']
    for name, ph in t['phases'].items():
        print(f"  {name} steps: {ph['steps']} of {ph['shape']}, {ph['seconds'] / 60:.1f} min, {ph['seconds'] / ph['steps']:.3f} s/step, "
              f"{ph['videos'] / ph['seconds']:.1f} videos/s")
    print(f"  steps {t['step_s'] / 60:.1f} min, validation {t['validation_s'] / 60:.1f} min, checkpoints {t['checkpoint_s']:.0f} s, "
          f"waiting for data {t['data_wait_s']:.0f} s; peak memory {t['rss_mb']:.0f} MB (+ batch workers {t['children_rss_mb']:.0f} MB)")
    print(f"held-out: PSNR {final['psnr']:.2f} dB (blank {final['blank_psnr']:.2f}, {final['psnr_over_blank']:+.2f}), fg PSNR "
          f"{final['fg_psnr']:.2f} dB, SSIM {final['ssim']:.4f}, centroid {final['centroid_err_px']:.3f} px, usage "
          f"{100 * final['codebook_usage']:.1f}%, perplexity {final['perplexity']:.1f} ({m['weights']}, step {m['steps']})")
    print('targets: ' + ', '.join(f'{k}: {"met" if v else "NOT met"}' for k, v in targets(final).items()))
    diagnose(run)


if __name__ == '__main__':
    main()
