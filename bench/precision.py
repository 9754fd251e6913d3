"""Benchmark: the default tokenizer's training step in fp32 and under bf16 autocast, in one process, on this CPU.

    python bench/precision.py [--threads 2] [--steps 12]

Times the real step (`tokenizer_loss` with the default `ReconstructionLoss`, backward, AdamW, gradient clipping,
channels_last_3d) of the default `TokenizerConfig` on the two batches the main job trains on: 32 clips of
8x24x24 and 8 full videos of 16x64x64 (random pixels; the step's cost does not depend on them). Each
precision gets a fresh copy of the same initial weights; the median of `--steps` steps after two warm-up
steps is reported, with the ratio. The CPU's model, its BF16 instructions (`/proc/cpuinfo`: avx512_bf16,
amx_bf16) and `torch.backends.cpu.get_cpu_capability()` are printed beside the figures. `mono3d train
--precision auto` decides with the same measurement (see `nbs/12_loop.ipynb`).
"""
import argparse, copy, statistics, time
import torch
from mono3d.tokenizer import TokenizerConfig, VideoTokenizer
from mono3d.loss import ReconstructionLoss
from mono3d.recipe import optimisation_step, tokenizer_loss
from machine import cpu


def machine() -> str: return (f'{cpu()}, torch {torch.__version__} (get_cpu_capability: {torch.backends.cpu.get_cpu_capability()}), {torch.get_num_threads()} threads')


def time_steps(model, x, amp, steps: int) -> float:
    m = copy.deepcopy(model).to(memory_format=torch.channels_last_3d).train()
    opt, loss_fn = torch.optim.AdamW(m.parameters(), lr=3e-3, betas=(0.9, 0.99), weight_decay=0.01), ReconstructionLoss(fg_weight=10.0)
    x = x.contiguous(memory_format=torch.channels_last_3d)
    times = []
    for k in range(steps + 2):
        t = time.perf_counter()
        optimisation_step(lambda: tokenizer_loss(m, loss_fn, x, amp), m.parameters(), opt)
        if k >= 2: times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--steps', type=int, default=12)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f'# bench/precision.py  {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}\n# {machine()}')
    torch.manual_seed(0)
    model = VideoTokenizer(TokenizerConfig())
    g = torch.Generator().manual_seed(0)
    batches = {'32 clips of 8x24x24': torch.rand(32, 3, 8, 24, 24, generator=g), '8 full videos of 16x64x64': torch.rand(8, 3, 16, 64, 64, generator=g)}
    print('| batch | fp32 s/step | bf16 autocast s/step | fp32 / bf16 |\n|---|---|---|---|')
    for name, x in batches.items():
        f32, b16 = time_steps(model, x, None, a.steps), time_steps(model, x, torch.bfloat16, a.steps)
        print(f'| {name} | {f32:.3f} | {b16:.3f} | {f32 / b16:.2f}x |', flush=True)


if __name__ == '__main__':
    main()
