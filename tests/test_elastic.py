"""Resume on another number of processes and end with the same weights (issue 26): torchrun on gloo, real SIGKILLs.

With `--micro-batches 4` a step is four micro-batches whatever the process count, and the gradients are added in
micro-batch order on every process. A run killed at 2 processes, resumed at 1, killed again and finished at 4 must
end byte for byte where an uninterrupted 1-process run ends: weights, optimiser state, held-out metrics."""
import hashlib, os, signal, subprocess, sys, time
from pathlib import Path
import pytest
import torch
from conftest import run_cli, start_cli, read_json, wait_for

# 80 training videos; a step is 4 micro-batches of 4 clips (then of 2 full videos): 16 clips or 8 videos a step
TINY = ['--num-samples', '96', '--val-samples', '16', '--frames', '8', '--image-size', '32', '--channels', '8',
        '--channel-mults', '1,2,2', '--crop-size', '16', '--crop-frames', '4', '--micro-batches', '4', '--crop-batch-size', '4',
        '--batch-size', '2', '--full-size-fraction', '0.25', '--epochs', '8', '--warmup-steps', '4', '--ckpt-every-steps', '5',
        '--val-every-steps', '12', '--print-every', '5', '--progress-every', '0.1', '--heartbeat-every', '0.5', '--threads', '1',
        '--ema', '0.9', '--no-bar']


def torchrun(run_dir, nproc, *extra):
    return [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', str(nproc),
            '-m', 'mono3d.train', str(run_dir), *TINY, *extra]


def sha(p): return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def progress(run):
    try: return read_json(run / 'progress.json')
    except (OSError, ValueError): return {}


def committed(run):
    "The steps of the committed checkpoints (those with their manifest: a kill can leave a .pt without one)."
    return sorted(int(p.name.split('.')[0].split('_')[1]) for p in (run / 'checkpoints').glob('step_*.manifest.json'))


def final_checkpoint(run): return run / 'checkpoints' / f'step_{committed(run)[-1]:08d}.pt'


def kill_after(p, run, steps_past, group=False):
    "SIGKILL `p` (its whole process group with `group`) once it has committed a checkpoint `steps_past` steps beyond where it began."
    start = progress(run).get('done', 0) if progress(run).get('pid') != p.pid else 0
    def far():
        s = progress(run)
        return s.get('done', 0) >= start + steps_past and s.get('last_checkpoint') and s.get('status') == 'RUNNING'
    wait_for(lambda: far() or p.poll() is not None, timeout=400)
    assert p.poll() is None, f'the run ended before it could be killed (exit {p.returncode})'
    os.killpg(p.pid, signal.SIGKILL) if group else p.kill()
    p.wait()
    subprocess.run(['pkill', '-9', '-f', f'mono3d.train {run}'], capture_output=True)
    time.sleep(0.3)
    return progress(run).get('done', 0)


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp('elastic') / 'data'
    r = run_cli('generate', d, '--num-samples', '96', '--checkpoint-interval', '32', '--frames', '8', '--image-size', '32', '--no-bar')
    assert r.returncode == 0, r.stderr
    return d


@pytest.fixture(scope='module')
def reference(data):
    "The uninterrupted run, on one process."
    run = data.parent / 'ref'
    r = run_cli('train', run, *TINY, '--data-dir', data)
    assert r.returncode == 0, r.stderr[-3000:]
    return run


