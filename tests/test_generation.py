"""The user's long-running-process rules, checked on real generation runs (in-process and as a subprocess,
killed for real where resume is the point)."""
import json, os, random, re, signal, subprocess, time
from pathlib import Path
import numpy as np
import pytest
from conftest import run_cli, start_cli, shard_hashes, read_json, wait_for
from mono3d.data import generate_dataset, load_dataset, CLASSES
from mono3d.store import ManifestStore

TS = re.compile(r'Last update: (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)')


def test_checkpoints_created_at_intervals(tmp_path):
    "3000 samples with interval 1000 -> exactly 3 checkpoint_*.npz, each holding its 1000 samples."
    generate_dataset(tmp_path, 3000, checkpoint_interval=1000, bar=False)
    shards = sorted(tmp_path.glob('checkpoint_*.npz'))
    assert [p.name for p in shards] == ['checkpoint_00000000.npz', 'checkpoint_00001000.npz', 'checkpoint_00002000.npz']
    for k, p in enumerate(shards):
        with np.load(p) as z:
            assert z['videos'].shape == (1000, 1, 16, 64, 64, 3) and z['videos'].dtype == np.uint8
            assert (z['sample_ids'] == np.arange(1000 * k, 1000 * (k + 1))).all()
            assert len(z['labels']) == len(z['trajectory_3d']) == len(z['equations']) == len(z['descriptions']) == 1000
        assert ManifestStore(tmp_path, kind='shard').validate(1000 * k)[0]['meta']['count'] == 1000


def test_progress_file_created_and_updated(tmp_path):
    "PROGRESS.txt exists and moves while the job runs (observed from outside), and says COMPLETE after."
    out = tmp_path / 'ds'
    log = open(tmp_path / 'stdout.txt', 'w')
    proc = start_cli('generate', out, '--num-samples', 6000, '--checkpoint-interval', 250, '--workers', 1,
                     '--image-size', 96, '--progress-every', 0.2, '--heartbeat-every', 0.5, '--no-bar', '--quiet', stdout=log, stderr=subprocess.STDOUT)
    seen = []
    while proc.poll() is None:
        try: txt = (out / 'PROGRESS.txt').read_text()
        except FileNotFoundError: txt = None
        if txt and (not seen or txt != seen[-1]): seen.append(txt)
        time.sleep(0.05)
    assert proc.wait() == 0
    running = [t for t in seen if 'Status: RUNNING' in t]
    assert len(running) >= 3, f'PROGRESS.txt was observed only {len(running)} times while running'
    done = [int(re.search(r'Completed: (\d+)/6000 \((\d+\.\d)%\)', t).group(1)) for t in running]
    assert done == sorted(done) and done[-1] > done[0], done
    for t in running: assert 'ETA:' in t and TS.search(t)
    stamps = {TS.search(t).group(1) for t in running}
    assert len(stamps) >= 2, 'Last update never moved'
    final = (out / 'PROGRESS.txt').read_text()
    assert 'Status: COMPLETE' in final and 'Completed: 6000/6000 (100.0%)' in final and 'COMPLETE' in final.splitlines()
    s = read_json(out / 'progress.json')
    assert (s['status'], s['done'], s['total'], s['restarts']) == ('COMPLETE', 6000, 6000, 0)
    for k in ('started_at', 'updated_at', 'rate', 'eta_seconds', 'last_checkpoint', 'pid', 'host', 'metrics'): assert k in s
    assert s['rate'] > 0 and s['last_checkpoint'] == 'checkpoint_00005750.npz'
    assert '[heartbeat]' in (tmp_path / 'stdout.txt').read_text()


def test_can_resume_from_last_checkpoint(tmp_path):
    "Generate 2000, then resume to 4000: 4000 distinct ids, byte-identical to a fresh 4000 run."
    a, b = tmp_path / 'resumed', tmp_path / 'fresh'
    generate_dataset(a, 2000, checkpoint_interval=1000, bar=False)
    assert len(shard_hashes(a)) == 2
    first = {q.name: (q.stat().st_ino, q.stat().st_mtime_ns) for q in a.glob('checkpoint_*')}
    s = generate_dataset(a, 4000, checkpoint_interval=1000, bar=False)
    assert {q.name: (q.stat().st_ino, q.stat().st_mtime_ns) for q in a.glob('checkpoint_*') if q.name in first} == first, \
        'resume rewrote shards that were already committed'
    assert (s['status'], s['done'], s['restarts']) == ('COMPLETE', 4000, 1)
    generate_dataset(b, 4000, checkpoint_interval=1000, bar=False)
    assert shard_hashes(a) == shard_hashes(b) and len(shard_hashes(a)) == 4
    ds = load_dataset(a)
    assert len(ds) == 4000 and len(set(ds.sample_ids.tolist())) == 4000
    assert (ds.sample_ids == np.arange(4000)).all()


