"""Training that survives anything: real runs of `fit`, `mono3d train` and the papermill runner, killed for real."""
import hashlib, json, os, random, re, shutil, signal, subprocess, sys, time
from pathlib import Path
import numpy as np
import pytest
import torch
from conftest import run_cli, start_cli, read_json, wait_for
from mono3d.train import TrainConfig, fit
from mono3d.tokenizer import VideoTokenizer
from mono3d.store import ManifestStore

ROOT = Path(__file__).resolve().parent.parent
# a tiny but real configuration: 80 training + 16 held-out videos of 8x32x32; the first 75 % of the steps train on
# 16 clips of 4x16x16 per step, the rest on 8 full videos (so every kill/resume test covers both phases)
TINY = dict(num_samples=96, val_samples=16, frames=8, image_size=32, batch_size=8, channels=8, channel_mults=(1, 2, 2),
            crop_size=16, crop_frames=4, crop_batch_size=16, full_size_fraction=0.25, warmup_steps=5, ckpt_every_steps=5,
            print_every=5, progress_every=0.1, heartbeat_every=0.5, threads=1, bar=False)


def tiny(run_dir, **kw):
    return TrainConfig.from_dict({**TINY, 'epochs': 3, **kw, 'run_dir': str(run_dir)})


def cli_flags(**kw):
    "TINY (+ overrides) as `mono3d train` flags: names with dashes, tuples as comma lists, booleans as --x/--no-x."
    out = []
    for k, v in {**TINY, **kw}.items():
        flag = f'--{k.replace("_", "-")}'
        if isinstance(v, bool): out.append(flag if v else f'--no-{k.replace("_", "-")}')
        else: out += [flag, ','.join(map(str, v)) if isinstance(v, (tuple, list)) else str(v)]
    return out


def sha(p): return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def test_training_loop_runs_loss_decreases_and_reconstruction_improves(tmp_path):
    m = fit(tiny(tmp_path / 'run', epochs=6, workers=0))
    info = read_json(tmp_path / 'run' / 'metrics.json')
    h, plan = info['history'], info['plan']
    losses = h['train_loss']
    assert len(losses) == plan['total'] == info['steps'] and all(map(lambda x: x == x, losses))
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5
    every = plan['total'] // 4
    assert [v['step'] for v in h['val']] == sorted({every, 2 * every, 3 * every, 4 * every, plan['total']})
    # a few tiny steps learn the background and the object's rough place: held-out PSNR rises
    val = h['val']
    assert val[-1]['loss'] < val[0]['loss'] and val[-1]['psnr'] > val[0]['psnr'] + 2, [(v['step'], v['psnr']) for v in val]
    for k in ('psnr', 'blank_psnr', 'fg_psnr', 'ssim', 'centroid_err_px', 'codebook_usage', 'perplexity'): assert k in m
    # the perplexity split: the object's tokens apart from the plain background's, both present in the held-out videos
    assert 0 < m['object_token_share'] < 1 and m['object_perplexity'] >= 1 and m['background_perplexity'] >= 1
    assert m['perplexity'] <= m['object_perplexity'] + m['background_perplexity'] + 1    # exp(H) of a two-part mixture is at most the sum
    assert info['final']['object_perplexity'] == m['object_perplexity']


def test_clip_phase_then_full_videos_is_recorded(tmp_path):
    "Clips for the first steps, full-size videos for the last `full_size_fraction`, both recorded; a step's batch by its number."
    fit(tiny(tmp_path / 'run', epochs=4, workers=0))
    m = read_json(tmp_path / 'run' / 'metrics.json')
    plan, ph = m['plan'], {name: dict(p) for name, p in m['timing']['phases'].items()}
    assert ph['clip'].pop('seconds') > 0 and ph['full'].pop('seconds') > 0
    clips = plan['clip_steps']
    assert clips == round(plan['total'] * 0.75)
    assert ph == {'clip': {'steps': clips, 'videos': clips * 16, 'shape': [4, 16, 16]},
                  'full': {'steps': plan['total'] - clips, 'videos': (plan['total'] - clips) * 8, 'shape': [8, 32, 32]}}
    # crop_size 0 and crop_frames 0: every step sees full videos
    fit(tiny(tmp_path / 'full', epochs=1, crop_size=0, crop_frames=0, workers=0))
    ph = read_json(tmp_path / 'full' / 'metrics.json')['timing']['phases']
    assert 'clip' not in ph and ph['full']['steps'] == read_json(tmp_path / 'full' / 'metrics.json')['plan']['total']


