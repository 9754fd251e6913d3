"""Benchmark: train the default video tokenizer on the default generated data for a fixed budget, then
measure it on held-out videos.

    python bench/tokenizer.py [--minutes 20 | --steps N] [--train-samples 4000] [--held-out 256] [--batch-size 8]
                              [--crop-size 32] [--crop-batch-size 16] [--full-fraction 0.1]
                              [--lr 3e-3] [--fg-weight 10] [--data DIR] [--out DIR] [--speed-only]

Training recipe: object-centred 32x32 crops (all 16 frames, `mono3d.loss.object_crops`), 16 per step, for
the first 90 % of the steps, then full 64x64 videos, 8 per step (`--crop-size 0`: full videos throughout).

Prints: training-step speed (samples/s), then held-out PSNR next to the blank-frame PSNR, foreground
PSNR, SSIM, centroid error, codebook usage and perplexity, and the time used. Targets (issue 3): PSNR
>= blank + 12 dB, SSIM >= 0.97, centroid error <= 1 px, codebook usage >= 60 %, perplexity >= 100;
training step >= 4 samples/s on the 2-core CPU.
"""
import argparse, json, os, platform, time
from pathlib import Path
import numpy as np
import torch
import torch.nn.functional as F
from mono3d.data import generate_dataset, load_dataset, videos_to_float
from mono3d.tokenizer import VideoTokenizer, TokenizerConfig
from mono3d.loss import object_crops, foreground_mask, perplexity, ReconstructionLoss, tokenizer_step, warmup_cosine, reconstruction_metrics, format_metrics


def evaluate(tok, videos, batch=32):
    tok.eval(); rs, cs = [], []
    with torch.no_grad():
        for i in range(0, len(videos), batch):
            x = videos_to_float(videos[i:i + batch]); r, c, _ = tok(x); rs.append(r); cs.append(c)
    return reconstruction_metrics(torch.cat(rs), videos_to_float(videos), torch.cat(cs), tok.codebook_size)


