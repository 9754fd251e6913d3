"""Benchmark: the tokenizer's training step against the CPU's peak, where its time goes, and inference throughput.

    python bench/throughput.py [--threads 2] [--repeat 5] [--batches 1,8,64] [--fma-pipes N] [--lanes N]

1. FLOPs per training video, forward + backward, counted by `torch.utils.flop_counter.FlopCounterMode` (matrix
   products and convolutions; norms and activations are not counted, so the achieved figure is a lower bound),
   for the first phase (32 clips of 8x24x24) and the full-size phase (8 videos of 16x64x64), default model.
2. The achieved GFLOP/s of a whole AdamW step (channels_last_3d, fp32 and bf16 autocast), median of `--repeat`.
3. The CPU's peak: cores x clock x FMA pipes x lanes x 2, printed with its derivation (the pipes are inferred
   from the CPU family where known; `--fma-pipes`/`--lanes` override).
4. Where a full-size step's time goes: `torch.profiler`, the operators with the most self time.
5. `tokenize` and `detokenize` throughput in videos/s at batch 1, 8 and 64 (eval mode, no grad, fp32).

magvit2-pytorch's encoder and decoder are not measured beside ours: importing it needs torchvision, and the
torchvision built for torch 2.13.0 fails to load its operators against the CPU wheel (`torchvision::nms does
not exist`); the next torchvision requires torch 2.14.
"""
import argparse, os, platform, statistics, time
import torch
from machine import cpu


def peak(threads: int, pipes: int | None, lanes: int | None) -> tuple[float, float, str]:
    "fp32 and bf16 peak GFLOP/s of `threads` cores, and how they were derived."
    info = open('/proc/cpuinfo').read()
    field = lambda k: next((l.split(':', 1)[1].strip() for l in info.splitlines() if l.startswith(k)), '')
    mhz, family, vendor = float(field('cpu MHz') or 0), int(field('cpu family') or 0), field('vendor_id')
    flags = set(field('flags').split())
    lanes = lanes or (16 if 'avx512f' in flags else 8)
    guess = {('AuthenticAMD', 26): (2, 'Zen 5: two 512-bit FMA pipes per core'),
             ('AuthenticAMD', 25): (1 if lanes == 16 else 2, 'Zen 3/4: two 256-bit FMA pipes (one 512-bit FMA per cycle)')}
    p, why = (pipes, 'given') if pipes else guess.get((vendor, family), (2, 'assumed: two FMA pipes'))
    fp32 = threads * mhz / 1e3 * p * lanes * 2
    bf16 = 2 * fp32 if 'avx512_bf16' in flags else fp32
    how = (f'{threads} cores x {mhz / 1e3:.3f} GHz (the clock /proc/cpuinfo reports; turbo not counted) x {p} FMA pipes ({why}; '
           f'{vendor} family {family}) x {lanes} fp32 lanes x 2 FLOP per FMA = {fp32:.0f} GFLOP/s fp32; bf16 '
           + ('(AVX512_BF16 dot products: 2 bf16 pairs per fp32 lane) = 2x fp32' if 'avx512_bf16' in flags else '(no BF16 instructions) = fp32'))
    return fp32, bf16, how


def model_and_opt():
    from mono3d.tokenizer import VideoTokenizer, TokenizerConfig
    torch.manual_seed(0)
    m = VideoTokenizer(TokenizerConfig()).to(memory_format=torch.channels_last_3d).train()
    return m, torch.optim.AdamW(m.parameters(), lr=1e-4)


def step_fn(m, opt, x, amp):
    from mono3d.loss import ReconstructionLoss
    from mono3d.recipe import tokenizer_loss
    loss_fn = ReconstructionLoss(fg_weight=10.0)
    def step():
        opt.zero_grad(set_to_none=True)
        loss, _ = tokenizer_loss(m, loss_fn, x, amp)
        loss.backward(); opt.step()
    return step


def batch(n, t, s):
    g = torch.Generator().manual_seed(1)
    x = torch.full((n, 3, t, s, s), 0.1)
    x[:, :, :, s // 3:s // 3 + 4, s // 3:s // 3 + 4] = torch.rand(n, 3, t, 4, 4, generator=g)
    return x.contiguous(memory_format=torch.channels_last_3d)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--threads', type=int, default=os.cpu_count() or 1)
    ap.add_argument('--repeat', type=int, default=5)
    ap.add_argument('--batches', default='1,8,64')
    ap.add_argument('--fma-pipes', type=int, default=None)
    ap.add_argument('--lanes', type=int, default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from torch.utils.flop_counter import FlopCounterMode
    fp32_peak, bf16_peak, how = peak(a.threads, a.fma_pipes, a.lanes)
    print(f'# bench/throughput.py  {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}\n# machine: {cpu()}, Python {platform.python_version()}, '
          f'torch {torch.__version__}, {a.threads} threads, get_cpu_capability {torch.backends.cpu.get_cpu_capability()}\n'
          f'# peak: {how}\n', flush=True)
    print('| step | FLOPs per video (fwd+bwd) | precision | step s | achieved GFLOP/s | share of peak |\n|---|---|---|---|---|---|')
    for name, (n, t, s) in (('32 clips of 8x24x24', (32, 8, 24)), ('8 videos of 16x64x64', (8, 16, 64))):
        m, opt = model_and_opt()
        x = batch(n, t, s)
        with FlopCounterMode(display=False) as fc: step_fn(m, opt, x, None)()
        flops = fc.get_total_flops()
        for prec, amp, pk in (('fp32', None, fp32_peak), ('bf16', torch.bfloat16, bf16_peak)):
            m, opt = model_and_opt()
            f = step_fn(m, opt, x, amp); f(); f()
            ts = []
            for _ in range(a.repeat):
                t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
            st = statistics.median(ts)
            print(f'| {name} | {flops / n / 1e9:.3f} G | {prec} | {st:.3f} | {flops / st / 1e9:.1f} | {flops / st / 1e9 / pk:.1%} |', flush=True)
    m, opt = model_and_opt(); x = batch(8, 16, 64); f = step_fn(m, opt, x, None); f()
    from torch.profiler import profile, ProfilerActivity
    with profile(activities=[ProfilerActivity.CPU]) as prof: f()
    ev = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in ev)
    print('\n## Where a full-size fp32 step goes (torch.profiler, self time)\n\n| operator | calls | self ms | share |\n|---|---|---|---|')
    for e in ev[:10]: print(f'| {e.key} | {e.count} | {e.self_cpu_time_total / 1e3:.1f} | {e.self_cpu_time_total / total:.1%} |')
    from mono3d.tokenizer import VideoTokenizer, TokenizerConfig
    torch.manual_seed(0)
    tok = VideoTokenizer(TokenizerConfig()).eval()
    print('\n## Inference, 16x64x64 videos, fp32, eval mode\n\n| batch | tokenize videos/s | detokenize videos/s |\n|---|---|---|')
    for b in map(int, a.batches.split(',')):
        x = batch(b, 16, 64).contiguous()
        with torch.no_grad():
            codes = tok.tokenize(x); tok.detokenize(codes)
            reps = max(2, min(a.repeat, 256 // b))
            t0 = time.perf_counter()
            for _ in range(reps): tok.tokenize(x)
            enc = b * reps / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            for _ in range(reps): tok.detokenize(codes)
            dec = b * reps / (time.perf_counter() - t0)
        print(f'| {b} | {enc:.1f} | {dec:.1f} |', flush=True)


if __name__ == '__main__': main()