def test_checkpoints_created_at_intervals_and_rotated(tmp_path):
    run = tmp_path / 'run'
    fit(tiny(run, epochs=3, ckpt_every_steps=4, keep_last=2, workers=0))
    info = read_json(run / 'metrics.json')
    total = info['plan']['total']
    assert info['history']['checkpoints'] == sorted(set(range(4, total + 1, 4)) | {total})    # every 4 steps and at the end
    store = ManifestStore(run / 'checkpoints', prefix='step_', kind='checkpoint')
    kept = set(sorted(set(range(4, total + 1, 4)) | {total})[-2:])
    assert kept <= set(store.indices()) <= kept | {info['best_step']}          # the newest two, and the best one if it was saved
    for i in store.indices():
        m, why = store.validate(i)
        assert m is not None, why
        ck = torch.load(store.path(i, '.pt'), weights_only=True)
        assert ck['step'] == i and set(ck) >= {'model', 'optimizer', 'scheduler', 'step', 'rng', 'identity', 'config', 'history', 'plan'}


def test_final_outputs_progress_and_plots(tmp_path):
    run = tmp_path / 'run'
    fit(tiny(run, epochs=2))
    for f in ('tokenizer.safetensors', 'tokenizer.json', 'metrics.json', 'loss_curve.png', 'recon.png', 'recon.gif', 'run.json',
              'PROGRESS.txt', 'progress.json', 'status.html'):
        assert (run / f).is_file(), f
    assert (run / 'loss_curve.png').read_bytes()[:4] == b'\x89PNG' and (run / 'recon.gif').read_bytes()[:4] == b'GIF8'
    tok = VideoTokenizer.load(run / 'tokenizer.safetensors')
    assert tok.config.channels == 8
    total = read_json(run / 'metrics.json')['plan']['total']
    txt = (run / 'PROGRESS.txt').read_text()
    assert f'Completed: {total}/{total} (100.0%) steps' in txt and 'COMPLETE' in txt.splitlines()
    s = read_json(run / 'progress.json')
    for k in ('epoch', 'loss', 'val_psnr', 'blank_psnr', 'val_ssim', 'codebook_usage', 'perplexity'): assert k in s['metrics'], k
    assert s['last_checkpoint'] == f'step_{total:08d}.pt'
    assert 'data:image/gif;base64,' in (run / 'status.html').read_text()


def test_progress_is_visible_while_training(tmp_path):
    run = tmp_path / 'run'
    log = open(tmp_path / 'out.txt', 'w')
    proc = start_cli('train', run, *cli_flags(epochs=12), stdout=log, stderr=subprocess.STDOUT)
    seen = []
    while proc.poll() is None:
        try: t = (run / 'PROGRESS.txt').read_text()
        except FileNotFoundError: t = None
        if t and 'train' in t.splitlines()[0] and (not seen or t != seen[-1]): seen.append(t)
        time.sleep(0.05)
    assert proc.wait() == 0, (tmp_path / 'out.txt').read_text()[-2000:]
    total = read_json(run / 'metrics.json')['plan']['total']
    running = [t for t in seen if 'Status: RUNNING' in t]
    steps = [int(re.search(rf'Completed: (\d+)/{total}', t).group(1)) for t in running]
    assert len(running) >= 3 and steps == sorted(steps) and steps[-1] > steps[0]
    assert all('ETA:' in t and 'Last update:' in t for t in running)
    out = (tmp_path / 'out.txt').read_text()
    assert re.search(rf'step\s+5/{total}', out) and 'COMPLETE' in (run / 'PROGRESS.txt').read_text()


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    "An uninterrupted CLI run; killed and resumed runs must end with the same bytes."
    run = tmp_path_factory.mktemp('ref') / 'run'
    r = run_cli('train', run, *cli_flags(epochs=12))
    assert r.returncode == 0, r.stderr[-3000:]
    return run


