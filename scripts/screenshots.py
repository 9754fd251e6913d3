#!/usr/bin/env python
"""Screenshots of status pages in headless Chromium, at a laptop's and a phone's width.

    python scripts/screenshots.py runs/default runs/default/data runs/default/eval [--out artifacts] [--name status]

Each DIR's `status.html` is rendered at 1280x1800 (laptop) and 390x2400 (phone) CSS pixels and written to
`OUT/<name>_<dir's last two parts>_<laptop|phone>.png`. Needs a `chromium` (or `chromium-browser`,
`google-chrome`) on PATH; nothing here downloads one. Prints what it wrote, with each page's size.
"""
import argparse, shutil, subprocess, sys, tempfile
from pathlib import Path

WIDTHS = {'laptop': (1280, 1800), 'phone': (390, 2400)}


def browser() -> str:
    for name in ('chromium', 'chromium-browser', 'google-chrome'):
        if shutil.which(name): return shutil.which(name)
    sys.exit('screenshots: no chromium on PATH (apt-get install chromium)')


def shoot(page: Path, out: Path, width: int, height: int) -> None:
    with tempfile.TemporaryDirectory() as profile:
        cmd = [browser(), '--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', f'--user-data-dir={profile}',
               f'--window-size={width},{height}', f'--screenshot={out}', page.resolve().as_uri()]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if r.returncode != 0 or not out.is_file(): sys.exit(f'screenshots: chromium failed on {page}: {r.stderr[-800:]}')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('dirs', nargs='+', type=Path)
    ap.add_argument('--out', type=Path, default=Path('artifacts'))
    ap.add_argument('--name', default='status')
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    for d in a.dirs:
        page = d / 'status.html'
        if not page.is_file(): sys.exit(f'screenshots: {page} does not exist')
        tag = '_'.join(d.resolve().parts[-2:]).replace('-', '_')
        for kind, (w, h) in WIDTHS.items():
            out = a.out / f'{a.name}_{tag}_{kind}.png'
            shoot(page, out, w, h)
            print(f'{out} ({w}x{h}, {out.stat().st_size:,} bytes) from {page}', flush=True)


if __name__ == '__main__': main()
