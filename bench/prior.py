"""Benchmark: the prior's training step and its sampling, on this CPU.

    python bench/prior.py steps [--threads 2]                    # step time of transformer sizes on the default token grid
    python bench/prior.py sampling PRIOR_RUN [--threads 2] [--per-class 16] [--checkpoint runs/prior/step_N.pt] [--sweep all|frames]
                                                                 # videos/s and quality against decode steps, guidance, temperature
    python bench/prior.py background TOKENIZER_RUN               # what canonical background codes, tighter masks and windows cost the reconstruction
    python bench/prior.py predictability PRIOR_RUN [PRIOR_RUN ..]  # how well the prior predicts a masked token, by region

`steps` times a training step (forward, masked-token loss, backward, AdamW) of the masked-token transformer for
several widths, depths and token groups, on random codes of the default tokenizer's grid (8x16x16 tokens, FSQ
5,5,5,5,5), batch 32, and prints steps/s and training videos/s. `sampling` loads a trained prior and prints
videos/s of `Prior.sample` against decode steps, and class fidelity and one-object share of 64 videos per class
against decode steps, guidance, temperature, choice noise, the decoding order and whole-video decoding, one change at a time from
mono3d sample's defaults (the evaluation's own measures, classifier
trained on real videos), with each setting's videos/s; `--sweep frames` compares frame-by-frame decoding (`by_frame`,
`later_steps`) with the whole-video orders.
"""
import argparse, json, time
from pathlib import Path
import numpy as np
import torch
from machine import cpu
from mono3d.config import DECODING


def machine() -> str: return f'{cpu()}, torch {torch.__version__}, {torch.get_num_threads()} threads'


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


SWEEP = [dict(steps=k) for k in (4, 12, 24)] + [dict(temperature=t) for t in (0.45, 0.8, 1.0)] + \
        [dict(guidance=g) for g in (0.0, 1.0, 4.0)] + [dict(choice_noise=c) for c in (0.0, 4.5)] + [dict(later_steps=4), dict(order='confidence')] + \
        [dict(by_frame=False, later_steps=None, steps=12, temperature=t) for t in (0.8, 1.0)] + \
        [dict(by_frame=False, later_steps=None, steps=12, temperature=1.0, order='confidence')]      # the default before 2026-12-07
FRAMES = [dict(order='object-first')] + [dict(order=o, by_frame=True, steps=k, later_steps=j)
                                         for o, k, j in (('object-first', 8, 2), ('object-first', 12, 3), ('object-first', 24, 2),
                                                         ('confidence', 8, 2), ('object-first', 12, 12))]
BASE = dict(steps=DECODING['decode_steps'], temperature=DECODING['temperature'], guidance=DECODING['guidance'], choice_noise=1.0,
            order=DECODING['order'], by_frame=DECODING['by_frame'], later_steps=DECODING['later_steps'])    # mono3d sample's defaults