def test_sigkill_at_random_moments_then_resume_is_bit_identical(tmp_path, reference):
    "SIGKILL `mono3d train` (with its batch worker) at random moments; the resumed run ends with the reference's bytes."
    run, rng, kills = tmp_path / 'run', random.Random(7), 0
    shutil.copytree(reference / 'data', run / 'data')     # same dataset bytes, so only training is exercised
    flags = cli_flags(epochs=12, data_dir=str(run / 'data'))
    while kills < 3:
        proc = start_cli('train', run, *flags, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: (run / 'progress.json').is_file() and read_json(run / 'progress.json').get('pid') == proc.pid
                 and read_json(run / 'progress.json')['job'] == 'train', proc=proc, timeout=120)
        time.sleep(rng.uniform(0.2, 1.5))
        if proc.poll() is not None: break
        os.kill(proc.pid, signal.SIGKILL); proc.wait(); kills += 1
        # the batch workers die with it, so nothing holds the directory's lock or reads on for it
        wait_for(lambda: subprocess.run(['pgrep', '-f', f'train {run}'], capture_output=True).returncode != 0, timeout=30)
    assert kills >= 3, 'the run finished before it was killed three times'
    r = run_cli('train', run, *flags)
    assert r.returncode == 0, r.stderr[-3000:]
    assert sha(run / 'tokenizer.safetensors') == sha(reference / 'tokenizer.safetensors')
    a, b = read_json(run / 'metrics.json')['history'], read_json(reference / 'metrics.json')['history']
    assert a['train_loss'] == b['train_loss'] and a['val'] == b['val']
    assert read_json(run / 'progress.json')['restarts'] >= 3


def test_batch_workers_do_not_change_the_bytes(tmp_path, reference):
    "A step's batch is a pure function of (seed, step, rank): no workers, or two, train to the reference's weights."
    for w in (0, 2):
        run = tmp_path / f'w{w}'
        shutil.copytree(reference / 'data', run / 'data')
        r = run_cli('train', run, *cli_flags(epochs=12, data_dir=str(run / 'data'), workers=w))
        assert r.returncode == 0, r.stderr[-3000:]
        assert sha(run / 'tokenizer.safetensors') == sha(reference / 'tokenizer.safetensors'), f'workers={w}'


def test_sigterm_checkpoints_and_preempts_within_seconds(tmp_path, reference):
    run = tmp_path / 'run'
    shutil.copytree(reference / 'data', run / 'data')
    flags = cli_flags(epochs=12, data_dir=str(run / 'data'), ckpt_every_steps=1000)
    proc = start_cli('train', run, *flags, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (run / 'progress.json').is_file() and read_json(run / 'progress.json')['job'] == 'train'
             and read_json(run / 'progress.json')['done'] >= 13, proc=proc, timeout=120)
    t0 = time.monotonic(); proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 143 and time.monotonic() - t0 < 10, err[-2000:]
    s = read_json(run / 'progress.json')
    assert s['status'] == 'PREEMPTED'
    store = ManifestStore(run / 'checkpoints', prefix='step_', kind='checkpoint')
    assert store.latest()['index'] == s['done']                       # a checkpoint of the step it stopped at
    r = run_cli('train', run, *flags)
    assert r.returncode == 0 and sha(run / 'tokenizer.safetensors') == sha(reference / 'tokenizer.safetensors')


