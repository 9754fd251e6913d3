"""Benchmark: the kill, stop, stall, corrupt and clock-skew scenarios, each run many times with real processes.

    python bench/chaos.py [--runs 30] [--parallel 2] [--scenarios kill_train,...] [--work DIR]

Every scenario starts the real command (`python -m mono3d.cli ...`) on a tiny configuration, does something
nasty to it at a random moment, then runs the same command again until it ends, and checks the outcome against
an uninterrupted reference run. `--parallel 2` runs two scenario instances at a time (the load of the test
suite's two pytest-xdist workers). It prints, per scenario, the runs, the failures (with what failed) and the
worst seconds from SIGTERM to exit where a stop is involved.

Scenarios:
- kill_train: SIGKILL a training run at a random moment, 1-3 times, then resume: weights byte-identical to the reference.
- kill_generate: SIGKILL generation (2 workers) at a random moment, then resume: shards byte-identical.
- sigterm_train: SIGTERM a training run at a random moment (inside steps, validations, checkpoints): exit 143 within
  10 s, then resume: weights byte-identical.
- stall: SIGSTOP the batch worker: the job shows HUNG; SIGTERM still stops it within 10 s; the resume is byte-identical.
- corrupt: flip a byte of the newest checkpoint after a SIGTERM: the resume falls back and ends byte-identical.
- skew: a writer whose clock is an hour behind is shown RUNNING by `mono3d status`; once it stops writing, STALLED.
- distributed: torchrun with 2 processes (gloo), SIGKILL of the launcher at a random moment, then resume with 2: the
  weights are byte-identical to an uninterrupted 2-process run.
- elastic: `--micro-batches 4`, torchrun with 2 processes, SIGKILL at a random moment, then resume on 1 process: the
  weights are byte-identical to an uninterrupted 1-process run.
"""
import argparse, zlib, concurrent.futures as cf, hashlib, json, os, platform, random, shutil, signal, subprocess, sys, tempfile, time
from pathlib import Path
from machine import cpu

TINY = ['--num-samples', '96', '--val-samples', '16', '--frames', '8', '--image-size', '32', '--channels', '8',
        '--channel-mults', '1,2,2', '--crop-size', '16', '--crop-frames', '4', '--crop-batch-size', '16', '--threads', '1',
        '--progress-every', '0.1', '--heartbeat-every', '0.5', '--print-every', '5', '--no-bar', '--epochs', '12',
        '--ckpt-every-steps', '5', '--val-every-steps', '9', '--warmup-steps', '5']
GEN = ['--frames', '8', '--image-size', '32', '--no-bar', '--progress-every', '0.1', '--heartbeat-every', '0.5',
       '--num-samples', '6000', '--checkpoint-interval', '500', '--workers', '2']


def cli(*args): return [sys.executable, '-m', 'mono3d.cli', *map(str, args)]
def sha(p): return hashlib.sha256(Path(p).read_bytes()).hexdigest()
def shards(d): return {p.name: sha(p) for p in sorted(Path(d).glob('checkpoint_*.npz'))}


def progress(d):
    try: return json.loads((Path(d) / 'progress.json').read_text())
    except (OSError, ValueError): return {}


def wait(pred, timeout=300):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred(): return True
        time.sleep(0.02)
    raise AssertionError(f'condition not met within {timeout} s')


