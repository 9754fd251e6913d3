"Shared helpers for the long-running-process suite: run the real CLI in a subprocess and inspect its files."
import hashlib, json, os, subprocess, sys, time
from pathlib import Path


def cli_cmd(*args):
    return [sys.executable, '-m', 'mono3d.cli', *map(str, args)]


def run_cli(*args, timeout=600, **kw):
    "Run `mono3d ARGS` to completion; returns the CompletedProcess (text output)."
    return subprocess.run(cli_cmd(*args), capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, 'PYTHONUNBUFFERED': '1'}, **kw)


def start_cli(*args, **kw):
    "Start `mono3d ARGS` in the background (stdout/stderr to files in the job's parent when given)."
    return subprocess.Popen(cli_cmd(*args), env={**os.environ, 'PYTHONUNBUFFERED': '1'}, **kw)


def shard_hashes(d):
    "{file name: sha256} of every shard in a dataset directory."
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(d).glob('checkpoint_*.npz'))}


def read_json(p):
    return json.loads(Path(p).read_text())


def wait_for(pred, timeout=60.0, every=0.02, proc=None):
    """Poll `pred` until it returns a truthy value (returned); fail after `timeout` seconds, or at once when `proc` (a Popen)
    has exited and `pred` is still false (a job that died early is named as such, not waited on until the timeout)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = pred()
        if v: return v
        if proc is not None and proc.poll() is not None:
            v = pred()                                          # what it left behind may be the awaited state
            if v: return v
            cmd = ' '.join(map(str, proc.args)) if isinstance(proc.args, (list, tuple)) else str(proc.args)
            raise AssertionError(f'the process exited with {proc.returncode} before the condition was met: {cmd[-300:]}')
        time.sleep(every)
    raise AssertionError(f'condition not met within {timeout}s')