def sampling(a):
    """videos/s of `Prior.sample` against decode steps, then the evaluation's measures of `--per-class` videos per class
    against decode steps, temperature, guidance and choice noise (one setting changed at a time from BASE)."""
    from mono3d.data import CLASSES
    from mono3d.evaluate_prior import EvalPriorConfig, _open_prior, reference, measures
    from mono3d.maskgit import decode
    cfg = EvalPriorConfig(prior_run=a.prior_run, per_class=a.per_class, classifier_videos=a.classifier_videos)
    ctx = _open_prior(cfg)
    prior = ctx['prior']
    if a.checkpoint:                                  # an intermediate checkpoint of a run that is still training
        d = torch.load(a.checkpoint, map_location='cpu', weights_only=False)
        prior.model.load_state_dict(d['model']); prior.model.eval()
        print(f'# weights of {a.checkpoint} (step {d["step"]})')
    ref, info = reference(ctx, cfg, None, lambda: None)
    print(f"# classifier (kinematic features, {info['classifier_train_videos']} real videos): real held-out balanced accuracy "
          f"{100 * info['classifier_real_heldout_balanced_accuracy']:.1f}%; real-vs-real Fréchet floor {info['real_vs_real_frechet']:.3f}; "
          f"reconstructions: one object {100 * info['reconstructions']['one_object_share']:.1f}%, "
          f"fidelity {100 * info['reconstructions']['balanced_accuracy']:.1f}%")
    print('\n| decode steps | videos/s (batch 16, guidance 2) |\n|---|---|')
    for k in (4, 8, 12, 24) if a.sweep == 'all' else ():
        t = time.perf_counter(); prior.sample('helical', 16, seed=0, steps=k); dt = time.perf_counter() - t
        print(f'| {k} | {16 / dt:.2f} |', flush=True)
    labels = torch.arange(len(CLASSES)).repeat_interleave(a.per_class)
    print(f'\n{a.per_class} videos per class; BASE {BASE}\n\n| setting | class fidelity | frames with one object | with none | Fréchet | distinct grids | videos/s |\n|---|---|---|---|---|---|---|')
    for change in [{}] + (FRAMES if a.sweep == 'frames' else SWEEP):
        kw = {**BASE, **change}
        g = torch.Generator().manual_seed(0)
        first = prior.first(kw['order'])
        t0 = time.perf_counter()
        codes = prior.layout.compose(torch.cat([decode(prior.model, labels[i:i + 64], kw['steps'], kw['temperature'], kw['guidance'], g,
                                                       choice_noise=kw['choice_noise'], first=first, by_frame=kw['by_frame'],
                                                       later_steps=kw['later_steps']) for i in range(0, len(labels), 64)]))   # the tokenizer's grid
        rate = len(labels) / (time.perf_counter() - t0)
        with torch.no_grad(): v = torch.cat([prior.tokenizer.detokenize(codes[i:i + 64]).clamp(0, 1) for i in range(0, len(codes), 64)])
        m = measures((v * 255).round().to(torch.uint8).movedim(1, -1).numpy(), codes.numpy(), labels.numpy(), ref)
        name = ', '.join(f'{k} {v}' for k, v in change.items()) or 'BASE'
        print(f"| {name} | {100 * m['balanced_accuracy']:.1f}% | {100 * m['one_object_share']:.1f}% | {100 * m['no_object_share']:.1f}% | "
              f"{m['frechet']:.3f} | {100 * m['distinct_grids']:.0f}% | {rate:.2f} |", flush=True)


def background(a):
    from mono3d.tokenizer import VideoTokenizer
    from mono3d.data import ShardIndex, read_dataset_config, videos_by_shard, videos_to_float
    from mono3d.tokens import tokenize_videos, object_token_mask
    from mono3d.evaluate_prior import count_objects
    from mono3d.loss import psnr
    from mono3d.train import split_ids
    run = Path(a.prior_run)
    rec = json.loads((run / 'run.json').read_text())
    tok = VideoTokenizer.load(run / 'tokenizer.safetensors').eval()
    bg = read_dataset_config(rec['data_dir']).background
    d = rec['config']['data']
    v = videos_by_shard(ShardIndex(rec['data_dir']), split_ids(d['num_samples'], d['val_samples'])[1][:64])
    x = videos_to_float(v)
    from mono3d.prior import layout_for
    print('| codes | held-out PSNR dB | frames with one object | distinct codes | object tokens outside the windows |\n|---|---|---|---|---|')
    def row(name, c, lost='-'):
        with torch.no_grad(): y = tok.detokenize(c).clamp(0, 1)
        n = count_objects((y * 255).round().to(torch.uint8).movedim(1, -1).numpy(), bg)
        print(f'| {name} | {float(psnr(y, x).mean()):.2f} | {100 * (n == 1).mean():.1f}% | {int(c.unique().numel())} | {lost} |', flush=True)
    for name, kw in (('encoded', {}), ('blank (canonical)', {'background': bg})):
        c = torch.from_numpy(tokenize_videos(tok, v, 32, **kw).astype(np.int64))
        row(name, c)
    for k in (6, 8, 10, 12):                          # --window K: the canonical codes through a KxK window per token frame
        L = layout_for(tok, bg, tuple(c.shape[1:]), k)
        row(f'window {k} (of the canonical)', L.compose(L.extract(c)), f'{100 * L.lost(c):.1f}%')
    print(f'tokens kept from the encoder (near the object): {100 * float(object_token_mask(v, bg, tok.factors).float().mean()):.1f}%')
    # tighter masks: the tokens that see the object grown by (t, h, w) tokens; the cache's own is (1, 1, 1)
    from mono3d.tokens import blank_codes
    with torch.no_grad(): enc = tok.tokenize(x)
    blank = blank_codes(tok, bg, *v.shape[1:3])
    print('\n| encoder codes kept: the object\'s tokens grown by (t, h, w) | share of tokens kept | held-out PSNR dB | frames with one object |\n|---|---|---|---|')
    for dt, dh in ((1, 1), (0, 1), (1, 0), (0, 0)):
        keep = object_token_mask(v, bg, tok.factors, dilate=(dt, dh, dh))
        with torch.no_grad(): y = tok.detokenize(torch.where(keep, enc, blank)).clamp(0, 1)
        n = count_objects((y * 255).round().to(torch.uint8).movedim(1, -1).numpy(), bg)
        print(f'| ({dt}, {dh}, {dh}) | {100 * float(keep.float().mean()):.1f}% | {float(psnr(y, x).mean()):.2f} | {100 * (n == 1).mean():.1f}% |', flush=True)


