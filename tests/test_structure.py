"""The shape of the source (issue 21): one training loop, short functions and classes, no repeated blocks, notebooks
that teach one idea per cell, frozen flag names, and no private attributes of other objects. Static checks on the
exported package and its notebooks: they fail when the structure drifts, whatever the tests of behaviour say."""
import ast, json, re
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / 'mono3d'
MODULES = sorted(p for p in PKG.glob('*.py') if p.name not in ('_modidx.py', '__init__.py'))
NOTEBOOKS = sorted((ROOT / 'nbs').glob('[0-9][0-9]_*.ipynb'))


def _defs(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node, node.end_lineno - node.lineno + 1


def test_no_function_over_50_lines_no_class_over_150():
    long = [f'{p.name}:{n.lineno} {n.name} ({size} lines)' for p in MODULES for n, size in _defs(p)
            if size > (150 if isinstance(n, ast.ClassDef) else 50)]
    assert long == []


def test_the_tokenizer_training_module_is_short():
    n = len((PKG / 'train.py').read_text().splitlines())
    assert n <= 350, n


def _blocks(lines, k=6):
    "Every run of `k` consecutive meaningful lines (stripped; blank lines, comments, imports and config-field declarations skipped)."
    keep = [(i, l.strip()) for i, l in enumerate(lines)
            if l.strip() and not l.strip().startswith(('#', '@patch', '"', "'", 'import ', 'from ')) and '= param(' not in l
            and l.strip() not in ('try:', 'else:', 'finally:', 'return out', 'return None', ')', ']', '}', 'pass')]
    for j in range(len(keep) - k + 1):
        yield keep[j][0], tuple(l for _, l in keep[j:j + k])


def test_no_block_of_six_identical_lines_appears_twice():
    seen, dups = {}, []
    for p in MODULES:
        for line, block in _blocks(p.read_text().splitlines()):
            if block in seen and seen[block][0] != (p.name, line): dups.append(f'{seen[block][0]} and {p.name}:{line + 1}: {block[0][:60]}')
            seen.setdefault(block, ((p.name, line + 1),))
    assert dups == []


def _cells(nb):
    return json.loads(nb.read_text())['cells']


def _src(c): return ''.join(c['source'])


def _exported(c): return c['cell_type'] == 'code' and _src(c).lstrip().startswith('#| export')


def _lesson(c): return c['cell_type'] == 'code' and not _src(c).lstrip().startswith('#|')


def _defines(c) -> bool:
    "Whether an exported cell defines something (a function, a class, a name); imports and `if __name__` guards do not."
    body = [l for l in _src(c).splitlines() if l.strip() and not l.startswith('#|')]
    return any(re.match(r'(def |class |async def |@|[A-Za-z_][\w, ]*\s*=(?!=))', l) for l in body)


def test_notebooks_teach_one_idea_per_cell():
    sizes, big, bare = [], [], []
    for nb in NOTEBOOKS:
        cells = _cells(nb)
        ex = [i for i, c in enumerate(cells) if _exported(c)]
        for k, i in enumerate(ex):
            n = len(_src(cells[i]).rstrip().splitlines())
            sizes.append(n)
            if n > 80: big.append(f'{nb.name} cell {i} ({n} lines)')
            nxt = ex[k + 1] if k + 1 < len(ex) else len(cells)
            if _defines(cells[i]) and not any(_lesson(c) for c in cells[i + 1:nxt]): bare.append(f'{nb.name} cell {i}: {_src(cells[i]).splitlines()[1][:60]}')
    mean = sum(sizes) / len(sizes)
    assert big == [], big
    assert bare == [], bare
    assert mean <= 20, f'mean {mean:.1f} lines per exported cell'


FLAGS = {
    'GenerateConfig': ['out_dir', 'num_samples', 'checkpoint_interval', 'workers', 'frames', 'image_size', 'cameras', 'data_seed', 'noise', 'rotate',
                       'background', 'progress_every', 'heartbeat_every', 'hung_after', 'publish_to', 'bar', 'quiet'],
    'TrainConfig': ['run_dir', 'seed', 'frames', 'image_size', 'cameras', 'data_seed', 'noise', 'rotate', 'background', 'data_dir',
                    'num_samples', 'val_samples', 'channels', 'channel_mults', 'res_blocks', 'stem_patch', 'spatial_downsample',
                    'temporal_downsample', 'quantizer', 'levels', 'lfq_bits', 'entropy_weight', 'norm_groups', 'epochs', 'steps', 'minutes',
                    'batch_size', 'lr', 'warmup_steps', 'min_lr_ratio', 'weight_decay', 'grad_clip', 'ema', 'micro_batches', 'grad_order', 'fg_weight', 'crop_size',
                    'crop_frames', 'crop_batch_size', 'full_size_fraction', 'progress_every', 'heartbeat_every', 'hung_after', 'publish_to',
                    'bar', 'quiet', 'ckpt_every_steps', 'ckpt_every_minutes', 'keep_last', 'val_every_steps', 'print_every', 'threads',
                    'workers', 'device', 'precision', 'channels_last', 'compile', 'production', 'prelaunch_tests', 'log_to', 'wandb_project'],
}


@pytest.mark.parametrize('name', sorted(FLAGS))
def test_flag_names_are_frozen(name):
    "Adding a field in one part of a configuration must never rename a flag elsewhere: the names are listed here."
    import mono3d.data, mono3d.train
    cls = {'GenerateConfig': mono3d.data.GenerateConfig, 'TrainConfig': mono3d.train.TrainConfig}[name]
    assert cls.flat_names() == FLAGS[name]


def test_no_private_attribute_of_another_object_is_used():
    "`x._name` only on `self`, `cls` or a module of ours; never another object's internals (`it._shutdown_workers()`)."
    bad = []
    for p in MODULES:
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Attribute) and node.attr.startswith('_') and not node.attr.startswith('__'):
                base = node.value
                own = isinstance(base, ast.Name) and base.id in ('self', 'cls')
                if not own: bad.append(f'{p.name}:{node.lineno} {ast.unparse(node)}')
    allowed = {'os._exit',                 # a documented function of os, not an object's internals
               'zi._compresslevel'}        # Python <= 3.12 has no public name for a ZipInfo's level (the shards' bytes depend on it)
    assert [b for b in bad if b.split(' ', 1)[1] not in allowed] == []


def test_comments_give_reasons_not_anecdotes():
    "History belongs to commit messages: no comment tells what happened once on some machine."
    pat = re.compile(r'#.*\b(it once|once left|once took|once waited|seen once|on this VM|this VM|last week|yesterday)\b', re.I)
    hits = [f'{p.name}:{i + 1}' for p in MODULES for i, l in enumerate(p.read_text().splitlines()) if pat.search(l)]
    assert hits == []
