"""`--precision measure`: the precision is chosen by a measurement at the start, recorded, and kept by a resume."""
import hashlib, os, signal, subprocess
from pathlib import Path
from conftest import run_cli, start_cli, read_json, wait_for
from mono3d.store import ManifestStore

TINY = ['--num-samples', '96', '--val-samples', '16', '--frames', '8', '--image-size', '32', '--channels', '8',
        '--channel-mults', '1,2,2', '--crop-size', '16', '--crop-frames', '4', '--crop-batch-size', '16', '--batch-size', '8',
        '--full-size-fraction', '0.25', '--warmup-steps', '5', '--threads', '1', '--no-bar', '--progress-every', '0.1',
        '--heartbeat-every', '0.5', '--print-every', '5']


def sha(p): return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def test_measured_precision_is_recorded_and_a_killed_run_resumes_in_it_to_the_same_weights(tmp_path):
    run = tmp_path / 'run'
    flags = [*TINY, '--steps', '24', '--ckpt-every-steps', '4', '--precision', 'measure']
    p = start_cli('train', run, *flags, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: (run / 'run.json').is_file() and 'precision_auto' in read_json(run / 'run.json')
             and ManifestStore(run / 'checkpoints', 'step_', kind='checkpoint').indices(), proc=p, timeout=180)
    verdict = read_json(run / 'run.json')['precision_auto']
    os.kill(p.pid, signal.SIGKILL); p.wait()
    assert verdict['chosen'] in ('fp32', 'bf16') and verdict['fp32_step_s'] > 0 and verdict['bf16_step_s'] > 0
    fast = verdict['speedup_bf16'] >= 1.15
    close = verdict['bf16_probe_loss'] <= verdict['fp32_probe_loss'] + 0.05 * abs(verdict['fp32_probe_loss']) + 1e-6
    assert verdict['chosen'] == ('bf16' if fast and close else 'fp32'), verdict
    r = run_cli('train', run, *flags)
    assert r.returncode == 0, r.stderr[-3000:]
    assert read_json(run / 'run.json')['precision_auto'] == verdict                   # the resume did not measure again
    m = read_json(run / 'metrics.json')
    assert m['timing']['precision'] == verdict['chosen'] and f"precision measured: {verdict['chosen']}" in r.stdout
    # the measurement touched nothing: the run is the run of that precision, told so from the start
    same = tmp_path / 'same'
    r = run_cli('train', same, *TINY, '--steps', '24', '--ckpt-every-steps', '4', '--precision', verdict['chosen'])
    assert r.returncode == 0, r.stderr[-3000:]
    assert sha(run / 'tokenizer.safetensors') == sha(same / 'tokenizer.safetensors')


def test_a_bad_precision_is_refused_naming_the_choices(tmp_path):
    r = run_cli('train', tmp_path / 'run', *TINY, '--precision', 'fp8')
    assert r.returncode == 2 and 'measure' in r.stderr and 'fp8' in r.stderr
    assert not (tmp_path / 'run').exists()
