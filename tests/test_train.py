"""Training that survives anything: real runs of `fit`, `mono3d train` and the papermill runner, killed for real."""
import hashlib, json, os, random, re, shutil, signal, subprocess, sys, time
from pathlib import Path
import pytest
import torch
from conftest import run_cli, start_cli, read_json, wait_for
from mono3d.train import TrainConfig, fit
from mono3d.tokenizer import VideoTokenizer
from mono3d.checkpoint import CheckpointStore

ROOT = Path(__file__).resolve().parent.parent
# a tiny but real configuration: 80 training + 16 held-out videos of 8x32x32, 10 steps per epoch; the first 90 % of the
# steps train on two object-centred 16x16 crops per video, the rest on full frames (so every kill/resume test covers both)
TINY = dict(num_samples=96, val_samples=16, frames=8, image_size=32, batch_size=8, channels=8, crop_size=16,
            channel_mults=(1, 2, 2), warmup_steps=5, ckpt_every_steps=5, print_every=5,
            progress_every=0.1, heartbeat_every=0.5, threads=1)


def tiny(run_dir, **kw):
    return TrainConfig.from_dict({**TINY, 'epochs': 3, **kw, 'run_dir': str(run_dir)})


def cli_flags(**kw):
    "TINY (+ overrides) as `mono3d train` flags: names with dashes, tuples as comma lists."
    out = []
    for k, v in {**TINY, **kw}.items():
        out += [f'--{k.replace("_", "-")}', ','.join(map(str, v)) if isinstance(v, (tuple, list)) else str(v)]
    return out


def sha(p): return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def test_training_loop_runs_loss_decreases_and_reconstruction_improves(tmp_path):
    m = fit(tiny(tmp_path / 'run', epochs=4))
    h = read_json(tmp_path / 'run' / 'metrics.json')['history']
    losses = h['train_loss']
    assert len(losses) == 40 and all(map(lambda x: x == x, losses))
    assert sum(losses[-10:]) / 10 < 0.7 * sum(losses[:10]) / 10
    val = h['val']
    assert [v['step'] for v in val] == [10, 20, 30, 40]
    # 40 tiny steps learn the background and the object's rough place, not its colour: held-out PSNR rises
    # (measured -7.1 -> -1.8 dB against blank) while foreground PSNR stays near 9-10 dB with any recipe
    assert val[-1]['loss'] < val[0]['loss'] and val[-1]['psnr'] > val[0]['psnr'] + 2
    for k in ('psnr', 'blank_psnr', 'fg_psnr', 'ssim', 'centroid_err_px', 'codebook_usage', 'perplexity'): assert k in m


def test_crop_phase_then_full_frames_is_recorded(tmp_path):
    "Object-centred crops for the first steps, full frames for the last `full_size_fraction`, both recorded."
    fit(tiny(tmp_path / 'run', epochs=4, full_size_fraction=0.25, crops_per_video=3))
    m = read_json(tmp_path / 'run' / 'metrics.json')
    ph = {name: dict(p) for name, p in m['timing']['phases'].items()}
    assert ph['crop'].pop('seconds') > 0 and ph['full'].pop('seconds') > 0
    assert ph == {'crop': {'steps': 30, 'samples': 30 * 8 * 3, 'shape': [8, 16, 16]},
                  'full': {'steps': 10, 'samples': 10 * 8, 'shape': [8, 32, 32]}}
    # with crop_size 0 every step sees full frames
    fit(tiny(tmp_path / 'full', epochs=1, crop_size=0))
    ph = read_json(tmp_path / 'full' / 'metrics.json')['timing']['phases']
    assert 'crop' not in ph and ph['full']['steps'] == 10


def test_checkpoints_created_at_intervals_and_rotated(tmp_path):
    run = tmp_path / 'run'
    fit(tiny(run, epochs=3, ckpt_every_steps=4, keep_last=2))
    h = read_json(run / 'metrics.json')['history']
    assert h['checkpoints'] == [4, 8, 10, 12, 16, 20, 24, 28, 30]      # every 4 steps, at each epoch end, at the end
    store = CheckpointStore(run / 'checkpoints', prefix='step_')
    best = read_json(run / 'metrics.json')['best_step']
    assert set(store.indices()) == {28, 30} | {best}
    for i in store.indices():
        m, why = store.validate(i)
        assert m is not None, why
        ck = torch.load(store.path(i, '.pt'), weights_only=True)
        assert ck['step'] == i and set(ck) >= {'model', 'optimizer', 'scheduler', 'step', 'epoch', 'cursor', 'rng', 'config', 'history'}