@pytest.mark.slow
def test_medium_scale_generation_completes(tmp_path):
    "10% of production (5000 samples, 16 frames, 64x64) through the CLI: checkpoints, progress, completion."
    out = tmp_path / 'ds'
    r = run_cli('generate', out, '--num-samples', 5000, '--checkpoint-interval', 1000, '--frames', 16, '--image-size', 64, '--no-bar')
    assert r.returncode == 0, r.stderr
    assert len(shard_hashes(out)) == 5
    txt = (out / 'PROGRESS.txt').read_text()
    assert 'Completed: 5000/5000 (100.0%)' in txt and 'COMPLETE' in txt.splitlines()
    ds = load_dataset(out)
    assert len(ds) == 5000 and set(ds.labels.tolist()) == set(range(len(CLASSES)))
    assert ds[4999]['video'].shape == (3, 16, 64, 64)


@pytest.fixture(scope='module')
def reference_16k(tmp_path_factory):
    "An uninterrupted single-process run that the killed runs must reproduce byte for byte."
    d = tmp_path_factory.mktemp('ref') / 'ds'
    generate_dataset(d, 16000, checkpoint_interval=500, workers=1, bar=False)
    return shard_hashes(d)


def _no_temporaries(d):
    return [p.name for p in Path(d).iterdir() if '.tmp-' in p.name]


def test_sigkill_at_random_moments_then_resume_is_identical(tmp_path, reference_16k):
    "SIGKILL the CLI (2 workers) at >= 5 random moments, resume each time: the shards equal the reference run."
    out, rng, kills = tmp_path / 'ds', random.Random(1234), 0
    args = ('generate', out, '--num-samples', 16000, '--checkpoint-interval', 500, '--workers', 2, '--no-bar')
    while kills < 5:
        proc = start_cli(*args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: (out / 'progress.json').is_file() and read_json(out / 'progress.json').get('pid') == proc.pid, proc=proc, timeout=60)
        time.sleep(rng.uniform(0.05, 0.6))
        assert proc.poll() is None, 'the job finished before it could be killed; make it longer'
        os.kill(proc.pid, signal.SIGKILL); proc.wait(); kills += 1
        assert read_json(out / 'progress.json')['status'] == 'RUNNING'   # a SIGKILLed job cannot say goodbye
        # its worker processes die with it: no orphan goes on writing into the directory
        wait_for(lambda: subprocess.run(['pgrep', '-f', str(out)], capture_output=True).returncode != 0, timeout=30)
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    s = read_json(out / 'progress.json')
    assert s['status'] == 'COMPLETE' and s['restarts'] == kills
    assert shard_hashes(out) == reference_16k
    assert _no_temporaries(out) == []


def test_sigterm_preempts_cleanly_and_resumes(tmp_path, reference_16k):
    "SIGTERM: non-zero exit, PREEMPTED, nothing half-written; the rerun completes identically."
    out = tmp_path / 'ds'
    args = ('generate', out, '--num-samples', 16000, '--checkpoint-interval', 500, '--workers', 1, '--no-bar')
    proc = start_cli(*args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (out / 'progress.json').is_file() and read_json(out / 'progress.json')['done'] >= 1000, proc=proc, timeout=60)
    t0 = time.monotonic(); proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=30)[1]
    assert proc.returncode == 128 + signal.SIGTERM and time.monotonic() - t0 < 10
    assert 'PREEMPTED' in err
    s = read_json(out / 'progress.json')
    assert s['status'] == 'PREEMPTED' and 0 < s['done'] < 16000
    assert 'Status: PREEMPTED' in (out / 'PROGRESS.txt').read_text()
    assert _no_temporaries(out) == []
    store = ManifestStore(out, kind='shard')
    assert all(store.validate(i)[0] for i in store.indices())           # everything on disk is committed and valid
    assert len(list(out.glob('checkpoint_*.npz'))) == len(store.indices())
    r = run_cli(*args)
    assert r.returncode == 0 and shard_hashes(out) == reference_16k


@pytest.mark.parametrize('damage', ['truncate', 'flip_byte'])
def test_corrupt_newest_shard_is_detected_and_regenerated(tmp_path, damage):
    out = tmp_path / 'ds'
    generate_dataset(out, 3000, checkpoint_interval=1000, bar=False)
    good = shard_hashes(out)
    p = out / 'checkpoint_00002000.npz'
    raw = bytearray(p.read_bytes())
    if damage == 'truncate': raw = raw[: len(raw) // 2]
    else: raw[len(raw) // 3] ^= 0xFF
    p.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match='checkpoint_00002000 .* is corrupt'): load_dataset(out)
    r = run_cli('generate', out, '--num-samples', 3000, '--checkpoint-interval', 1000, '--no-bar')
    assert r.returncode == 0, r.stderr
    assert re.search(r'WARNING: shard checkpoint_00002000 is corrupt \(.+\): it will be generated again', r.stderr)
    assert shard_hashes(out) == good
    assert len(load_dataset(out)) == 3000


def _snapshot(d):
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(Path(d).iterdir())}


