"""Jobs that cannot hurt each other (issue 12): directory locks, owner-aware cleanup, configurations that fail before
they touch anything, checkpoints that do not load, credentials that never leak, stops within seconds, and the small
errors that each get a clear message. Every case runs the real commands in subprocesses."""
import json, os, re, signal, socket, subprocess, sys, time
from pathlib import Path
import numpy as np
import pytest
import torch
from conftest import run_cli, start_cli, read_json, wait_for, cli_cmd, shard_hashes


def _m3d():
    "mono3d's pieces, imported when a test runs (so that this file collects against any version, as its TDD record needs)."
    from mono3d import store as checkpoint, data
    return checkpoint, data


def generate_dataset(*a, **k): return _m3d()[1].generate_dataset(*a, **k)
def load_dataset(*a, **k): return _m3d()[1].load_dataset(*a, **k)
def sha256_file(p): return _m3d()[0].sha256_file(p)
def ManifestStore(*a, **k): return _m3d()[0].ManifestStore(*a, **k)

TINY = ['--num-samples', '96', '--val-samples', '16', '--frames', '8', '--image-size', '32', '--channels', '8',
        '--channel-mults', '1,2,2', '--crop-size', '16', '--crop-frames', '4', '--crop-batch-size', '16', '--threads', '1',
        '--progress-every', '0.1', '--heartbeat-every', '0.5', '--print-every', '5', '--no-bar']
GEN = ['--frames', '8', '--image-size', '32', '--no-bar', '--progress-every', '0.1', '--heartbeat-every', '0.5']


def _snapshot(d):
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(Path(d).rglob('*')) if p.is_file()}


def _running(proc, d, job):
    return (Path(d) / 'progress.json').is_file() and read_json(Path(d) / 'progress.json').get('pid') == proc.pid \
        and read_json(Path(d) / 'progress.json')['job'] == job


# ---- 1. one job per directory --------------------------------------------------------------------------------

def test_a_second_generate_on_the_same_directory_is_refused_naming_the_holder(tmp_path):
    out = tmp_path / 'ds'
    first = start_cli('generate', out, '--num-samples', '20000', '--checkpoint-interval', '500', '--data-seed', '1', *GEN,
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _running(first, out, 'generate'), proc=first, timeout=60)
        r = run_cli('generate', out, '--num-samples', '20000', '--checkpoint-interval', '500', '--data-seed', '2', *GEN)
        assert r.returncode == 2, r.stderr
        assert f'is in use by mono3d generate (pid {first.pid} on host {socket.gethostname()}' in r.stderr
        assert 'Traceback' not in r.stderr
    finally:
        first.send_signal(signal.SIGTERM); first.wait(30)
    assert read_json(out / 'dataset.json')['identity']['seed'] == 1