def test_final_outputs_progress_and_plots(tmp_path):
    run = tmp_path / 'run'
    fit(tiny(run, epochs=2))
    for f in ('tokenizer.safetensors', 'tokenizer.json', 'metrics.json', 'loss_curve.png', 'recon.png', 'run.json', 'PROGRESS.txt', 'progress.json'):
        assert (run / f).is_file(), f
    assert (run / 'loss_curve.png').read_bytes()[:4] == b'\x89PNG'
    tok = VideoTokenizer.load(run / 'tokenizer.safetensors')
    assert tok.config.channels == 8
    txt = (run / 'PROGRESS.txt').read_text()
    assert 'Completed: 20/20 (100.0%) steps' in txt and 'COMPLETE' in txt.splitlines()
    s = read_json(run / 'progress.json')
    for k in ('epoch', 'loss', 'val_psnr', 'blank_psnr', 'codebook_usage'): assert k in s['metrics'], k
    assert s['last_checkpoint'] == 'step_00000020.pt'


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
    running = [t for t in seen if 'Status: RUNNING' in t]
    steps = [int(re.search(r'Completed: (\d+)/120', t).group(1)) for t in running]
    assert len(running) >= 3 and steps == sorted(steps) and steps[-1] > steps[0]
    assert all('ETA:' in t and 'Last update:' in t for t in running)
    out = (tmp_path / 'out.txt').read_text()
    assert re.search(r'step\s+5/120', out) and 'COMPLETE' in (run / 'PROGRESS.txt').read_text()


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    "An uninterrupted CLI run; killed and resumed runs must end with the same bytes."
    run = tmp_path_factory.mktemp('ref') / 'run'
    r = run_cli('train', run, *cli_flags(epochs=12))
    assert r.returncode == 0, r.stderr[-3000:]
    return run


def test_sigkill_at_random_moments_then_resume_is_bit_identical(tmp_path, reference):
    run, rng, kills = tmp_path / 'run', random.Random(7), 0
    shutil.copytree(reference / 'data', run / 'data')     # same dataset bytes, so only training is exercised
    flags = cli_flags(epochs=12, data_dir=str(run / 'data'))
    ref_flags = cli_flags(epochs=12)
    while kills < 3:
        proc = start_cli('train', run, *flags, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: (run / 'progress.json').is_file() and read_json(run / 'progress.json').get('pid') == proc.pid
                 and read_json(run / 'progress.json')['job'] == 'train', timeout=120)
        time.sleep(rng.uniform(0.2, 1.5))
        if proc.poll() is not None: break
        os.kill(proc.pid, signal.SIGKILL); proc.wait(); kills += 1
    assert kills >= 3, 'the run finished before it was killed three times'
    r = run_cli('train', run, *flags)
    assert r.returncode == 0, r.stderr[-3000:]
    assert sha(run / 'tokenizer.safetensors') == sha(reference / 'tokenizer.safetensors')
    a, b = read_json(run / 'metrics.json')['history'], read_json(reference / 'metrics.json')['history']
    assert a['train_loss'] == b['train_loss']
    assert read_json(run / 'progress.json')['restarts'] >= 3


def test_sigterm_checkpoints_and_preempts_within_seconds(tmp_path, reference):
    run = tmp_path / 'run'
    shutil.copytree(reference / 'data', run / 'data')
    flags = cli_flags(epochs=12, data_dir=str(run / 'data'), ckpt_every_steps=1000)
    proc = start_cli('train', run, *flags, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (run / 'progress.json').is_file() and read_json(run / 'progress.json')['job'] == 'train'
             and read_json(run / 'progress.json')['done'] >= 13, timeout=120)
    t0 = time.monotonic(); proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 143 and time.monotonic() - t0 < 10, err[-2000:]
    s = read_json(run / 'progress.json')
    assert s['status'] == 'PREEMPTED'
    store = CheckpointStore(run / 'checkpoints', prefix='step_')
    assert store.latest()['index'] == s['done'] and s['done'] not in (10, 20)   # a checkpoint of the step it stopped at
    r = run_cli('train', run, *flags)
    assert r.returncode == 0 and sha(run / 'tokenizer.safetensors') == sha(reference / 'tokenizer.safetensors')