def test_corrupt_newest_checkpoint_falls_back_with_a_warning(tmp_path, reference):
    run = tmp_path / 'run'
    shutil.copytree(reference / 'data', run / 'data')
    flags = cli_flags(epochs=12, data_dir=str(run / 'data'))
    proc = start_cli('train', run, *flags, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: (run / 'progress.json').is_file() and read_json(run / 'progress.json')['job'] == 'train'
             and read_json(run / 'progress.json')['done'] >= 26, proc=proc, timeout=120)
    proc.send_signal(signal.SIGTERM); proc.wait(timeout=60)
    store = ManifestStore(run / 'checkpoints', prefix='step_', kind='checkpoint')
    newest = store.indices()[-1]
    p = store.path(newest, '.pt'); raw = bytearray(p.read_bytes()); raw[len(raw) // 2] ^= 0xFF; p.write_bytes(bytes(raw))
    r = run_cli('train', run, *flags)
    assert r.returncode == 0, r.stderr[-3000:]
    assert re.search(rf'WARNING: newest checkpoint step_{newest:08d} is invalid .*falling back', r.stderr)
    assert sha(run / 'tokenizer.safetensors') == sha(reference / 'tokenizer.safetensors')


def test_non_finite_loss_fails_and_keeps_the_last_good_checkpoint(tmp_path):
    run = tmp_path / 'run'
    r = run_cli('train', run, *cli_flags(epochs=3, lr=1e12, warmup_steps=0, ckpt_every_steps=1))
    assert r.returncode == 1, r.stderr[-2000:]
    s = read_json(run / 'progress.json')
    assert s['status'] == 'FAILED' and re.search(r'non-finite loss at step \d+', s['message'])
    bad = int(re.search(r'non-finite loss at step (\d+)', s['message']).group(1))
    assert 'non-finite loss at step' in r.stderr and 'Traceback' in (run / 'error.log').read_text()
    store = ManifestStore(run / 'checkpoints', prefix='step_', kind='checkpoint')
    last = store.latest()
    if bad > 1:
        assert last is not None and last['index'] < bad
        ck = torch.load(store.path(last['index'], '.pt'), weights_only=True)
        assert all(torch.isfinite(v).all() for v in ck['model'].values())


def test_disk_full_keeps_the_previous_checkpoint_and_fails_clearly(tmp_path):
    mnt = tmp_path / 'small'; mnt.mkdir()
    if subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', str(mnt)], capture_output=True).returncode != 0:
        pytest.skip('cannot mount a small tmpfs here (needs root); ENOSPC is not simulated')
    try:
        data = tmp_path / 'data'
        assert run_cli('generate', data, '--num-samples', '96', '--frames', '8', '--image-size', '32', '--no-bar').returncode == 0
        run = mnt / 'run'
        # the first checkpoints fit; as the run directory fills up a later one cannot be written
        r = run_cli('train', run, *cli_flags(epochs=40, data_dir=str(data), ckpt_every_steps=1, keep_last=1000))
        assert r.returncode == 1, r.stderr[-2000:]
        s = read_json(run / 'progress.json')
        assert s["status"] == "FAILED" and "No space left on device" in s["message"], (s, r.stderr[-3000:])
        assert 'No space left on device' in r.stderr
        store = ManifestStore(run / 'checkpoints', prefix='step_', kind='checkpoint')
        assert store.latest() is not None and [p for p in (run / 'checkpoints').iterdir() if '.tmp-' in p.name] == []
    finally:
        subprocess.run(['umount', str(mnt)])


def _snapshot(d):
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(Path(d).rglob('*')) if p.is_file()}


def test_changed_architecture_or_data_is_refused_and_epochs_extend(tmp_path):
    run = tmp_path / 'run'
    assert run_cli('train', run, *cli_flags(epochs=2)).returncode == 0
    before = _snapshot(run)
    r = run_cli('train', run, *cli_flags(epochs=2, channels=16, frames=16))
    assert r.returncode == 2 and 'channels: 8 in the directory, 16 requested' in r.stderr and 'frames' in r.stderr
    assert 'Traceback' not in r.stderr
    assert _snapshot(run) == before
    r = run_cli('train', run, *cli_flags(epochs=2))                      # finished: COMPLETE without retraining
    assert r.returncode == 0 and 'already complete' in r.stdout
    assert (run / 'tokenizer.safetensors').read_bytes() == before['tokenizer.safetensors']
    steps = read_json(run / 'metrics.json')['steps']
    r = run_cli('train', run, *cli_flags(epochs=3))                      # more epochs: continues from where it ended
    assert r.returncode == 0, r.stderr[-2000:]
    info = read_json(run / 'metrics.json')
    assert info['steps'] > steps and len(info['history']['train_loss']) == info['steps']
    assert read_json(run / 'progress.json')['done'] == info['steps']


@pytest.mark.parametrize('bad, message', [
    ({'batch_size': 0}, 'batch_size must be an integer in [1, 65536], got 0'),
    ({'epochs': 'ten'}, "epochs must be an integer in [1, 100000], got 'ten'"),
    ({'lr': -1.0}, 'lr must be a finite number > 0, got -1.0'),
    ({'val_samples': 96}, 'val_samples must be less than num_samples=96, got 96'),
    ({'ckpt_every_minutes': 0}, 'ckpt_every_minutes must be a finite number > 0, got 0'),
    ({'quantizer': 'vq'}, "quantizer must be one of fsq, lfq, got 'vq'"),
    ({'bogus': 1}, "unknown parameter 'bogus'"),
    ({'crop_size': 18}, 'crop_size must be 0 (full frames) or a multiple of the spatial factor 4'),
    ({'crop_frames': 5}, 'crop_frames must be 0 (all frames) or a multiple of the temporal factor 2'),
    ({'full_size_fraction': 1.5}, 'full_size_fraction must be a finite number in [0, 1], got 1.5'),
    ({'heartbeat_every': float('inf')}, 'heartbeat_every must be a finite number > 0, got inf'),
    ({'levels': (100000, 100000, 100000)}, 'make a codebook of 1,000,000,000,000,000 codes'),
])
def test_bad_config_values_give_clear_errors(tmp_path, bad, message):
    with pytest.raises((ValueError, TypeError)) as e: tiny(tmp_path / 'run', **bad)
    assert message in str(e.value)
    assert not (tmp_path / 'run').exists()