def test_simultaneous_generates_with_different_seeds_never_mix(tmp_path):
    "Two generators started at the same instant on one fresh directory: one wins, the other exits 2; one seed on disk."
    for k in range(3):
        out = tmp_path / f'ds{k}'
        procs = [subprocess.Popen(cli_cmd('generate', out, '--num-samples', '2000', '--checkpoint-interval', '250', '--data-seed', str(s), *GEN),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for s in (1, 2)]
        codes = sorted(p.wait(120) for p in procs)
        assert codes == [0, 2], codes
        seed = read_json(out / 'dataset.json')['identity']['seed']
        ds = load_dataset(out)
        assert len(ds) == 2000
        fresh = tmp_path / f'fresh{k}'
        generate_dataset(fresh, 2000, checkpoint_interval=250, frames=8, image_size=32, data_seed=seed, bar=False)
        assert shard_hashes(out) == shard_hashes(fresh)             # every shard is the winner's


def test_a_second_train_is_refused_then_its_different_config_too(tmp_path):
    run = tmp_path / 'run'
    first = start_cli('train', run, *TINY, '--epochs', '40', '--lr', '0.003', stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (run / '.mono3d.lock').is_file() and (run / 'run.json').is_file(), proc=first, timeout=120)
        r = run_cli('train', run, *TINY, '--epochs', '40', '--lr', '0.001')
        assert r.returncode == 2 and f'is in use by mono3d train (pid {first.pid}' in r.stderr, r.stderr
        wait_for(lambda: _running(first, run, 'train'), proc=first, timeout=120)
    finally:
        first.send_signal(signal.SIGTERM); first.wait(60)
    r = run_cli('train', run, *TINY, '--epochs', '40', '--lr', '0.001')      # the lock is free: now the identity speaks
    assert r.returncode == 2 and 'lr: 0.003 in the directory, 0.001 requested' in r.stderr


def test_a_sigkilled_holder_leaves_no_lock_behind(tmp_path):
    out = tmp_path / 'ds'
    args = ('generate', out, '--num-samples', '20000', '--checkpoint-interval', '500', *GEN)
    p = start_cli(*args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: _running(p, out, 'generate'), proc=p, timeout=60)
    os.kill(p.pid, signal.SIGKILL); p.wait()
    wait_for(lambda: subprocess.run(['pgrep', '-f', str(out)], capture_output=True).returncode != 0, timeout=30)
    r = run_cli(*args[:2], '--num-samples', '1000', '--checkpoint-interval', '500', *GEN)   # the kernel released the lock
    assert r.returncode == 0, r.stderr


# ---- 2. cleanup that only removes what is dead ------------------------------------------------------------------

def test_startup_cleanup_keeps_a_live_writers_temporary(tmp_path):
    out = tmp_path / 'ds'
    generate_dataset(out, 500, checkpoint_interval=250, frames=8, image_size=32, bar=False)
    _HOST = _m3d()[0]._HOST
    live = subprocess.Popen(['sleep', '60'])
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True, text=True).stdout.strip()
    try:
        start = _m3d()[0].start_time(live.pid)
        assert start is not None
        keep = out / f'.checkpoint_00000500.npz.tmp-{_HOST}-{live.pid}-0123abcd'
        keep2 = out / f'.checkpoint_00000600.npz.tmp-{_HOST}-{live.pid}.{start}-0123abcd'      # pid and start time: that process
        gone = out / f'.checkpoint_00000750.npz.tmp-{_HOST}-{dead}-0123abcd'
        reused = out / f'.checkpoint_00000800.npz.tmp-{_HOST}-{live.pid}.{start - 1}-0123abcd'  # its writer died; the pid went to another
        for p in (keep, keep2): p.write_bytes(b'a live process is writing this')
        for p in (gone, reused): p.write_bytes(b'left by a dead writer')
        r = run_cli('generate', out, '--num-samples', '1000', '--checkpoint-interval', '250', *GEN)
        assert r.returncode == 0, r.stderr
        assert keep.read_bytes() == keep2.read_bytes() == b'a live process is writing this'
        assert not gone.exists() and not reused.exists()
        assert re.fullmatch(rf'\.x\.tmp-{re.escape(_HOST)}-{os.getpid()}\.\d+-[0-9a-f]{{8}}', _m3d()[0].temporary_name(out / 'x').name)
    finally:
        live.kill()