def test_corrupt_newest_checkpoint_falls_back_with_a_warning(tmp_path, reference):
    run = tmp_path / 'run'
    shutil.copytree(reference / 'data', run / 'data')
    flags = cli_flags(epochs=12, data_dir=str(run / 'data'))
    proc = start_cli('train', run, *flags, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: (run / 'progress.json').is_file() and read_json(run / 'progress.json')['job'] == 'train'
             and read_json(run / 'progress.json')['done'] >= 26, timeout=120)
    proc.send_signal(signal.SIGTERM); proc.wait(timeout=60)
    store = CheckpointStore(run / 'checkpoints', prefix='step_')
    newest = store.indices()[-1]
    p = store.path(newest, '.pt'); raw = bytearray(p.read_bytes()); raw[len(raw) // 2] ^= 0xFF; p.write_bytes(bytes(raw))
    r = run_cli('train', run, *flags)
    assert r.returncode == 0, r.stderr[-3000:]
    assert re.search(rf'WARNING: newest checkpoint step_{newest:08d} is invalid .*falling back', r.stderr)
    assert sha(run / 'tokenizer.safetensors') == sha(reference / 'tokenizer.safetensors')


def test_non_finite_loss_fails_and_keeps_the_last_good_checkpoint(tmp_path):
    run = tmp_path / 'run'
    r = run_cli('train', run, *cli_flags(epochs=3, lr=1e12, warmup_steps=0, ckpt_every_steps=1))
    assert r.returncode == 1
    s = read_json(run / 'progress.json')
    assert s['status'] == 'FAILED' and re.search(r'non-finite loss at step \d+', s['message'])
    bad = int(re.search(r'non-finite loss at step (\d+)', s['message']).group(1))
    assert 'non-finite loss at step' in r.stderr
    store = CheckpointStore(run / 'checkpoints', prefix='step_')
    last = store.latest()
    assert last is not None and last['index'] < bad
    ck = torch.load(store.path(last['index'], '.pt'), weights_only=True)
    assert all(torch.isfinite(v).all() for v in ck['model'].values())


def test_disk_full_keeps_the_previous_checkpoint_and_fails_clearly(tmp_path):
    mnt = tmp_path / 'small'; mnt.mkdir()
    if subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', str(mnt)], capture_output=True).returncode != 0:
        pytest.skip('cannot mount a small tmpfs here (needs root); ENOSPC is not simulated')
    try:
        data = tmp_path / 'data'
        run = mnt / 'run'
        # the first checkpoints fit; as the run directory fills up a later one cannot be written
        r = run_cli('train', run, *cli_flags(epochs=40, data_dir=str(data), ckpt_every_steps=1, keep_last=1000))
        assert r.returncode == 1, r.stderr[-2000:]
        s = read_json(run / 'progress.json')
        assert s['status'] == 'FAILED' and 'No space left on device' in s['message']
        assert 'No space left on device' in r.stderr
        store = CheckpointStore(run / 'checkpoints', prefix='step_')
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
    assert r.returncode == 2 and 'channels' in r.stderr and 'frames' in r.stderr and 'Traceback' not in r.stderr
    assert _snapshot(run) == before
    r = run_cli('train', run, *cli_flags(epochs=2))                      # finished: COMPLETE without retraining
    assert r.returncode == 0 and 'already complete' in r.stdout
    assert _snapshot(run).keys() == before.keys() and (run / 'tokenizer.safetensors').read_bytes() == before['tokenizer.safetensors']
    r = run_cli('train', run, *cli_flags(epochs=3))                      # more epochs: continues from step 20
    assert r.returncode == 0
    h = read_json(run / 'metrics.json')['history']
    assert len(h['train_loss']) == 30 and read_json(run / 'progress.json')['done'] == 30


def test_a_run_from_before_crops_resumes_only_as_full_frames(tmp_path):
    "run.json of a run made before the crop keys existed (they are removed here): it trained on full frames."
    run = tmp_path / 'run'
    assert run_cli('train', run, *cli_flags(epochs=1, crop_size=0)).returncode == 0
    info = read_json(run / 'run.json')
    for k in ('crop_size', 'crops_per_video', 'full_size_fraction'): del info['config'][k]
    (run / 'run.json').write_text(json.dumps(info))
    r = run_cli('train', run, *cli_flags(epochs=2))                       # TINY crops: a different recipe
    assert r.returncode == 2 and 'crop_size: 0 in the run, 16 requested' in r.stderr
    r = run_cli('train', run, *cli_flags(epochs=2, crop_size=0))          # full frames: the same run, extended
    assert r.returncode == 0, r.stderr[-2000:]
    assert read_json(run / 'progress.json')['done'] == 20


@pytest.mark.parametrize('bad, message', [
    ({'batch_size': 0}, 'batch_size must be an integer >= 1, got 0'),
    ({'epochs': 'ten'}, "epochs must be an integer >= 1, got 'ten'"),
    ({'lr': -1.0}, 'lr must be a finite number > 0, got -1.0'),
    ({'val_samples': 96}, 'val_samples must be'),
    ({'ckpt_every_minutes': 0}, 'ckpt_every_minutes must be a finite number > 0, got 0'),
    ({'quantizer': 'vq'}, "quantizer must be one of ('fsq', 'lfq'), got 'vq'"),
    ({'bogus': 1}, "unknown parameter 'bogus'"),
    ({'crop_size': 18}, 'crop_size must be 0 (full frames) or a multiple of the spatial factor 4, got 18'),
    ({'crops_per_video': 0}, 'crops_per_video must be an integer >= 1, got 0'),
    ({'full_size_fraction': 1.5}, 'full_size_fraction must be a number in [0, 1], got 1.5'),
])
def test_bad_config_values_give_clear_errors(tmp_path, bad, message):
    with pytest.raises((ValueError, TypeError)) as e: tiny(tmp_path / 'run', **bad)
    assert message in str(e.value)
    assert not (tmp_path / 'run').exists()


def test_python_m_entry_point_is_the_same_job(tmp_path):
    r = subprocess.run([sys.executable, '-m', 'mono3d.train', str(tmp_path / 'run'), *cli_flags(epochs=1)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'COMPLETE' in (tmp_path / 'run' / 'PROGRESS.txt').read_text()


def _papermill(out_nb, *params):
    cmd = [sys.executable, '-m', 'papermill', str(ROOT / 'nbs' / 'train.ipynb'), str(out_nb), '--cwd', str(ROOT / 'nbs')]
    for k, v in params: cmd += ['-p', k, str(v)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


def test_papermill_runner_trains_resumes_and_rejects_bad_parameters(tmp_path):
    run = tmp_path / 'run'
    p = [('run_dir', run), ('num_samples', 96), ('val_samples', 16), ('frames', 8), ('image_size', 32),
         ('channels', 8), ('epochs', 2), ('print_every', 5)]
    r = _papermill(tmp_path / 'out.ipynb', *p)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (run / 'tokenizer.safetensors').is_file() and 'COMPLETE' in (run / 'PROGRESS.txt').read_text()
    assert (tmp_path / 'out.ipynb').stat().st_size < 400_000
    first = sha(run / 'tokenizer.safetensors')
    r = _papermill(tmp_path / 'out2.ipynb', *p)                             # the same command again: nothing to do
    assert r.returncode == 0 and sha(run / 'tokenizer.safetensors') == first
    assert 'already complete' in (tmp_path / 'out2.ipynb').read_text()
    r = _papermill(tmp_path / 'out3.ipynb', *[x for x in p if x[0] != 'epochs'], ('epochs', -1))
    assert r.returncode != 0 and 'epochs must be an integer >= 1, got -1' in (r.stderr + (tmp_path / 'out3.ipynb').read_text())


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