@pytest.mark.parametrize('flags, message', [
    (['--num-samples', '-5'], 'num_samples must be an integer >= 1, got -5'),
    (['--num-samples', '100', '--checkpoint-interval', '0'], 'checkpoint_interval must be an integer >= 1, got 0'),
    (['--num-samples', '100', '--image-size', '8'], 'image_size must be an integer in [16, 1024], got 8'),
    (['--num-samples', '100', '--workers', '0'], 'workers must be an integer in [1, 256], got 0'),
    (['--num-samples', '100', '--heartbeat-every', 'inf'], 'heartbeat_every must be a finite number > 0, got inf'),
    (['--num-samples', '100', '--frames', '8'], 'frames: 16 in the directory, 8 requested'),
    (['--num-samples', '100', '--data-seed', '7'], 'seed: 0 in the directory, 7 requested'),
])
def test_bad_arguments_give_clear_errors_and_touch_nothing(tmp_path, flags, message):
    out = tmp_path / 'ds'
    generate_dataset(out, 200, checkpoint_interval=100, frames=16, image_size=32, bar=False)
    before = _snapshot(out)
    r = run_cli('generate', out, '--image-size', 32, *flags)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert message in r.stderr and 'Traceback' not in r.stderr
    assert _snapshot(out) == before


def test_unwritable_output_directory_is_a_clear_error(tmp_path):
    f = tmp_path / 'a_file'; f.write_text('not a directory')
    r = run_cli('generate', f / 'ds', '--num-samples', 10)
    assert r.returncode == 2 and "out_dir" in r.stderr and 'cannot be created' in r.stderr
    r = run_cli('generate', f, '--num-samples', 10)
    assert r.returncode == 2 and 'is a file, not a directory' in r.stderr and f.read_text() == 'not a directory'
    if os.geteuid() != 0:   # root can write anywhere; the chmod case only means something for other users
        ro = tmp_path / 'ro'; ro.mkdir(); ro.chmod(0o555)
        r = run_cli('generate', ro, '--num-samples', 10)
        assert r.returncode == 2 and 'is not writable' in r.stderr


def test_workers_do_not_change_the_bytes(tmp_path):
    "Sample i is a pure function of (seed, i): 1 or 2 worker processes give byte-identical shards."
    for w in (1, 2): generate_dataset(tmp_path / f'w{w}', 2000, checkpoint_interval=500, workers=w, bar=False)
    assert shard_hashes(tmp_path / 'w1') == shard_hashes(tmp_path / 'w2')


def test_status_reports_complete_and_stalled(tmp_path):
    out = tmp_path / 'ds'
    proc = start_cli('generate', out, '--num-samples', 16000, '--checkpoint-interval', 500, '--heartbeat-every', 1,
                     '--no-bar', stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: (out / 'progress.json').is_file() and read_json(out / 'progress.json')['done'] > 0, proc=proc, timeout=60)
    r = run_cli('status', out)
    assert r.returncode == 0 and 'status:   RUNNING' in r.stdout
    os.kill(proc.pid, signal.SIGKILL); proc.wait()
    time.sleep(3.5)   # more than 3 heartbeats of 1 s without an update
    r = run_cli('status', out)
    assert r.returncode == 3 and 'STALLED' in r.stdout and 'recorded RUNNING' in r.stdout
    r = run_cli('status', out, '--json')
    assert json.loads(r.stdout)['status'] == 'RUNNING'
    r = run_cli('status', tmp_path / 'nothing-here')
    assert r.returncode == 2 and 'no progress.json' in r.stderr


def test_a_dataset_of_the_previous_generator_is_refused_not_mixed(tmp_path):
    "Generator version 2 balances the classes in blocks of 4: a version-1 directory is refused by generate, train and load."
    out = tmp_path / 'ds'
    generate_dataset(out, 40, checkpoint_interval=20, frames=8, image_size=32, bar=False)
    rec = read_json(out / 'dataset.json')
    rec['generator_version'] = rec['identity']['generator_version'] = 1
    (out / 'dataset.json').write_text(json.dumps(rec))
    before = shard_hashes(out)
    r = run_cli('generate', out, '--num-samples', '80', '--checkpoint-interval', '20', '--frames', '8', '--image-size', '32', '--no-bar')
    assert r.returncode == 2 and 'generator_version: 1 in the directory, 2 requested' in r.stderr
    with pytest.raises(ValueError, match='was made by generator version 1; this mono3d makes version 2'): load_dataset(out)
    assert shard_hashes(out) == before
    generate_dataset(tmp_path / 'fresh', 40, checkpoint_interval=20, frames=8, image_size=32, bar=False)
    ds = load_dataset(tmp_path / 'fresh')
    assert np.bincount(ds.labels).tolist() == [10, 10, 10, 10]
    assert all(sorted(ds.labels[i:i + 4].tolist()) == [0, 1, 2, 3] for i in range(0, 40, 4))
