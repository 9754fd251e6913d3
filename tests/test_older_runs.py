"""A run recorded by an older mono3d, before a setting existed, resumes under the new version when that setting's value
there reproduces what the older version did (`param(..., earlier=...)`), and ends with the same weights as a run never
interrupted; a record that lacks a setting without such a value is still another job's, refused with exit 2 and left as
it was. The older directory is made by stopping a real run and removing the setting from its record and checkpoints, as
the version before `--window` wrote them."""
import hashlib, io, json, signal, subprocess
from pathlib import Path
import pytest
import torch
from conftest import run_cli, start_cli, read_json, wait_for
from test_prior import TOK, PRIOR


def sha(p): return hashlib.sha256(Path(p).read_bytes()).hexdigest()
def tree(d): return {str(p.relative_to(d)): sha(p) for p in sorted(Path(d).rglob('*')) if p.is_file()}


def as_older_version(run: Path, *settings: str) -> None:
    "Remove `settings` from the run's record and from every checkpoint's identity (manifests rewritten to match)."
    rec = read_json(run / 'run.json')
    for s in settings:
        rec['identity'].pop(s)
        rec['config'].get('recipe', {}).pop(s, None)
    (run / 'run.json').write_text(json.dumps(rec, indent=1))
    for pt in sorted((run / 'checkpoints').glob('step_*.pt')):
        ck = torch.load(pt, map_location='cpu', weights_only=True)
        for s in settings: ck['identity'].pop(s)
        buf = io.BytesIO(); torch.save(ck, buf); pt.write_bytes(buf.getvalue())
        man = pt.with_name(pt.stem + '.manifest.json'); m = read_json(man)
        m['files'][pt.name] = {'bytes': pt.stat().st_size, 'sha256': sha(pt)}
        man.write_text(json.dumps(m, indent=1))


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp('older')
    tok = d / 'tok'
    assert run_cli('train', tok, *TOK).returncode == 0
    ref = d / 'ref'
    r = run_cli('prior', ref, '--tokenizer-run', tok, *PRIOR)
    assert r.returncode == 0, r.stderr[-2000:]
    return tok, ref


def stopped_run(tok: Path, run: Path) -> None:
    "A prior run stopped (SIGTERM) after its first checkpoints, before its end."
    p = start_cli('prior', run, '--tokenizer-run', tok, *PRIOR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: (run / 'progress.json').is_file() and read_json(run / 'progress.json').get('job') == 'prior'
             and read_json(run / 'progress.json')['done'] >= 15, proc=p, timeout=300)
    p.send_signal(signal.SIGTERM); p.wait(60)
    assert p.returncode == 143 and read_json(run / 'progress.json')['status'] == 'PREEMPTED'
    assert len(list((run / 'checkpoints').glob('step_*.pt'))) >= 2


def test_a_run_recorded_before_a_setting_existed_resumes_to_the_same_weights(runs, tmp_path):
    tok, ref = runs
    run = tmp_path / 'run'
    stopped_run(tok, run)
    assert read_json(run / 'run.json')['identity']['window'] == 0
    as_older_version(run, 'window')
    assert 'window' not in read_json(run / 'run.json')['identity']
    r = run_cli('prior', run, '--tokenizer-run', tok, *PRIOR)
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'resum' in (r.stdout + r.stderr).lower()
    assert sha(run / 'prior.safetensors') == sha(ref / 'prior.safetensors')
    a, b = read_json(run / 'metrics.json')['history'], read_json(ref / 'metrics.json')['history']
    assert a['train_loss'] == b['train_loss'] and a['val'] == b['val']
    assert read_json(run / 'run.json')['identity']['window'] == 0          # the record now names the setting


def test_a_record_lacking_a_setting_without_an_earlier_value_is_still_refused(runs, tmp_path):
    tok, _ = runs
    run = tmp_path / 'run'
    stopped_run(tok, run)
    as_older_version(run, 'window', 'any_context')          # any_context changed what a run draws: no value reproduces the older runs
    before = tree(run)
    r = run_cli('prior', run, '--tokenizer-run', tok, *PRIOR)
    assert r.returncode == 2, r.stderr[-2000:]
    assert 'any_context: None in the directory, 0.5 requested' in r.stderr
    assert 'window:' not in r.stderr                            # the setting with an earlier value is not a difference
    assert tree(run) == before