def diagnose(tok, videos, batch=32):
    """Where the held-out error is and which tokens carry information: squared error split into background
    (more than 1 px from the object), the object's edge band (1 px either side of its outline) and its interior;
    perplexity of the tokens whose 4x4x4 cell touches the object and of the others."""
    tok.eval(); parts, codes_fg, codes_bg = {'background': 0.0, 'edge band': 0.0, 'interior': 0.0}, [], []
    area = dict.fromkeys(parts, 0)
    with torch.no_grad():
        for i in range(0, len(videos), batch):
            x = videos_to_float(videos[i:i + batch]); r, c, _ = tok(x)
            fg = foreground_mask(x)
            grown = F.max_pool3d(fg.float(), (1, 3, 3), 1, (0, 1, 1)) > 0
            interior = fg & ~(F.max_pool3d((~fg).float(), (1, 3, 3), 1, (0, 1, 1)) > 0)
            err = (r.clamp(0, 1) - x).square().mean(1, keepdim=True)
            for k, m in (('background', ~grown), ('edge band', grown & ~interior), ('interior', interior)):
                parts[k] += float(err[m].sum()); area[k] += int(m.sum())
            touch = F.max_pool3d(fg.float(), tok.factors)[:, 0] > 0
            codes_fg.append(c[touch]); codes_bg.append(c[~touch])
    total = sum(parts.values())
    print('error by region (share of squared error, share of pixels): ' + ', '.join(
        f'{k} {100 * v / total:.1f}% of error on {100 * area[k] / sum(area.values()):.1f}% of pixels' for k, v in parts.items()))
    cf, cb = torch.cat(codes_fg), torch.cat(codes_bg)
    print(f'tokens touching the object: {100 * len(cf) / (len(cf) + len(cb)):.1f}%, perplexity {perplexity(cf, tok.codebook_size):.1f}; '
          f'other tokens: perplexity {perplexity(cb, tok.codebook_size):.1f}')


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--minutes', type=float, default=20.0, help='training budget in wall-clock minutes')
    ap.add_argument('--steps', type=int, default=None, help='training budget in steps instead of minutes (the result then does not '
                    'depend on what else the machine is doing)')
    ap.add_argument('--train-samples', type=int, default=4000)
    ap.add_argument('--held-out', type=int, default=256)
    ap.add_argument('--batch-size', type=int, default=8)
    ap.add_argument('--crop-size', type=int, default=32, help='object-centred crop size for the crop phase (0: no crops)')
    ap.add_argument('--crop-batch-size', type=int, default=16, help='crops per step in the crop phase')
    ap.add_argument('--full-fraction', type=float, default=0.1, help='fraction of the steps (or minutes) trained on full videos at the end')
    ap.add_argument('--lr', type=float, default=3e-3)
    ap.add_argument('--fg-weight', type=float, default=10.0)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--eval-every', type=int, default=500, help='steps between held-out[:64] checks')
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    ap.add_argument('--data', default='runs/bench-data', help='dataset directory (generated if missing; resumable)')
    ap.add_argument('--out', default='runs/bench-tokenizer', help='where the trained weights and metrics go')
    ap.add_argument('--speed-only', action='store_true', help='only time 10 training steps')
    ap.add_argument('--eval-only', metavar='WEIGHTS', default=None, help='only measure saved weights (tokenizer.safetensors) on the held-out videos')
    a = ap.parse_args()
    if not 0 <= a.full_fraction <= 1: ap.error(f'--full-fraction must be a number in [0, 1], got {a.full_fraction}')
    if a.crop_size < 0 or a.crop_size % 4: ap.error(f'--crop-size must be 0 (no crops) or a multiple of the spatial factor 4, got {a.crop_size}')
    torch.set_num_threads(a.threads); torch.manual_seed(a.seed)
    dev = 'cuda' if torch.cuda.is_available() else 'cpu'
    print(f'machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} '
          f'({torch.get_num_threads()} threads), device {dev}' + (f' ({torch.cuda.get_device_name()})' if dev == 'cuda' else ''), flush=True)
    tok = VideoTokenizer(TokenizerConfig()).to(dev)
    print(f'tokenizer: {sum(p.numel() for p in tok.parameters()):,} parameters, grid {tok.token_grid(16, 64, 64)}, '
          f'{tok.codebook_size} codes, {tok.bits_per_video():.0f} bits/video, compression {tok.compression_ratio():.0f}:1', flush=True)
    opt = torch.optim.AdamW(tok.parameters(), lr=a.lr, betas=(0.9, 0.99), weight_decay=0.0)
    loss_fn = ReconstructionLoss(fg_weight=a.fg_weight)

    if a.speed_only:
        x = torch.rand(a.batch_size, 3, 16, 64, 64, device=dev)
        for _ in range(2): tokenizer_step(tok, loss_fn, opt, None, x)
        t0 = time.perf_counter()
        for _ in range(10): tokenizer_step(tok, loss_fn, opt, None, x)
        if dev == 'cuda': torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        print(f'training step: batch {a.batch_size} of 16x64x64, {dt / 10:.3f} s/step, {10 * a.batch_size / dt:.2f} samples/s')
        return

    n = a.train_samples + a.held_out
    if a.eval_only:
        tok = VideoTokenizer.load(a.eval_only)
        generate_dataset(a.data, n, bar=False); ds = load_dataset(a.data)
        held = torch.from_numpy(np.stack([ds.video_uint8(i) for i in range(a.train_samples, n)]))
        print(f'held-out ({len(held)} videos, ids {a.train_samples}..{n - 1}): {format_metrics(evaluate(tok, held))}')
        diagnose(tok, held)
        return
    t_gen = time.perf_counter()
    generate_dataset(a.data, n, bar=False)
    ds = load_dataset(a.data)
    videos = torch.from_numpy(np.stack([ds.video_uint8(i) for i in range(n)]))
    train, held = videos[:a.train_samples], videos[a.train_samples:]       # held-out split by sample id
    print(f'data: {a.train_samples} training + {a.held_out} held-out videos (ids {a.train_samples}..{n - 1}) '
          f'ready in {time.perf_counter() - t_gen:.1f} s', flush=True)

    # the cosine schedule is sized to the budget from the speed of the first 20 real steps (warm-up runs meanwhile)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(100, a.steps or 10 ** 9, 0.05))
    g, gc = torch.Generator().manual_seed(a.seed), torch.Generator().manual_seed(a.seed + 1)
    t0, step, seen, t_train = time.perf_counter(), 0, 0, 0.0
    phase = {True: [0, 0.0, 0], False: [0, 0.0, 0]}   # crop phase / full phase: steps, seconds, samples
    def cropping():   # the crop phase: all but the last full_fraction of the budget
        if not a.crop_size: return False
        if a.steps: return step < a.steps * (1 - a.full_fraction)
        return time.perf_counter() - t0 < a.minutes * 60 * (1 - a.full_fraction)
    while (step < a.steps) if a.steps else (time.perf_counter() - t0 < a.minutes * 60):
        crop = cropping()
        idx = torch.randint(0, len(train), (a.crop_batch_size if crop else a.batch_size,), generator=g)
        x = videos_to_float(train[idx])
        if crop: x = object_crops(x, a.crop_size, gc, align=tok.factors[1])
        x = x.to(dev)
        ts = time.perf_counter(); out = tokenizer_step(tok, loss_fn, opt, sched, x)
        dt = time.perf_counter() - ts; t_train += dt; ph = phase[crop]; ph[0] += 1; ph[1] += dt; ph[2] += len(x)
        step += 1; seen += len(x)
        if step == 20 and not a.steps:
            total = max(200, int(a.minutes * 60 / (t_train / 20)))
            sched.lr_lambdas[0] = warmup_cosine(100, total, 0.05)
            print(f'schedule: warm-up 100 steps, cosine to 5% at step {total} (sized from {t_train / 20:.3f} s/step)', flush=True)
        if step % a.eval_every == 0:
            m = evaluate(tok, held[:64])
            print(f'step {step} ({time.perf_counter() - t0:.0f} s) loss {out["loss"]:.4f} lr {out["lr"]:.2e} | held-out[:64] {format_metrics(m)}', flush=True)
    used = time.perf_counter() - t0
    m = evaluate(tok, held)
    print(f'budget: {used / 60:.1f} min wall clock ({t_train / 60:.1f} min in training steps), {step} steps, {seen} samples seen')
    for crop, (n, sec, smp) in phase.items():
        if n: print(f'  {"crop phase" if crop else "full phase"}: {n} steps of batch {a.crop_batch_size if crop else a.batch_size} '
                    f'({f"{a.crop_size}x{a.crop_size} crops" if crop else "16x64x64"}), {sec / 60:.1f} min, {sec / n:.3f} s/step, {smp / sec:.2f} samples/s')
    print(f'held-out ({len(held)} videos): {format_metrics(m)}')
    diagnose(tok, held)
    ok = {'psnr >= blank + 12 dB': m['psnr_over_blank'] >= 12, 'ssim >= 0.97': m['ssim'] >= 0.97,
          'centroid <= 1 px': m['centroid_err_px'] <= 1, 'usage >= 60%': m['codebook_usage'] >= 0.6, 'perplexity >= 100': m['perplexity'] >= 100}
    print('targets: ' + ', '.join(f'{k}: {"met" if v else "NOT met"}' for k, v in ok.items()))
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    tok.cpu().save(out / 'tokenizer.safetensors')
    (out / 'metrics.json').write_text(json.dumps({**m, 'minutes': used / 60, 'train_minutes': t_train / 60, 'steps': step,
                                                 'recipe': {k: getattr(a, k) for k in ('batch_size', 'crop_size', 'crop_batch_size', 'full_fraction', 'lr', 'fg_weight')},
                                                 'full_phase_samples_per_s': phase[False][2] / phase[False][1] if phase[False][0] else None, 'targets': ok}, indent=1))
    print(f'weights and metrics in {out}')


if __name__ == '__main__':
    main()