def test_a_zombie_writers_temporary_is_removed(tmp_path):
    """A SIGKILLed job's workers stay zombies until init reaps them (about 1.8 s on this VM): same pid, same start
    time, but dead. A run started in that window must still remove the temporary such a writer left."""
    out = tmp_path / 'ds'
    generate_dataset(out, 500, checkpoint_interval=250, frames=8, image_size=32, bar=False)
    code = ('import sys; from pathlib import Path; from mono3d.store import temporary_name; '
            't = temporary_name(Path(sys.argv[1]) / "checkpoint_00000500.npz"); t.write_bytes(b"half a shard"); print(t, flush=True)')
    writer = subprocess.Popen([sys.executable, '-c', code, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        tmp = Path(writer.stdout.readline().strip())
        assert tmp.is_file() and f'-{writer.pid}.' in tmp.name
        # not reaped yet (Popen reaps only on poll/wait): the writer is a zombie, as an orphan is until init reaps it
        wait_for(lambda: Path(f'/proc/{writer.pid}/stat').read_text().rsplit(')', 1)[1].split()[0] == 'Z', timeout=30)
        assert _m3d()[0].pid_alive(writer.pid) is False
        r = run_cli('generate', out, '--num-samples', '750', '--checkpoint-interval', '250', *GEN)
        assert r.returncode == 0, r.stderr
        assert not tmp.exists() and f'removed uncommitted file {tmp.name}' in r.stderr
        assert Path(f'/proc/{writer.pid}').exists()      # still a zombie all along: the run did not wait for the reaper
    finally:
        writer.wait()


# ---- 3. a configuration that cannot run never poisons the directory ---------------------------------------------

@pytest.mark.parametrize('flags, message', [
    (['--levels', '100000,100000,100000'], 'make a codebook of 1,000,000,000,000,000 codes'),
    (['--channels', '1024', '--channel-mults', '1,8,16', '--res-blocks', '16'], 'would not fit in this machine'),
    (['--batch-size', '100000'], 'batch_size must be an integer in [1, 65536], got 100000'),
    (['--batch-size', '90'], 'batch_size=90 and crop_batch_size=16 need at least 90 training videos per micro-batch, but there are 80'),
    (['--data-dir', '/nonexistent/data'], "'/nonexistent/data' is not a directory"),
    (['--log-to', 'nosuchtracker'], "invalid choice: 'nosuchtracker'"),
    (['--publish-to', 'nosuchscheme://bucket/run'], "publish_to has an unknown scheme 'nosuchscheme'"),
    (['--publish-to', 'file://user:secret@host/x'], 'names a host in a file:// URL'),
])
def test_a_config_that_cannot_run_is_refused_before_anything_is_written(tmp_path, flags, message):
    run = tmp_path / 'run'
    r = run_cli('train', run, *TINY, '--epochs', '1', *flags, cwd=tmp_path)
    assert r.returncode == 2, r.stderr[-2000:]
    assert message in r.stderr and 'Traceback' not in r.stderr
    assert 'secret' not in r.stderr
    assert not run.exists() and sorted(p.name for p in tmp_path.iterdir()) == []   # nothing, not even in the current directory
    if 'codebook' in message or 'need at least' in message:             # the same directory then works with a good config
        r = run_cli('train', run, *TINY, '--epochs', '1')
        assert r.returncode == 0, r.stderr[-2000:]


def test_run_dir_that_is_a_file_and_a_missing_data_dir_are_clear_errors(tmp_path):
    f = tmp_path / 'afile'; f.write_text('keep me')
    r = run_cli('train', f, *TINY, '--epochs', '1')
    assert r.returncode == 2 and f"run_dir '{f}' is a file, not a directory" in r.stderr and f.read_text() == 'keep me'
    r = run_cli('train', tmp_path / 'run', *TINY, '--epochs', '1', '--data-dir', tmp_path / 'nodata')
    assert r.returncode == 2 and 'is not a directory (expected a mono3d dataset)' in r.stderr
    assert not (tmp_path / 'nodata').exists() and not (tmp_path / 'run').exists()   # only the default data dir is ever generated


# ---- 4. checkpoints that pass their checksums but do not load -----------------------------------------------------

def _rewrite_checkpoint(store, i, data: bytes):
    "Replace a checkpoint's bytes and recommit its manifest: the checksums pass, the content is what we say."
    store.path(i, '.pt').write_bytes(data)
    m = json.loads(store.manifest_path(i).read_text())
    name = f'{store.name(i)}.pt'
    m['files'][name] = {'sha256': sha256_file(store.path(i, '.pt')), 'bytes': len(data)}
    store.manifest_path(i).write_text(json.dumps(m))


def test_unloadable_checkpoints_fall_back_and_all_unusable_refuses_without_restart(tmp_path):
    run = tmp_path / 'run'
    flags = [*TINY, '--epochs', '6', '--ckpt-every-steps', '5', '--keep-last', '10']
    p = start_cli('train', run, *flags, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: _running(p, run, 'train') and read_json(run / 'progress.json')['done'] >= 16, proc=p, timeout=120)
    p.send_signal(signal.SIGTERM); assert p.wait(60) == 143
    store = ManifestStore(run / 'checkpoints', 'step_', kind='checkpoint')
    idx = store.indices()
    assert len(idx) >= 3
    _rewrite_checkpoint(store, idx[-1], b'not a pickle at all')                                  # UnpicklingError
    buf = torch.load(store.path(idx[-2], '.pt'), weights_only=True); buf['model'] = {'wrong': torch.zeros(1)}
    import io; b = io.BytesIO(); torch.save(buf, b); _rewrite_checkpoint(store, idx[-2], b.getvalue())   # loads, does not fit
    r = run_cli('train', run, *flags)
    assert r.returncode == 0, r.stderr[-3000:]
    assert re.search(rf'newest checkpoint step_{idx[-1]:08d} is invalid \(it does not load: ', r.stderr)
    assert re.search(rf'newest checkpoint step_{idx[-2]:08d} is invalid \(it does not load: ', r.stderr)
    assert f'resuming {run} from step {idx[-3]}' in r.stdout
    # every checkpoint unusable: refuse (exit 2) rather than silently start again from step 0
    for i in store.indices(): _rewrite_checkpoint(store, i, b'garbage')
    (run / 'tokenizer.safetensors').unlink()
    before = _snapshot(run / 'checkpoints')
    r = run_cli('train', run, *flags)
    assert r.returncode == 2 and 'every checkpoint in' in r.stderr and '--restart' in r.stderr, r.stderr[-2000:]
    assert _snapshot(run / 'checkpoints') == before
    r = run_cli('train', run, *flags, '--restart')
    assert r.returncode == 0, r.stderr[-2000:]
    aside = [d for d in (run / 'checkpoints').iterdir() if d.is_dir() and d.name.startswith('unusable-')]
    assert len(aside) == 1 and sorted(p.name for p in aside[0].iterdir()) == sorted(before)


# ---- 5. credentials never reach a log, and publishing trouble never stops a job ------------------------------------

def test_credentials_are_redacted_everywhere_when_uploads_fail(tmp_path):
    blocker = tmp_path / 'blocker'; blocker.write_text('a file where a folder should be')
    url = f'file://{blocker}/run?token=s3cr3tT0ken'
    r = run_cli('generate', tmp_path / 'ds', '--num-samples', '500', '--checkpoint-interval', '250', *GEN, '--publish-to', url)
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'publishing to' in r.stderr and 'will retry' in r.stderr
    everything = r.stdout + r.stderr + ''.join(p.read_text(errors='replace') for p in (tmp_path / 'ds').iterdir() if p.is_file()
                                               and p.suffix in ('.json', '.txt', '.html', '.log'))
    assert 's3cr3tT0ken' not in everything
    r = run_cli('status', 'memory://bucket/none?token=s3cr3tT0ken')
    assert r.returncode == 2 and 's3cr3tT0ken' not in r.stdout + r.stderr and 'no progress.json' in r.stderr


def test_a_missing_backend_package_warns_once_and_the_job_completes(tmp_path):
    pytest.importorskip('fsspec')
    import importlib.util
    if importlib.util.find_spec('s3fs') is not None: pytest.skip('s3fs is installed here; the missing-package path cannot be shown')
    r = run_cli('generate', tmp_path / 'ds', '--num-samples', '500', '--checkpoint-interval', '250', *GEN,
                '--publish-to', 's3://AKIAKEY:verysecret@bucket/run')
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stderr.count('s3fs') == 1 and 'verysecret' not in r.stdout + r.stderr
    assert read_json(tmp_path / 'ds' / 'progress.json')['status'] == 'COMPLETE'


# ---- 6. SIGTERM to exit within 10 seconds, in every phase -----------------------------------------------------------

def _sigterm_seconds(proc) -> float:
    t0 = time.monotonic(); proc.send_signal(signal.SIGTERM); proc.wait(60)
    return time.monotonic() - t0


def test_sigterm_during_generation_with_two_workers_exits_within_seconds(tmp_path):
    out = tmp_path / 'ds'
    p = start_cli('generate', out, '--num-samples', '40000', '--checkpoint-interval', '2000', '--workers', '2', '--no-bar',
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: _running(p, out, 'generate'), proc=p, timeout=60); time.sleep(1.5)
    dt = _sigterm_seconds(p)
    assert p.returncode == 143 and dt < 10, dt
    assert read_json(out / 'progress.json')['status'] == 'PREEMPTED'
    wait_for(lambda: subprocess.run(['pgrep', '-f', str(out)], capture_output=True).returncode != 0, timeout=10)
    assert [q.name for q in out.iterdir() if '.tmp-' in q.name] == []


def test_sigterm_during_validation_exits_within_seconds_and_resumes_exactly(tmp_path):
    "A long validation (160 held-out videos of 16x64x64) is interrupted, its step checkpointed; the resume validates it."
    data = tmp_path / 'data'
    assert run_cli('generate', data, '--num-samples', '224', '--no-bar').returncode == 0
    flags = ['--num-samples', '224', '--val-samples', '160', '--channels', '8', '--channel-mults', '1,2,2', '--crop-size', '16',
             '--crop-frames', '4', '--crop-batch-size', '8', '--batch-size', '2', '--steps', '9', '--threads', '1', '--workers', '0',
             '--val-every-steps', '4', '--ckpt-every-steps', '1000', '--progress-every', '0.1', '--no-bar', '--data-dir', str(data)]
    ref = tmp_path / 'ref'
    assert run_cli('train', ref, *flags).returncode == 0
    run = tmp_path / 'run'
    log = open(tmp_path / 'log.txt', 'w')
    p = start_cli('train', run, *flags, stdout=log, stderr=subprocess.STDOUT)
    wait_for(lambda: _running(p, run, 'train') and read_json(run / 'progress.json')['done'] >= 4, proc=p, timeout=120)
    time.sleep(1.0)                                     # inside the validation of step 4 (it takes several seconds here)
    dt = _sigterm_seconds(p)
    assert p.returncode == 143 and dt < 10, (dt, (tmp_path / 'log.txt').read_text()[-2000:])
    r = run_cli('train', run, *flags)
    assert r.returncode == 0, r.stderr[-2000:]
    a, b = read_json(run / 'metrics.json')['history'], read_json(ref / 'metrics.json')['history']
    assert a['val'] == b['val'] and a['train_loss'] == b['train_loss']
    assert sha256_file(run / 'tokenizer.safetensors') == sha256_file(ref / 'tokenizer.safetensors')


# ---- 7. the small things, each with a clear message ----------------------------------------------------------------

def test_numpy_integers_are_accepted_as_counts(tmp_path):
    s = generate_dataset(tmp_path / 'ds', np.int64(40), checkpoint_interval=np.int32(20), frames=8, image_size=32, bar=False)
    assert (s['status'], s['done']) == ('COMPLETE', 40)


def test_status_exit_codes_and_malformed_progress(tmp_path):
    from mono3d.progress import ProgressFile, FAILED
    d = tmp_path / 'failed'
    p = ProgressFile(d, 10, job='demo', bar=False); p.start(); p.finish(FAILED, 'disk on fire')
    r = run_cli('status', d)
    assert r.returncode == 1 and 'FAILED' in r.stdout
    (tmp_path / 'bad').mkdir(); (tmp_path / 'bad' / 'progress.json').write_text('{"job": "train", "status": ')
    r = run_cli('status', tmp_path / 'bad')
    assert r.returncode == 2 and 'progress.json is not valid JSON' in r.stderr and 'Traceback' not in r.stderr
    (tmp_path / 'bad' / 'progress.json').write_text('[1, 2]')
    r = run_cli('status', tmp_path / 'bad')
    assert r.returncode == 2 and 'is not a mono3d progress file' in r.stderr


def test_a_deleted_manifest_and_a_garbage_dataset_json_are_named(tmp_path):
    out = tmp_path / 'ds'
    generate_dataset(out, 60, checkpoint_interval=20, frames=8, image_size=32, bar=False)
    (out / 'checkpoint_00000040.manifest.json').unlink()
    r = subprocess.run([sys.executable, '-c', f'from mono3d.data import load_dataset; print(len(load_dataset({str(out)!r})))'],
                       capture_output=True, text=True)
    assert r.stdout.strip() == '40' and 'checkpoint_00000040.npz' in r.stderr and 'has no manifest' in r.stderr
    (out / 'dataset.json').write_text('{not json')
    r = run_cli('train', tmp_path / 'run', *TINY, '--epochs', '1', '--data-dir', out)
    assert r.returncode == 2 and f'{out}/dataset.json cannot be read as JSON' in r.stderr
    r = run_cli('generate', out, '--num-samples', '60', '--checkpoint-interval', '20', *GEN)
    assert r.returncode == 2 and 'dataset.json cannot be read as JSON' in r.stderr


def test_serve_escapes_control_characters_in_its_log(tmp_path):
    (tmp_path / 'status.html').write_text('ok')
    p = subprocess.Popen(cli_cmd('serve', tmp_path, '--port', '0'), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        port = int(re.search(r':(\d+)/', line).group(1))
        with socket.create_connection(('127.0.0.1', port)) as s:
            s.sendall(b'GET /\x1b[2J\x1b]0;owned\x07 HTTP/1.0\r\n\r\n'); s.recv(1000)
        time.sleep(0.3)
    finally:
        p.terminate(); err = p.communicate(10)[1]
    assert '\x1b' not in err and '\\x1b[2J' in err
