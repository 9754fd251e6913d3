#!/usr/bin/env python
"""Execute the module notebooks and keep their outputs, so that they read with their results on a code host.

    python scripts/run_notebooks.py                 # every nbs/NN_*.ipynb
    python scripts/run_notebooks.py nbs/12_train.ipynb ...

Each notebook is run top to bottom in a fresh kernel (execnb, as `nbdev_test` runs them), its outputs are written
back, and `nbdev_clean` then strips execution counts and metadata. Outputs are kept small: streams longer than
`MAX_STREAM` characters are shortened (the middle is cut), and the tests check a size budget per notebook
(tests/test_ergonomics.py). Runner notebooks (train.ipynb, evaluate_run.ipynb) are not run here: papermill runs them.
"""
import json, re, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_STREAM = 4000


def shorten(outputs: list) -> list:
    out = []
    for o in outputs:
        if o.get('output_type') == 'stream':
            text = ''.join(o['text']) if isinstance(o['text'], list) else o['text']
            if len(text) > MAX_STREAM:
                text = text[:MAX_STREAM // 2] + f'\n... ({len(text) - MAX_STREAM:,} characters cut) ...\n' + text[-MAX_STREAM // 2:]
            o = {**o, 'text': text}
        out.append(o)
    return out


def _no_eval(cell) -> bool:
    "Skip what nbdev_test skips: markdown, and code cells marked `#| eval: false` (e.g. a module's `__main__` guard)."
    if cell.cell_type != 'code': return True
    return re.search(r'^#\|\s*eval:\s*false\s*$', cell.source, re.M | re.I) is not None


def run(path: Path) -> None:
    from execnb.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell
    nb = read_nb(path)
    t0 = time.time()
    CaptureShell(path=path.parent).run_all(nb, exc_stop=True, preproc=_no_eval)
    for c in nb.cells:
        if c.cell_type == 'code': c['outputs'] = shorten(c.get('outputs', []))
    write_nb(nb, path)
    size = sum(len(json.dumps(c.get('outputs', []))) for c in nb.cells if c.cell_type == 'code')
    print(f'{path.name}: ran in {time.time() - t0:.0f} s, outputs {size:,} bytes', flush=True)


if __name__ == '__main__':
    paths = [Path(p) for p in sys.argv[1:]] or sorted((ROOT / 'nbs').glob('[0-9][0-9]_*.ipynb'))
    for p in paths: run(p)
    subprocess.run(['nbdev_clean'], cwd=ROOT, check=True)
