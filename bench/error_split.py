"""Where a trained tokenizer's reconstruction error lies: on the object, on the background close to it, or on
the rest of the background.

    python bench/error_split.py RUN_DIR [--near 4] [--videos 256]

Reads RUN_DIR/run.json (written by `mono3d train`) for its dataset and held-out split, reconstructs the first
`--videos` held-out videos with RUN_DIR/tokenizer.safetensors and prints, for three disjoint pixel sets, the
share of the pixels, their mean squared error and their share of the total squared error:

- object: pixels where the original differs from its background (the loss's foreground);
- near: background pixels within `--near` pixels (same frame) of the object: where a blurred or ghosted
  object lands;
- far: the rest of the background.

PSNR counts every pixel alike, so this says which pixels a better recipe has to fix.
"""
import argparse, json, os, platform, sys
from pathlib import Path
import torch
import torch.nn.functional as F


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('run_dir')
    ap.add_argument('--near', type=int, default=4, help='pixels around the object counted as near (default 4)')
    ap.add_argument('--videos', type=int, default=256, help='held-out videos to reconstruct (default 256)')
    a = ap.parse_args()
    from mono3d.tokenizer import VideoTokenizer
    from mono3d.data import load_dataset, videos_to_float
    from mono3d.loss import foreground_mask
    run = Path(a.run_dir)
    rec = json.loads((run / 'run.json').read_text())
    data_dir = Path(rec['data_dir'])
    if not data_dir.is_absolute() and not data_dir.exists(): data_dir = run / 'data'
    n, nval = rec['config']['data']['num_samples'], rec['config']['data']['val_samples']
    ids = list(range(n - nval, n))[: a.videos]
    model = VideoTokenizer.load(run / 'tokenizer.safetensors').eval()
    ds = load_dataset(data_dir, verify=False)
    print(f'machine: {platform.node()}, {os.cpu_count()} cores; run {run}: {len(ids)} held-out videos (samples {ids[0]}..{ids[-1]}) '
          f'of {data_dir}; tokenizer levels {model.config.levels}', flush=True)
    sums = {k: [0.0, 0.0] for k in ('object', 'near', 'far')}     # squared error, pixels
    total_se = total_px = 0.0
    with torch.no_grad():
        for i in range(0, len(ids), 16):
            x = videos_to_float(torch.as_tensor(ds.videos_uint8(ids[i:i + 16])))
            r = model(x)[0].clamp(0, 1)
            se = (r - x).square().mean(1, keepdim=True)                                   # (B, 1, T, H, W)
            obj = foreground_mask(x).float()
            k = 2 * a.near + 1
            near = (F.max_pool3d(obj, (1, k, k), 1, (0, a.near, a.near)) > 0).float() - obj
            far = 1 - obj - near
            for name, m in (('object', obj), ('near', near), ('far', far)):
                sums[name][0] += float((se * m).sum()); sums[name][1] += float(m.sum())
            total_se += float(se.sum()); total_px += se.numel()
    print(f'{"pixels":<8} {"share of pixels":>16} {"MSE":>10} {"share of squared error":>23}')
    for name, (s, p) in sums.items():
        print(f'{name:<8} {p / total_px:>15.1%} {s / max(p, 1):>10.2e} {s / total_se:>22.1%}')
    mse = total_se / total_px
    print(f'all      MSE {mse:.2e}, PSNR of the mean MSE {10 * torch.log10(torch.tensor(1 / mse)):.2f} dB')


if __name__ == '__main__':
    sys.exit(main())