def test_killed_at_2_resumed_at_1_killed_finished_at_4_processes_ends_byte_identical(data, reference, tmp_path):
    run = tmp_path / 'run'
    env = {**os.environ, 'PYTHONUNBUFFERED': '1', 'OMP_NUM_THREADS': '1'}
    with open(tmp_path / 'w2.log', 'w') as log:                      # 2 processes, killed (launcher and ranks) after a checkpoint
        p = subprocess.Popen(torchrun(run, 2, '--data-dir', str(data)), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        kill_after(p, run, 6, group=True)
    at = committed(run)[-1]
    assert at > 0, 'no checkpoint before the first kill'
    with open(tmp_path / 'w1.log', 'w') as log:                      # 1 process, resumed, killed after another checkpoint
        p = start_cli('train', run, *TINY, '--data-dir', data, stdout=log, stderr=subprocess.STDOUT)
        kill_after(p, run, 6)
    w1 = (tmp_path / 'w1.log').read_text()
    assert f'resuming {run} from step {at}' in w1, w1[-2000:]
    at2 = committed(run)[-1]
    assert at2 > at, (at, at2)
    r = subprocess.run(torchrun(run, 4, '--data-dir', str(data), '--workers', '0'), capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f'resuming {run} from step {at2}' in r.stdout + r.stderr
    assert sha(run / 'tokenizer.safetensors') == sha(reference / 'tokenizer.safetensors')
    got, want = read_json(run / 'metrics.json'), read_json(reference / 'metrics.json')
    assert got['final'] == want['final'] and got['history']['train_loss'] == want['history']['train_loss']
    assert got['world_size'] == 4 and want['world_size'] == 1
    a = torch.load(final_checkpoint(run), weights_only=True)
    b = torch.load(final_checkpoint(reference), weights_only=True)
    assert a['step'] == b['step'] == want['steps']
    for k, v in b['model'].items(): assert torch.equal(a['model'][k], v), k
    for i, s in b['optimizer']['state'].items():
        for k, v in s.items(): assert torch.equal(a['optimizer']['state'][i][k], v), (i, k)


def test_a_minutes_plan_measured_on_2_processes_is_kept_on_1(data, tmp_path):
    "The plan a --minutes run measured (at 2 processes) is the plan of the resume (at 1): the run is the --steps N run of it."
    run, ref = tmp_path / 'run', tmp_path / 'ref'
    i = TINY.index('--epochs'); untimed = TINY[:i] + TINY[i + 2:]
    timed = untimed + ['--minutes', '0.25']
    env = {**os.environ, 'PYTHONUNBUFFERED': '1', 'OMP_NUM_THREADS': '1'}
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', '-m', 'mono3d.train', str(run), *timed,
           '--data-dir', str(data)]
    with open(tmp_path / 'w2.log', 'w') as log:
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        kill_after(p, run, 6, group=True)
    plan = read_json(run / 'run.json')['plan']
    r = run_cli('train', run, *timed, '--data-dir', data)
    assert r.returncode == 0 and 'resuming' in r.stdout + r.stderr, r.stderr[-2000:]
    r = run_cli('train', ref, *untimed, '--steps', plan['total'], '--data-dir', data)
    assert r.returncode == 0, r.stderr[-2000:]
    assert read_json(run / 'metrics.json')['steps'] == plan['total']
    assert sha(run / 'tokenizer.safetensors') == sha(ref / 'tokenizer.safetensors')


def _tree(d):
    return {str(p.relative_to(d)): (p.read_bytes() if p.is_file() else None, p.stat().st_mtime_ns) for p in sorted(Path(d).rglob('*'))}


@pytest.mark.parametrize('how, flags, message', [
    ('3 processes', None, 'valid process counts: 1, 2, 4'),
    ('other threads', ['--threads', '2'], 'threads_per_process: 1 in the directory, 2 requested'),
    ('other micro-batches', ['--micro-batches', '2'], 'resumes on 1, 2, 4 process(es) with --threads 1 each'),
])
def test_what_cannot_give_the_same_weights_is_refused_naming_what_can(reference, data, how, flags, message):
    before = _tree(reference)
    if flags is None:
        r = subprocess.run(torchrun(reference, 3, '--data-dir', str(data)), capture_output=True, text=True, timeout=300,
                           env={**os.environ, 'OMP_NUM_THREADS': '1'})
        out = r.stdout + r.stderr
        assert r.returncode != 0 and message in out and 'micro_batches=4' in out, out[-2000:]
    else:
        args = list(TINY)
        for k in range(0, len(flags), 2): args[args.index(flags[k]) + 1] = flags[k + 1]
        r = run_cli('train', reference, *args, '--data-dir', data)
        assert r.returncode == 2 and message in r.stderr, r.stderr[-2000:]
    assert _tree(reference) == before, 'a refusal changed the directory'


PRIOR = ['--width', '32', '--depth', '2', '--heads', '2', '--context-frames', '4', '--micro-batches', '2', '--batch-size', '8',
         '--warmup-steps', '5', '--decode-steps', '3', '--ckpt-every-steps', '5', '--val-every-steps', '15', '--steps', '30',
         '--threads', '1', '--workers', '0', '--no-bar', '--progress-every', '0.1', '--heartbeat-every', '0.5']


def test_the_prior_killed_at_2_processes_and_finished_at_1_ends_byte_identical(reference, tmp_path):
    "The prior gets the property through the same core: its micro-batches are pure functions of (seed, step, part) too."
    ref, run = tmp_path / 'ref', tmp_path / 'run'
    r = run_cli('prior', ref, '--tokenizer-run', reference, *PRIOR)
    assert r.returncode == 0, r.stderr[-2000:]
    env = {**os.environ, 'PYTHONUNBUFFERED': '1', 'OMP_NUM_THREADS': '1'}
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', '-m', 'mono3d.prior', str(run),
           '--tokenizer-run', str(reference), *PRIOR]
    with open(tmp_path / 'w2.log', 'w') as log:
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        kill_after(p, run, 7, group=True)
    subprocess.run(['pkill', '-9', '-f', f'mono3d.prior {run}'], capture_output=True)
    at = committed(run)[-1]
    r = run_cli('prior', run, '--tokenizer-run', reference, *PRIOR)
    assert r.returncode == 0 and f'resuming {run} from step {at}' in r.stdout + r.stderr, r.stdout[-2000:] + r.stderr[-2000:]
    assert sha(run / 'prior.safetensors') == sha(ref / 'prior.safetensors')
    got, want = read_json(run / 'metrics.json'), read_json(ref / 'metrics.json')
    assert got['final'] == want['final'] and got['history']['train_loss'] == want['history']['train_loss']
