"""README.md is generated from nbs/index.ipynb (nbdev_readme needs quarto, which these machines lack).

    python scripts/make_readme.py          # write README.md
    python scripts/make_readme.py --check  # exit 1 if README.md is out of date
Markdown cells are copied as they are; code cells become ```python blocks; cells marked `#| hide` are left out.
"""
import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def render(nb_path=ROOT / 'nbs' / 'index.ipynb') -> str:
    nb = json.loads(nb_path.read_text())
    parts = ['<!-- Generated from nbs/index.ipynb by scripts/make_readme.py: edit the notebook, not this file. -->']
    for c in nb['cells']:
        src = ''.join(c['source']).rstrip()
        if not src: continue
        lines = src.splitlines()
        if any(l.strip().replace(' ', '') in ('#|hide', '#|default_exp', '#|export') or l.strip().replace(' ', '').startswith('#|default_exp') for l in lines[:3]):
            continue
        if c['cell_type'] == 'markdown': parts.append(src)
        elif c['cell_type'] == 'code':
            body = '\n'.join(l for l in lines if not l.lstrip().startswith('#|'))
            parts.append(f'```python\n{body}\n```')
    return '\n\n'.join(parts) + '\n'


if __name__ == '__main__':
    text, readme = render(), ROOT / 'README.md'
    if '--check' in sys.argv[1:]:
        if not readme.is_file() or readme.read_text() != text:
            print('README.md is out of date with nbs/index.ipynb: run `python scripts/make_readme.py`', file=sys.stderr)
            sys.exit(1)
        print('README.md is in sync with nbs/index.ipynb')
    else:
        readme.write_text(text); print(f'wrote {readme}')