def test_python_m_entry_point_is_the_same_job(tmp_path):
    r = subprocess.run([sys.executable, '-m', 'mono3d.train', str(tmp_path / 'run'), *cli_flags(epochs=1)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'COMPLETE' in (tmp_path / 'run' / 'PROGRESS.txt').read_text()


def test_compile_trains_through_the_switch_from_clips_to_full_videos(tmp_path):
    "--compile: the clip steps and the full-size steps each get their graph; the full-size backward runs (a dynamic graph failed there)."
    run = tmp_path / 'run'
    r = run_cli('train', run, *cli_flags(steps=4, full_size_fraction=0.5, compile=True, res_blocks=0))     # a shallow model compiles faster
    assert r.returncode == 0, r.stderr[-3000:]
    t = read_json(run / 'metrics.json')['timing']
    assert t['compile'] is True and t['phases']['clip']['steps'] == 2 and t['phases']['full']['steps'] == 2
    assert np.isfinite(read_json(run / 'metrics.json')['final']['psnr'])


def _papermill(out_nb, *params):
    cmd = [sys.executable, '-m', 'papermill', str(ROOT / 'nbs' / 'train.ipynb'), str(out_nb), '--cwd', str(ROOT / 'nbs')]
    for k, v in params: cmd += ['-p', k, str(v)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


def test_papermill_runner_trains_resumes_and_rejects_bad_parameters(tmp_path):
    run = tmp_path / 'run'
    p = [('run_dir', run), ('num_samples', 96), ('val_samples', 16), ('frames', 8), ('image_size', 32),
         ('channels', 8), ('crop_size', 16), ('crop_frames', 4), ('crop_batch_size', 16), ('epochs', 2), ('print_every', 5)]
    r = _papermill(tmp_path / 'out.ipynb', *p)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (run / 'tokenizer.safetensors').is_file() and 'COMPLETE' in (run / 'PROGRESS.txt').read_text()
    assert (tmp_path / 'out.ipynb').stat().st_size < 400_000
    outs = [o for c in json.loads((tmp_path / 'out.ipynb').read_text())['cells'] for o in c.get('outputs', [])]
    # no bar redrawn as stderr chunks between the lines (a widget bar where ipywidgets is installed, else none)
    assert [o for o in outs if o.get('name') == 'stderr'] == [], [''.join(o['text'])[:80] for o in outs if o.get('name') == 'stderr']
    first = sha(run / 'tokenizer.safetensors')
    r = _papermill(tmp_path / 'out2.ipynb', *p)                             # the same command again: nothing to do
    assert r.returncode == 0 and sha(run / 'tokenizer.safetensors') == first
    assert 'already complete' in (tmp_path / 'out2.ipynb').read_text()
    r = _papermill(tmp_path / 'out3.ipynb', *[x for x in p if x[0] != 'epochs'], ('epochs', -1))
    assert r.returncode != 0 and 'epochs must be an integer in [1, 100000], got -1' in (r.stderr + (tmp_path / 'out3.ipynb').read_text())


def test_papermill_parameters_are_exactly_the_config_fields():
    "The runners' parameters cell names every flat config field (as None: the config's default) and nothing else."
    from mono3d.evaluate import EvalConfig
    from mono3d.prior import PriorConfig
    for nb, cls in (('train.ipynb', TrainConfig), ('evaluate_run.ipynb', EvalConfig), ('prior.ipynb', PriorConfig)):
        cells = json.loads((ROOT / 'nbs' / nb).read_text())['cells']
        params = [c for c in cells if 'parameters' in c.get('metadata', {}).get('tags', [])]
        assert len(params) == 1, nb
        lines = [l.strip() for l in ''.join(params[0]['source']).splitlines() if l.strip() and not l.strip().startswith('#')]
        names = [l.split('=')[0].strip() for l in lines]
        assert names == cls.flat_names() + ['config_file'], nb
        assert all(l.split('=', 1)[1].strip() == 'None' for l in lines), f'{nb}: a default was copied into the notebook'


def test_prelaunch_checklist_blocks_a_production_run_when_a_check_fails(tmp_path):
    failing = tmp_path / 'test_fails.py'
    failing.write_text('def test_resume_is_broken():\n    assert False, "resume broken"\n')
    with pytest.raises(RuntimeError, match='pre-launch checklist failed'):
        fit(tiny(tmp_path / 'run', production=True, prelaunch_tests=str(failing)))
    report = (tmp_path / 'run' / 'prelaunch.txt').read_text()
    assert 'resume broken' in report and not (tmp_path / 'run' / 'checkpoints').exists()
    passing = tmp_path / 'test_ok.py'
    passing.write_text('def test_fine():\n    assert True\n')
    fit(tiny(tmp_path / 'run', production=True, prelaunch_tests=str(passing), epochs=1))
    assert 'passed' in (tmp_path / 'run' / 'prelaunch.txt').read_text()


def test_minutes_budget_sizes_the_plan_records_it_and_resumes_exactly(tmp_path, reference):
    "--minutes: the steps are sized from the first steps' measured time and recorded; a killed run resumes to the same weights."
    run = tmp_path / 'run'
    shutil.copytree(reference / 'data', run / 'data')
    flags = cli_flags(data_dir=str(run / 'data'), minutes=0.15, warmup_steps=30, ckpt_every_steps=4)
    p = start_cli('train', run, *flags, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: (run / 'run.json').is_file() and 'plan' in read_json(run / 'run.json')
             and ManifestStore(run / 'checkpoints', 'step_', kind='checkpoint').indices(), proc=p, timeout=120)
    plan = read_json(run / 'run.json')['plan']
    time.sleep(1.0)
    os.kill(p.pid, signal.SIGKILL); p.wait()
    r = run_cli('train', run, *flags)
    assert r.returncode == 0, r.stderr[-3000:]
    m = read_json(run / 'metrics.json')
    assert m['plan'] == plan and m['steps'] == plan['total'] and plan['total'] > 20
    # the recorded plan is the plan: the same steps as a run told that number of steps from the start
    same = tmp_path / 'steps'
    shutil.copytree(reference / 'data', same / 'data')
    r = run_cli('train', same, *cli_flags(data_dir=str(same / 'data'), steps=plan['total'], warmup_steps=30, ckpt_every_steps=4))
    assert r.returncode == 0, r.stderr[-3000:]
    assert read_json(same / 'metrics.json')['plan'] == plan
    assert sha(run / 'tokenizer.safetensors') == sha(same / 'tokenizer.safetensors')


def test_a_minutes_run_shows_an_unknown_total_until_it_has_a_plan(tmp_path, reference):
    "Before a --minutes run has measured its plan its total is unknown ('?'), never a placeholder; after it, the plan's total."
    run = tmp_path / 'run'
    shutil.copytree(reference / 'data', run / 'data')
    flags = cli_flags(data_dir=str(run / 'data'), minutes=0.1, warmup_steps=30, ckpt_every_steps=50, heartbeat_every=0.05)
    p = start_cli('train', run, *flags, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen, probe = set(), tmp_path / 'probe'
    def planned():
        if (run / 'progress.json').is_file():
            try:
                raw = (run / 'progress.json').read_bytes()
                t = json.loads(raw)['total']
                seen.add((t, (run / 'PROGRESS.txt').read_text().split('Completed: ')[1].split(' ')[0]))
                if t == 0 and not probe.exists(): probe.mkdir(); (probe / 'progress.json').write_bytes(raw)
            except (ValueError, KeyError, IndexError, OSError): pass
        return (run / 'run.json').is_file() and 'plan' in read_json(run / 'run.json')
    wait_for(planned, proc=p, timeout=120)
    assert p.wait(timeout=120) == 0
    total = read_json(run / 'run.json')['plan']['total']
    assert any(t == 0 and c.endswith('/?') for t, c in seen), seen          # the probe, read from the files as a viewer does
    assert all(t in (0, total) for t, c in seen), seen
    assert read_json(run / 'progress.json')['total'] == total
    shown = run_cli('status', probe)                                         # `mono3d status` on the probe's own file
    assert re.search(r'progress: \d+/\? steps', shown.stdout), shown.stdout


def test_a_small_run_needs_no_val_samples(tmp_path):
    "val_samples defaults to min(256, 10% of num_samples), so a 64-video run works without it."
    r = run_cli('train', tmp_path / 'run', '--num-samples', '64', '--frames', '8', '--image-size', '32', '--channels', '8',
                '--channel-mults', '1,2,2', '--crop-size', '16', '--crop-frames', '4', '--crop-batch-size', '8', '--epochs', '1',
                '--threads', '1', '--no-bar')
    assert r.returncode == 0, r.stderr[-2000:]
    m = read_json(tmp_path / 'run' / 'metrics.json')
    assert (m['train_videos'], m['val_videos']) == (58, 6)
