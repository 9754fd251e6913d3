#!/usr/bin/env python
"""Edit notebooks as plain text: one file per notebook, cells separated by marker lines.

    python scripts/nbtext.py export nbs/12_train.ipynb [OUT.txt]   # notebook -> text (stdout without OUT)
    python scripts/nbtext.py import IN.txt nbs/12_train.ipynb      # text -> notebook
    python scripts/nbtext.py new IN.txt nbs/09_recipe.ipynb        # text -> a new notebook

A marker line is `#%% md` or `#%% code`, optionally followed by `tags=a,b` (e.g. `tags=parameters`).
On import, cells get sequential ids (c000, c001, ...) and a code cell keeps its outputs when its source is
unchanged; run `nbdev_clean` and `nbdev_export` afterwards as usual.
"""
import json, sys
from pathlib import Path

MARK = '#%% '


def export(nb_path) -> str:
    nb = json.loads(Path(nb_path).read_text())
    out = []
    for c in nb['cells']:
        kind = 'md' if c['cell_type'] == 'markdown' else 'code'
        tags = c.get('metadata', {}).get('tags')
        out.append(MARK + kind + (f" tags={','.join(tags)}" if tags else ''))
        out.append(''.join(c['source']).rstrip('\n'))
    return '\n'.join(out) + '\n'


def parse(text: str) -> list[dict]:
    cells, cur = [], None
    for line in text.splitlines():
        if line.startswith(MARK) and line[len(MARK):].split(' ')[0] in ('md', 'code'):
            parts = line[len(MARK):].split()
            cur = {'kind': parts[0], 'tags': [], 'lines': []}
            for p in parts[1:]:
                if p.startswith('tags='): cur['tags'] = [t for t in p[5:].split(',') if t]
            cells.append(cur)
        elif cur is None:
            if line.strip(): raise SystemExit(f'text before the first {MARK!r} marker: {line!r}')
        else: cur['lines'].append(line)
    return cells


def build(cells, old_nb=None) -> dict:
    old_outputs = {}
    if old_nb:
        for c in old_nb['cells']:
            if c['cell_type'] == 'code': old_outputs.setdefault(''.join(c['source']).rstrip('\n'), (c.get('outputs', []), c.get('execution_count')))
    nb_cells = []
    for i, c in enumerate(cells):
        src = '\n'.join(c['lines']).strip('\n')
        lines = [l + '\n' for l in src.split('\n')]
        if lines: lines[-1] = lines[-1].rstrip('\n')
        meta = {'tags': c['tags']} if c['tags'] else {}
        if c['kind'] == 'md': nb_cells.append({'cell_type': 'markdown', 'id': f'c{i:03d}', 'metadata': meta, 'source': lines})
        else:
            outs, n = old_outputs.get(src, ([], None))
            nb_cells.append({'cell_type': 'code', 'execution_count': n, 'id': f'c{i:03d}', 'metadata': meta, 'outputs': outs, 'source': lines})
    meta = old_nb['metadata'] if old_nb else {'kernelspec': {'display_name': 'python3', 'language': 'python', 'name': 'python3'}}
    return {'cells': nb_cells, 'metadata': meta, 'nbformat': 4, 'nbformat_minor': 5}


if __name__ == '__main__':
    cmd, *args = sys.argv[1:] or ['help']
    if cmd == 'export':
        text = export(args[0])
        if len(args) > 1: Path(args[1]).write_text(text)
        else: sys.stdout.write(text)
    elif cmd in ('import', 'new'):
        src, dest = Path(args[0]), Path(args[1])
        old = json.loads(dest.read_text()) if cmd == 'import' and dest.exists() else None
        if cmd == 'new' and dest.exists(): raise SystemExit(f'{dest} exists; use import')
        dest.write_text(json.dumps(build(parse(src.read_text()), old), indent=1, ensure_ascii=False) + '\n')
        print(f'wrote {dest}')
    else: print(__doc__)
