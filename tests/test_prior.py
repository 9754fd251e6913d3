"""The prior over the tokens (issue 22) on real runs: the token cache killed and resumed gives the same bytes, the prior
trains through the same loop (killed at random moments, resumed bit-identically), sampling is deterministic, the
evaluation resumes to the same report, and bad input is refused with exit 2 naming the setting."""
import hashlib, random, signal, subprocess, time
from pathlib import Path
import numpy as np
import pytest
from conftest import run_cli, start_cli, read_json, wait_for

TOK_ = ['--num-samples', '96', '--val-samples', '16', '--frames', '8', '--image-size', '32', '--channels', '8', '--channel-mults', '1,2,2',
        '--crop-size', '16', '--crop-frames', '4', '--crop-batch-size', '16', '--threads', '1', '--workers', '0', '--no-bar']
TOK = TOK_ + ['--steps', '30']
PRIOR_ = ['--width', '32', '--depth', '2', '--heads', '2', '--context-frames', '4', '--batch-size', '16', '--warmup-steps', '5',
          '--decode-steps', '3', '--ckpt-every-steps', '7', '--val-every-steps', '15', '--threads', '1', '--workers', '0', '--no-bar',
          '--progress-every', '0.1', '--heartbeat-every', '0.5']
PRIOR = PRIOR_ + ['--steps', '40']


def sha(p): return hashlib.sha256(Path(p).read_bytes()).hexdigest()


@pytest.fixture(scope='module')
def tokenizer(tmp_path_factory):
    run = tmp_path_factory.mktemp('tok') / 'run'
    r = run_cli('train', run, *TOK)
    assert r.returncode == 0, r.stderr[-2000:]
    return run


@pytest.fixture(scope='module')
def reference(tokenizer, tmp_path_factory):
    run = tmp_path_factory.mktemp('prior') / 'ref'
    r = run_cli('prior', run, '--tokenizer-run', tokenizer, *PRIOR)
    assert r.returncode == 0, r.stderr[-2000:]
    return run


def test_the_prior_trains_through_the_loop_and_writes_everything(reference):
    names = {p.name for p in reference.iterdir()}
    assert {'prior.safetensors', 'prior.json', 'samples.gif', 'metrics.json', 'loss_curve.png', 'status.html', 'tokens', 'checkpoints'} <= names
    m = read_json(reference / 'metrics.json')
    losses = m['history']['train_loss']
    assert m['steps'] == 40 and np.mean(losses[-10:]) < np.mean(losses[:5])          # it learns
    assert read_json(reference / 'progress.json')['status'] == 'COMPLETE'
    assert read_json(reference / 'run.json')['identity']['tokenizer_sha256'] == sha(read_json(reference / 'prior.json')['tokenizer_run'] + '/tokenizer.safetensors')