def predictability(a):
    """How often a trained prior gets a masked token exactly right (all digits) and per digit, on 64 held-out videos, for
    masked shares 5%, 50% and 90% (every other token shown), apart for the tokens the object covers, the ring of encoder
    codes kept around it, and the background (the blank video's codes). Beside: the tokenizer's codebook and its
    perplexity on the object, from its own run."""
    from mono3d.prior import Prior
    from mono3d.maskgit import code_digits
    from mono3d.tokens import object_token_mask
    from mono3d.data import ShardIndex, videos_by_shard, sample_labels, read_dataset_config
    from mono3d.train import split_ids
    print('| prior run | codebook | object perplexity (tokenizer) | masked | background token / digit | object token / digit | ring token / digit |\n'
          '|---|---|---|---|---|---|---|')
    for run in [a.prior_run, *a.more]:
        prior = Prior.load(run); m = prior.model
        if prior.layout.window: print(f'| {run} | (a window layout: this measure is for priors over the whole grid) |'); continue
        rec = json.loads((Path(prior.info['tokenizer_run']) / 'run.json').read_text())
        d = rec['config']['data']
        ids = split_ids(d['num_samples'], d['val_samples'])[1][:64]
        v = videos_by_shard(ShardIndex(rec['data_dir']), ids)
        codes = prior.encode(v)
        labels = torch.as_tensor(sample_labels(read_dataset_config(rec['data_dir']).seed, ids), dtype=torch.long)
        cp, ep = m.to_positions(codes), m.to_positions(prior.first('object-first')[None]).expand(len(v), -1, -1)
        core = m.to_positions(object_token_mask(v, prior.info['background_rgb'], prior.tokenizer.factors, dilate=0).long()) > 0
        regions = (cp == ep, core, (cp != ep) & ~core)
        metrics = json.loads((Path(prior.info['tokenizer_run']) / 'metrics.json').read_text())['final']
        g = torch.Generator().manual_seed(0)
        for share in (0.05, 0.5, 0.9):
            masked = torch.rand(cp.shape, generator=g) < share
            with torch.no_grad(): logits = m(codes, masked, labels)
            digits = code_digits(cp, m.levels)
            right = torch.stack([p.argmax(-1) == digits[..., c] for c, p in enumerate(torch.split(logits, list(m.levels), -1))], -1)
            cells = [f'{100 * right.all(-1)[masked & r].float().mean():.1f}% / {100 * right[masked & r].float().mean():.1f}%' for r in regions]
            print(f"| {run} | {prior.tokenizer.codebook_size} | {metrics['object_perplexity']:.0f} | {100 * share:.0f}% | {' | '.join(cells)} |", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('what', choices=('steps', 'sampling', 'background', 'predictability'))
    ap.add_argument('prior_run', nargs='?')
    ap.add_argument('more', nargs='*', help='predictability: more prior runs')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--repeat', type=int, default=3)
    ap.add_argument('--per-class', type=int, default=16, help='sampling: videos per class for each setting')
    ap.add_argument('--classifier-videos', type=int, default=2000, help='sampling: real videos the classifier learns from')
    ap.add_argument('--sweep', choices=('all', 'frames'), default='all', help="sampling: the settings ('frames': frame-by-frame decoding)")
    ap.add_argument('--checkpoint', help='sampling: weights from this checkpoint of the run (a run still training)')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f'# bench/prior.py {a.what}  {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}\n# {machine()}', flush=True)
    {'steps': steps, 'sampling': sampling, 'background': background, 'predictability': predictability}[a.what](a)


if __name__ == '__main__': main()