def start(*args, env=None):
    return subprocess.Popen(cli(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def finish(*args, env=None):
    r = subprocess.run(cli(*args), capture_output=True, text=True, env=env, timeout=900)
    if r.returncode != 0: raise AssertionError(f'exit {r.returncode}: {r.stderr[-600:]}')


def running(p, d, done=0):
    s = progress(d)
    return s.get('pid') == p.pid and s.get('done', 0) >= done and s.get('status') in ('RUNNING', 'HUNG')


def sigterm(p):
    t0 = time.monotonic(); p.send_signal(signal.SIGTERM); p.wait(60)
    return time.monotonic() - t0


# ---- the scenarios: each returns the seconds of its worst stop (or None) and raises AssertionError on a failure ----

def kill_train(work, ref, rng):
    run, data = work / 'run', ref['data']
    for _ in range(rng.randint(1, 3)):
        p = start('train', run, *TINY, '--data-dir', data)
        time.sleep(rng.uniform(1.5, 9.0)); p.kill(); p.wait()
    finish('train', run, *TINY, '--data-dir', data)
    assert sha(run / 'tokenizer.safetensors') == ref['train'], 'weights differ from the uninterrupted run'


def kill_generate(work, ref, rng):
    d = work / 'ds'
    p = start('generate', d, *GEN)
    time.sleep(rng.uniform(1.0, 6.0)); p.kill(); p.wait()
    finish('generate', d, *GEN)
    assert shards(d) == ref['generate'], 'shards differ from the uninterrupted run'


def sigterm_train(work, ref, rng):
    run, data, worst = work / 'run', ref['data'], 0.0
    p = start('train', run, *TINY, '--data-dir', data)
    wait(lambda: running(p, run))
    time.sleep(rng.uniform(0.0, 5.0))
    if p.poll() is None:
        worst = sigterm(p)
        assert p.returncode in (0, 143), f'exit {p.returncode} after SIGTERM'
        assert worst < 10, f'{worst:.1f} s from SIGTERM to exit'
    finish('train', run, *TINY, '--data-dir', data)
    assert sha(run / 'tokenizer.safetensors') == ref['train'], 'weights differ from the uninterrupted run'
    return worst


def stall(work, ref, rng):
    run, data = work / 'run', ref['data']
    p = start('train', run, *TINY, '--data-dir', data, '--workers', '1', '--hung-after', '4')
    kids = []
    try:
        wait(lambda: running(p, run, done=2))
        kids = [int(x) for x in subprocess.run(['pgrep', '-P', str(p.pid)], capture_output=True, text=True).stdout.split()]
        assert kids, 'no batch worker found'
        for k in kids: os.kill(k, signal.SIGSTOP)
        wait(lambda: progress(run).get('status') == 'HUNG' or p.poll() is not None, timeout=60)
        if p.poll() is not None: raise AssertionError('the job ended before it was HUNG')
        worst = sigterm(p)
        assert p.returncode == 143 and worst < 10, f'exit {p.returncode} after {worst:.1f} s'
    finally:
        if p.poll() is None: p.kill()
        for k in kids:
            try: os.kill(k, signal.SIGKILL)
            except ProcessLookupError: pass
    finish('train', run, *TINY, '--data-dir', data, '--workers', '1')
    assert sha(run / 'tokenizer.safetensors') == ref['train'], 'weights differ from the uninterrupted run'
    return worst


def corrupt(work, ref, rng):
    run, data = work / 'run', ref['data']
    p = start('train', run, *TINY, '--data-dir', data)
    wait(lambda: running(p, run, done=rng.randint(11, 30)))
    worst = sigterm(p)
    pts = sorted((run / 'checkpoints').glob('step_*.pt'))
    assert len(pts) >= 2, f'{len(pts)} checkpoints'
    b = bytearray(pts[-1].read_bytes()); b[rng.randrange(len(b))] ^= 0xFF; pts[-1].write_bytes(b)
    finish('train', run, *TINY, '--data-dir', data)
    assert sha(run / 'tokenizer.safetensors') == ref['train'], 'weights differ from the uninterrupted run'
    return worst


def skew(work, ref, rng):
    d = work / 'ds'
    p = start('generate', d, *GEN[:-4], '--num-samples', '200000', '--checkpoint-interval', '500')
    try:
        wait(lambda: running(p, d))
        os.kill(p.pid, signal.SIGSTOP)
        s = progress(d); s['updated_unix'] -= 3600
        s['updated_at'] = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(s['updated_unix']))
        (d / 'progress.json').write_text(json.dumps(s))
        r = subprocess.run(cli('status', d), capture_output=True, text=True)
        assert 'status:   RUNNING' in r.stdout, f'a live job with a slow clock shows: {r.stdout.splitlines()[1:2]}'
        time.sleep(1.6)
        r = subprocess.run(cli('status', d), capture_output=True, text=True)
        assert 'status:   STALLED' in r.stdout and r.returncode == 3, f'a job that stopped writing shows: {r.stdout.splitlines()[1:2]}'
    finally:
        p.kill(); p.wait()


def distributed(work, ref, rng):
    run, data = work / 'run', ref['data']
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    def torchrun(): return [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port', str(rng.randint(20000, 60000)),
                            '-m', 'mono3d.train', str(run), *TINY, '--data-dir', str(data), '--batch-size', '4', '--crop-batch-size', '8']
    p = subprocess.Popen(torchrun(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    time.sleep(rng.uniform(4.0, 14.0))
    os.killpg(p.pid, signal.SIGKILL); p.wait()
    subprocess.run(['pkill', '-9', '-f', str(run)], capture_output=True)
    time.sleep(0.5)
    r = subprocess.run(torchrun(), capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, f'the resume exited {r.returncode}: {r.stderr[-600:]}'
    assert sha(run / 'tokenizer.safetensors') == ref['distributed'], 'weights differ from the uninterrupted 2-process run'


ELASTIC = ['--micro-batches', '4', '--batch-size', '2', '--crop-batch-size', '4']


def elastic(work, ref, rng):
    run, data = work / 'run', ref['data']
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', '-m', 'mono3d.train', str(run), *TINY,
           '--data-dir', str(data), *ELASTIC]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    time.sleep(rng.uniform(4.0, 14.0))
    os.killpg(p.pid, signal.SIGKILL); p.wait()
    subprocess.run(['pkill', '-9', '-f', str(run)], capture_output=True)
    time.sleep(0.5)
    finish('train', run, *TINY, '--data-dir', data, *ELASTIC)
    assert sha(run / 'tokenizer.safetensors') == ref['elastic'], 'weights differ from the uninterrupted 1-process run'


SCENARIOS = {f.__name__: f for f in (kill_train, kill_generate, sigterm_train, stall, corrupt, skew, distributed, elastic)}


def references(work: Path, names) -> dict:
    "The uninterrupted runs the scenarios are compared with."
    ref = {'data': work / 'data'}
    subprocess.run(cli('generate', ref['data'], '--num-samples', '96', '--checkpoint-interval', '32', '--frames', '8', '--image-size', '32',
                       '--no-bar'), check=True, capture_output=True)
    if {'kill_train', 'sigterm_train', 'stall', 'corrupt'} & set(names):
        finish('train', work / 'ref_train', *TINY, '--data-dir', ref['data']); ref['train'] = sha(work / 'ref_train' / 'tokenizer.safetensors')
    if 'kill_generate' in names:
        finish('generate', work / 'ref_gen', *GEN); ref['generate'] = shards(work / 'ref_gen')
    if 'distributed' in names:
        r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port', '29731', '-m', 'mono3d.train',
                            str(work / 'ref_dist'), *TINY, '--data-dir', str(ref['data']), '--batch-size', '4', '--crop-batch-size', '8'],
                           capture_output=True, text=True, env={**os.environ, 'OMP_NUM_THREADS': '1'})
        assert r.returncode == 0, r.stderr[-2000:]
        ref['distributed'] = sha(work / 'ref_dist' / 'tokenizer.safetensors')
    if 'elastic' in names:
        finish('train', work / 'ref_elastic', *TINY, '--data-dir', ref['data'], *ELASTIC)
        ref['elastic'] = sha(work / 'ref_elastic' / 'tokenizer.safetensors')
    return ref


def one(name, k, work, ref, seed):
    d = work / f'{name}-{k}'
    d.mkdir()
    rng = random.Random(seed)
    t0 = time.monotonic()
    try: stop = SCENARIOS[name](d, ref, rng); err = None
    except Exception as e: stop, err = None, f'{type(e).__name__}: {e}'
    finally: subprocess.run(['pkill', '-9', '-f', str(d)], capture_output=True)
    if err is None: shutil.rmtree(d, ignore_errors=True)
    return name, k, stop, err, time.monotonic() - t0




def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--runs', type=int, default=30)
    ap.add_argument('--parallel', type=int, default=2)
    ap.add_argument('--scenarios', default=','.join(SCENARIOS))
    ap.add_argument('--work', default=None)
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    names = [n for n in a.scenarios.split(',') if n]
    bad = [n for n in names if n not in SCENARIOS]
    if bad: sys.exit(f'unknown scenario(s) {bad}; expected some of {list(SCENARIOS)}')
    work = Path(a.work or tempfile.mkdtemp(prefix='mono3d-chaos-'))
    t0 = time.time()
    print(f'# bench/chaos.py  {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}\n# machine: {cpu()}, Python {platform.python_version()}\n'
          f'# runs {a.runs} per scenario, {a.parallel} at a time; work in {work}', flush=True)
    ref = references(work, names)
    jobs = [(n, k) for k in range(a.runs) for n in names]
    rows = {n: {'runs': 0, 'failures': [], 'worst_stop_s': None, 'seconds': 0.0} for n in names}
    with cf.ThreadPoolExecutor(a.parallel) as ex:
        futs = [ex.submit(one, n, k, work, ref, zlib.crc32(f'{a.seed}/{n}/{k}'.encode())) for n, k in jobs]
        for f in cf.as_completed(futs):
            n, k, stop, err, secs = f.result()
            r = rows[n]; r['runs'] += 1; r['seconds'] += secs
            if err: r['failures'].append(f'run {k}: {err}')
            if stop is not None: r['worst_stop_s'] = max(r['worst_stop_s'] or 0.0, stop)
            print(f'{n:<15s} run {k:>3d}  {"FAIL " + err if err else "ok"}' + (f'  stop {stop:.2f} s' if stop else ''), flush=True)
    print(f'\n| scenario | runs | failures | worst SIGTERM-to-exit | mean s/run |\n|---|---|---|---|---|')
    for n, r in rows.items():
        w = f'{r["worst_stop_s"]:.2f} s' if r['worst_stop_s'] is not None else '-'
        print(f'| {n} | {r["runs"]} | {len(r["failures"])} | {w} | {r["seconds"] / max(1, r["runs"]):.1f} |')
    for n, r in rows.items():
        for f in r['failures']: print(f'  {n}: {f}')
    print(f'\n# total {(time.time() - t0) / 60:.1f} min')
    sys.exit(1 if any(r['failures'] for r in rows.values()) else 0)


if __name__ == '__main__': main()