def test_token_cache_killed_and_resumed_gives_the_same_bytes(tokenizer, tmp_path):
    ref = tmp_path / 'ref'
    assert run_cli('tokens', ref, '--tokenizer-run', tokenizer, '--shard-size', '8', '--threads', '1', '--no-bar').returncode == 0
    d = tmp_path / 'cache'
    for _ in range(3):
        p = start_cli('tokens', d, '--tokenizer-run', tokenizer, '--shard-size', '8', '--threads', '1', '--no-bar',
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(random.uniform(2.5, 4.5)); p.kill(); p.wait()
    r = run_cli('tokens', d, '--tokenizer-run', tokenizer, '--shard-size', '8', '--threads', '1', '--no-bar')
    assert r.returncode == 0, r.stderr[-2000:]
    files = lambda x: {q.name: sha(q) for q in sorted(x.glob('tokens_*.npz'))}
    assert files(d) == files(ref) and len(files(d)) == 12


def test_sigkill_at_random_moments_then_resume_is_bit_identical(tokenizer, reference, tmp_path):
    run = tmp_path / 'run'
    for _ in range(2):
        p = start_cli('prior', run, '--tokenizer-run', tokenizer, *PRIOR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(random.uniform(3.0, 9.0)); p.kill(); p.wait()
    r = run_cli('prior', run, '--tokenizer-run', tokenizer, *PRIOR)
    assert r.returncode == 0, r.stderr[-2000:]
    assert sha(run / 'prior.safetensors') == sha(reference / 'prior.safetensors')
    a, b = read_json(run / 'metrics.json')['history'], read_json(reference / 'metrics.json')['history']
    assert a['train_loss'] == b['train_loss'] and a['val'] == b['val']


def test_sigterm_stops_within_seconds_and_more_epochs_extend(tokenizer, tmp_path):
    run = tmp_path / 'run'
    p = start_cli('prior', run, '--tokenizer-run', tokenizer, *PRIOR_, '--steps', '4000',
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: (run / 'progress.json').is_file() and read_json(run / 'progress.json').get('job') == 'prior'
             and read_json(run / 'progress.json')['done'] >= 5, proc=p, timeout=120)
    t0 = time.monotonic(); p.send_signal(signal.SIGTERM); p.wait(60)
    assert p.returncode == 143 and time.monotonic() - t0 < 10
    assert read_json(run / 'progress.json')['status'] == 'PREEMPTED'


def test_sampling_is_deterministic_and_writes_videos_and_a_grid(reference, tmp_path):
    outs = []
    for k in range(2):
        r = run_cli('sample', reference, '--label', 'helical', '--count', '3', '--out', tmp_path / f's{k}', '--seed', '5', '--decode-steps', '3')
        assert r.returncode == 0, r.stderr[-2000:]
        outs.append(tmp_path / f's{k}')
    with np.load(outs[0] / 'samples.npz') as a, np.load(outs[1] / 'samples.npz') as b:
        assert a['videos'].shape == (3, 8, 32, 32, 3) and a['videos'].dtype == np.uint8
        assert np.array_equal(a['videos'], b['videos']) and np.array_equal(a['codes'], b['codes'])
        assert (a['labels'] == 2).all()
    assert (outs[0] / 'samples.gif').stat().st_size > 1000
    r = run_cli('sample', reference, '--label', 'helical', '--count', '3', '--out', tmp_path / 's2', '--seed', '6', '--decode-steps', '3')
    with np.load(outs[0] / 'samples.npz') as a, np.load(tmp_path / 's2' / 'samples.npz') as c: assert not np.array_equal(a['codes'], c['codes'])
    for k, extra in ((3, ['--no-by-frame']), (4, ['--no-by-frame']), (6, ['--by-frame']), (7, [])):   # whole video, and frame by frame (the default): deterministic too
        r = run_cli('sample', reference, '--label', 'helical', '--count', '3', '--out', tmp_path / f's{k}', '--seed', '5', '--decode-steps', '3',
                    '--order', 'object-first', *extra)
        assert r.returncode == 0, r.stderr[-2000:]
    with np.load(tmp_path / 's3' / 'samples.npz') as o, np.load(tmp_path / 's4' / 'samples.npz') as c:
        assert np.array_equal(o['codes'], c['codes']) and '"order": "object-first"' in str(o['settings']) and '"by_frame": false' in str(o['settings'])
    with np.load(tmp_path / 's6' / 'samples.npz') as f, np.load(tmp_path / 's7' / 'samples.npz') as f2, np.load(tmp_path / 's3' / 'samples.npz') as o:
        assert np.array_equal(f['codes'], f2['codes']) and not np.array_equal(f['codes'], o['codes']) and '"by_frame": true' in str(f['settings'])
    r = run_cli('sample', reference, '--label', 'helical', '--out', tmp_path / 's5', '--order', 'random')
    assert r.returncode == 2 and 'object-first' in r.stderr


def test_prediction_keeps_the_context_and_continues_it(reference, tmp_path):
    shard = sorted((Path(read_json(Path(read_json(reference / 'prior.json')['tokenizer_run']) / 'run.json')['data_dir'])).glob('checkpoint_*.npz'))[0]
    r = run_cli('sample', reference, '--context', shard, '--context-frames', '4', '--count', '2', '--out', tmp_path / 'p', '--decode-steps', '3')
    assert r.returncode == 0, r.stderr[-2000:]
    with np.load(tmp_path / 'p' / 'samples.npz') as z: assert z['videos'].shape == (2, 8, 32, 32, 3)


@pytest.mark.parametrize('args, message', [
    (['--label', 'spiral', '--count', '2'], "invalid choice: 'spiral'"),
    (['--label', 'linear', '--count', '0'], 'count must be an integer in [1, 4096], got 0'),
    (['--label', 'linear', '--decode-steps', '0'], 'decode_steps must be an integer in [1, 1024], got 0'),
    (['--label', 'linear', '--by-frame', '--later-steps', '0'], 'later_steps must be an integer in [1, 1024], got 0'),
    (['--label', 'linear', '--no-by-frame', '--later-steps', '0'], 'later_steps must be an integer in [1, 1024], got 0'),
    (['--context', 'CONTEXT', '--context-frames', '1'], "context_frames must be a multiple of the tokenizer's temporal factor 2"),
])
def test_bad_sampling_input_is_refused_with_exit_2(reference, tmp_path, args, message):
    if 'CONTEXT' in args:
        np.savez(tmp_path / 'c.npz', videos=np.zeros((2, 8, 32, 32, 3), np.uint8)); args = [str(tmp_path / 'c.npz') if a == 'CONTEXT' else a for a in args]
    r = run_cli('sample', reference, *args, '--out', tmp_path / 'o')
    assert r.returncode == 2 and message in r.stderr and 'Traceback' not in r.stderr, r.stderr[-1500:]
    assert not (tmp_path / 'o').exists()


def test_a_tokenizer_run_that_is_not_complete_is_refused(tokenizer, tmp_path):
    half = tmp_path / 'half'
    p = start_cli('train', half, *TOK_, '--steps', '100000',
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: (half / 'progress.json').is_file() and read_json(half / 'progress.json').get('job') == 'train', proc=p, timeout=120)
    p.send_signal(signal.SIGTERM); p.wait(60)
    r = run_cli('prior', tmp_path / 'prior', '--tokenizer-run', half, *PRIOR)
    assert r.returncode == 2 and 'is not a COMPLETE tokenizer run' in r.stderr and 'tokenizer_run' in r.stderr, r.stderr[-1500:]
    assert not (tmp_path / 'prior').exists()


def test_another_tokenizer_is_refused_for_an_existing_prior_run(tokenizer, reference, tmp_path):
    other = tmp_path / 'tok2'
    assert run_cli('train', other, *TOK_, '--steps', '31').returncode == 0
    before = {p: p.stat().st_mtime_ns for p in reference.rglob('*')}
    r = run_cli('prior', reference, '--tokenizer-run', other, *PRIOR)
    assert r.returncode == 2 and 'tokenizer_sha256' in r.stderr, r.stderr[-1500:]
    assert {p: p.stat().st_mtime_ns for p in reference.rglob('*')} == before


def test_evaluation_is_resumable_and_reports_beside_the_controls(reference, tmp_path):
    args = ['--out-dir', tmp_path / 'eval', '--per-class', '4', '--decode-steps', '2', '--predict-videos', '8', '--context-frames', '4',
            '--classifier-videos', '60', '--classifier-epochs', '2', '--heartbeat-every', '0.5', '--progress-every', '0.1']
    p = start_cli('evaluate-prior', reference, *args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: (tmp_path / 'eval' / 'progress.json').is_file() and read_json(tmp_path / 'eval' / 'progress.json')['done'] >= 2, proc=p, timeout=300)
    p.kill(); p.wait()
    r = run_cli('evaluate-prior', reference, *args)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = read_json(tmp_path / 'eval' / 'report.json')
    assert set(rep['sets']) == {'trained', 'untrained', 'unigram'} and 'constant_velocity' in rep['prediction']
    md = (tmp_path / 'eval' / 'report.md').read_text()
    assert 'untrained (control)' in md and 'unigram (control)' in md and '## Targets' in md
    fresh = tmp_path / 'fresh'
    assert run_cli('evaluate-prior', reference, *args[:1], fresh, *args[2:]).returncode == 0
    a, b = read_json(tmp_path / 'eval' / 'report.json'), read_json(fresh / 'report.json')
    def results(rep):                                     # every figure, without the seconds each stage took
        return {part: {k: {m: v for m, v in d.items() if m != '_seconds'} for k, d in rep[part].items() if isinstance(d, dict)}
                for part in ('sets', 'prediction')}
    assert results(a) == results(b)


def test_more_videos_than_the_tokenizer_saw_train_the_prior_and_the_held_out_ones_stay(tokenizer, tmp_path):
    "--num-samples past the tokenizer's: refused while the dataset is short (nothing written), then more training videos, the same held-out ones."
    r = run_cli('prior', tmp_path / 'p', '--tokenizer-run', tokenizer, *PRIOR_, '--steps', '6', '--num-samples', '160')
    assert r.returncode == 2 and 'num_samples=160 but the dataset in' in r.stderr and 'holds only 96' in r.stderr, r.stderr[-1500:]
    assert not (tmp_path / 'p').exists()
    r = run_cli('prior', tmp_path / 'p', '--tokenizer-run', tokenizer, *PRIOR_, '--steps', '6', '--num-samples', '90')
    assert r.returncode == 2 and "num_samples must be at least the tokenizer run's 96" in r.stderr, r.stderr[-1500:]
    more = tmp_path / 'more'                                   # the same videos and 64 more: the first 96 are the tokenizer's
    assert run_cli('generate', more, '--num-samples', '160', '--frames', '8', '--image-size', '32', '--no-bar').returncode == 0
    r = run_cli('prior', tmp_path / 'p', '--tokenizer-run', tokenizer, '--data-dir', more, *PRIOR_, '--steps', '6', '--num-samples', '160')
    assert r.returncode == 0, r.stderr[-2000:]
    m = read_json(tmp_path / 'p' / 'metrics.json')
    assert (m['train_videos'], m['val_videos']) == (80 + 64, 16)
    assert read_json(tmp_path / 'p' / 'tokens' / 'tokens.json')['num_samples'] == 160


def test_a_window_prior_trains_samples_and_continues_through_the_tokenizer_grid(tokenizer, tmp_path):
    "--window 4: the transformer sees 4x4 tokens around the object per token frame (and their place); every video it makes is the tokenizer's grid."
    win = ['--window', '4', '--group-h', '2', '--group-w', '2']
    for bad, message in ((['--background', 'encoded'], "window=4 needs background 'blank'"), (['--window', '9'], "at most the token grid's 8 tokens, got 9")):
        r = run_cli('prior', tmp_path / 'bad', '--tokenizer-run', tokenizer, *PRIOR_, '--steps', '6', *win, *bad)
        assert r.returncode == 2 and message in r.stderr and 'window' in r.stderr and 'Traceback' not in r.stderr, r.stderr[-1500:]
        assert not (tmp_path / 'bad').exists()
    run = tmp_path / 'win'
    r = run_cli('prior', run, '--tokenizer-run', tokenizer, *PRIOR_, '--steps', '12', *win)
    assert r.returncode == 0, r.stderr[-2000:]
    info, rec = read_json(run / 'prior.json'), read_json(run / 'run.json')
    assert (info['grid'], info['tokens_grid'], info['recipe']['window']) == ([4, 4, 6], [4, 8, 8], 4)
    assert 0 <= rec['window_lost'] < 1 and read_json(run / 'metrics.json')['prior']['positions'] == 4 * 2 * 3
    outs = [tmp_path / f'w{i}' for i in range(2)]
    for o in outs:
        r = run_cli('sample', run, '--label', 'circular', '--count', '3', '--out', o, '--seed', '2', '--decode-steps', '3')
        assert r.returncode == 0, r.stderr[-2000:]
    with np.load(outs[0] / 'samples.npz') as a, np.load(outs[1] / 'samples.npz') as b:
        assert np.array_equal(a['codes'], b['codes']) and a['codes'].shape == (3, 4, 8, 8) and a['videos'].shape == (3, 8, 32, 32, 3)
        codes = a['codes']
    from mono3d.prior import Prior
    prior = Prior.load(run)
    off = codes != prior.layout.blank.numpy()                             # off the blank video's codes: inside one 4x4 window per frame
    for span in (off.any(3), off.any(2)):
        first, last = span.argmax(-1), span.shape[-1] - 1 - span[..., ::-1].argmax(-1)
        assert ((last - first < 4) | ~span.any(-1)).all()
    shard = sorted(Path(read_json(tokenizer / 'run.json')['data_dir']).glob('checkpoint_*.npz'))[0]
    r = run_cli('sample', run, '--context', shard, '--context-frames', '4', '--count', '2', '--out', tmp_path / 'p', '--decode-steps', '3')
    assert r.returncode == 0, r.stderr[-2000:]
    with np.load(tmp_path / 'p' / 'samples.npz') as z, np.load(shard) as s:
        assert z['videos'].shape == (2, 8, 32, 32, 3)
        kept = prior.layout.compose(prior.layout.extract(prior.encode(s['videos'][:2, 0]))).numpy()
        assert np.array_equal(z['codes'][:, :2], kept[:, :2])                 # the context's two token frames, as the layout keeps them


def test_the_evaluation_of_a_window_prior_measures_composed_videos_beside_its_controls(tokenizer, tmp_path):
    "evaluate-prior on a --window prior: every set (trained, untrained, unigram) is measured on videos of the tokenizer's whole grid."
    run = tmp_path / 'win'
    assert run_cli('prior', run, '--tokenizer-run', tokenizer, *PRIOR_, '--steps', '8', '--window', '4', '--group-h', '2', '--group-w', '2').returncode == 0
    r = run_cli('evaluate-prior', run, '--per-class', '4', '--decode-steps', '2', '--predict-videos', '8', '--context-frames', '4',
                '--classifier-videos', '60', '--classifier-epochs', '2')
    assert r.returncode == 0, r.stderr[-2000:]
    rep = read_json(run / 'eval' / 'report.json')
    assert set(rep['sets']) == {'trained', 'untrained', 'unigram'} and 'constant_velocity' in rep['prediction']
    for which in ('trained', 'untrained', 'unigram'):
        with np.load(run / 'eval' / f'samples_{which}.npz') as z: assert z['codes'].shape == (16, 4, 8, 8), which
