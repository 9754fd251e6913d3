"""Evaluation: splits, metrics on hand-made cases, the random-code control, and real end-to-end runs
(papermill runner and `mono3d evaluate`, killed and resumed)."""
import json, signal, subprocess, sys, time
from pathlib import Path
import numpy as np
import pytest
import torch
from conftest import run_cli, start_cli, read_json, wait_for
from mono3d.train import TrainConfig, fit
from mono3d.evaluate import (EvalConfig, stratified_split, balanced_accuracy, confusion_matrix, forecast_errors,
                             constant_velocity_forecast, camera_frame_positions, CodeHead, train_head, evaluate_run)
from mono3d.data import generate_dataset, load_dataset

ROOT = Path(__file__).resolve().parent.parent
# the evaluation of a tiny real tokenizer: 8x32x32 videos, 10 test videos per class
TINY_EVAL = dict(num_samples=240, test_per_class=10, val_per_class=5, context_frames=4, head_epochs=2,
                 pixel_epochs=1, batch_size=16, threads=1, progress_every=0.1, heartbeat_every=0.5)


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp('eval') / 'run'
    fit(TrainConfig.from_dict(dict(run_dir=str(run), num_samples=96, val_samples=16, frames=8, image_size=32, batch_size=8,
                                   channels=8, channel_mults=(1, 2, 2), crop_size=16, crop_frames=4, crop_batch_size=16, epochs=1,
                                   warmup_steps=2, threads=1, progress_every=0.1, heartbeat_every=0.5, bar=False)))
    return run


def test_stratified_split_is_balanced_disjoint_and_stable():
    labels = np.random.default_rng(0).integers(0, 4, 1000)
    tr, va, te = stratified_split(labels, test_per_class=30, val_per_class=20, seed=3)
    assert len(set(tr) | set(va) | set(te)) == len(tr) + len(va) + len(te) == 1000      # disjoint, covers all
    assert np.bincount(labels[te], minlength=4).tolist() == [30] * 4                   # balanced held-out set
    assert np.bincount(labels[va], minlength=4).tolist() == [20] * 4
    again = stratified_split(labels, test_per_class=30, val_per_class=20, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((tr, va, te), again))             # stable under the seed
    other = stratified_split(labels, test_per_class=30, val_per_class=20, seed=4)
    assert not np.array_equal(te, other[2])
    with pytest.raises(ValueError, match='class 3 has 5 samples'):
        stratified_split(np.array([0] * 100 + [1] * 100 + [2] * 100 + [3] * 5), test_per_class=10, val_per_class=5, seed=0)


def test_metrics_on_hand_made_cases():
    y = np.array([0, 0, 1, 1, 2, 2, 3, 3, 3, 3])
    assert balanced_accuracy(y, y, 4) == 1.0
    assert confusion_matrix(y, y, 4).tolist() == np.diag([2, 2, 2, 4]).tolist()
    pred = np.array([0, 1, 1, 1, 2, 2, 3, 3, 0, 0])           # class 0: 1/2, class 1: 2/2, class 2: 2/2, class 3: 2/4
    assert balanced_accuracy(y, pred, 4) == pytest.approx((0.5 + 1 + 1 + 0.5) / 4)
    assert confusion_matrix(y, pred, 4)[3].tolist() == [2, 0, 0, 2]
    true = np.random.default_rng(0).normal(size=(5, 4, 3))
    e = forecast_errors(true, true)
    assert e['mae'] == 0 and e['mae_per_step'] == [0.0] * 4 and e['mean_distance'] == 0
    e = forecast_errors(true + np.array([0.3, 0.0, -0.4]), true)
    assert e['mae'] == pytest.approx(0.7 / 3) and e['mean_distance'] == pytest.approx(0.5)
    # constant velocity continues a straight uniform track exactly, and misses a curved one
    t = np.arange(8.0)[None, :, None]
    line = np.concatenate([t * 0.1, t * -0.05, t * 0 + 0.2], -1)
    assert np.allclose(constant_velocity_forecast(line[:, :5], 3), line[:, 5:])
    curve = np.concatenate([np.cos(t / 3), np.sin(t / 3), t * 0], -1)
    assert forecast_errors(constant_velocity_forecast(curve[:, :5], 3), curve[:, 5:])['mae'] > 0.01


def test_camera_frame_positions_match_the_projection(tmp_path):
    generate_dataset(tmp_path / 'd', 20, frames=8, image_size=32, bar=False)
    ds = load_dataset(tmp_path / 'd')
    q = camera_frame_positions(ds.trajectory_3d, ds.projections[:, 0], 32)        # (n, T, 3), rotation only
    assert np.allclose(np.linalg.norm(q, axis=-1), np.linalg.norm(ds.trajectory_3d, axis=-1), atol=1e-4)
    # re-projecting camera-frame points (translated by the camera's distance) gives the rendered centres
    P = ds.projections[:, 0].astype(np.float64)
    h = np.einsum('nij,ntj->nti', P[:, :, :3], ds.trajectory_3d) + P[:, None, :, 3]
    assert np.allclose(h[..., :2] / h[..., 2:], ds.centers_2d[:, 0], atol=1e-3)
    depth = q[..., 2] + 3.0                                                         # the camera sits 3 units away
    assert np.allclose(depth, h[..., 2], atol=1e-3)


def test_random_code_control_sits_near_chance():
    g = torch.Generator().manual_seed(0)
    n = 1200
    labels = np.random.default_rng(1).integers(0, 4, n)
    codes = torch.randint(0, 1000, (n, 2, 4, 4), generator=g)                      # carries nothing about the label
    tr, va, te = stratified_split(labels, test_per_class=100, val_per_class=25, seed=0)
    table = torch.rand(1000, 4, generator=g) * 2 - 1                               # stands for a code table
    head = CodeHead(table, 4, width=16)
    res = train_head(head, codes, torch.as_tensor(labels), tr, va, te, task='classify', epochs=4, batch_size=64, lr=2e-3, seed=0)
    assert 0.15 <= res['balanced_accuracy'] <= 0.35, res['balanced_accuracy']
    # the same head on codes that do carry the label learns it: the control is a real control
    informative = codes.clone(); informative[:, 0] = torch.as_tensor(labels)[:, None, None]
    res = train_head(CodeHead(table, 4, width=16), informative, torch.as_tensor(labels), tr, va, te, task='classify',
                     epochs=4, batch_size=64, lr=2e-3, seed=0)
    assert res['balanced_accuracy'] >= 0.9, res['balanced_accuracy']


SECTIONS = {'reconstruction', 'classification', 'forecasting', 'equations', 'cameras', 'targets', 'budget', 'splits', 'config', 'reproducibility'}
CLASSIFIERS = {'tokens', 'untrained_tokens', 'random_codes', 'kinematic', 'pixels_3dcnn'}
FORECASTERS = {'tokens', 'untrained_tokens', 'random_codes', 'pixels_3dcnn', 'constant_velocity', 'last_position'}


def _papermill(nb, out_nb, *params):
    cmd = [sys.executable, '-m', 'papermill', str(ROOT / 'nbs' / nb), str(out_nb), '--cwd', str(ROOT / 'nbs')]
    for k, v in params: cmd += ['-p', k, str(v)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


def test_papermill_runner_writes_the_whole_report(tiny_run, tmp_path):
    out = tmp_path / 'eval'
    params = [('run_dir', tiny_run), ('out_dir', out)] + list(TINY_EVAL.items())
    r = _papermill('evaluate_run.ipynb', tmp_path / 'out.ipynb', *params)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = read_json(out / 'report.json')
    assert SECTIONS <= set(rep)
    rec = rep['reconstruction']
    assert set(rec['per_class']) == {'linear', 'circular', 'helical', 'parabolic'}
    for k in ('psnr', 'blank_psnr', 'fg_psnr', 'centroid_err_px', 'codebook_usage', 'perplexity'): assert k in rec['overall']
    assert set(rep['classification']) == CLASSIFIERS
    for name, c in rep['classification'].items():
        assert 0 <= c['balanced_accuracy'] <= 1 and len(c['per_class_accuracy']) == 4
        assert np.array(c['confusion']).sum() == 40                                # 10 held-out videos per class
    assert set(rep['forecasting']) == FORECASTERS
    for f in rep['forecasting'].values(): assert len(f['mae_per_step']) == 4 and len(f['mae_per_axis']) == 3 and f['mae'] >= 0
    assert rep['splits']['test_per_class'] == [10, 10, 10, 10]
    assert set(rep['splits']['overlap_with_tokenizer_training'].values()) == {0}
    md = (out / 'report.md').read_text()
    assert 'blank-frame' in md and 'random codes' in md and 'constant velocity' in md and 'helical taken for circular' in md
    for png in ('confusion.png', 'reconstructions.png', 'forecast.png', 'axis_errors.png'): assert (out / png).stat().st_size > 1000
    assert 'COMPLETE' in (out / 'PROGRESS.txt').read_text()
    assert (tmp_path / 'out.ipynb').stat().st_size < 400_000


def _strip_times(rep):
    "The report without timings and the output/data paths (which differ between the two runs by design)."
    rep = json.loads(json.dumps(rep)); rep.pop('budget'); rep.pop('reproducibility'); rep['config'].pop('out_dir'); rep['data'].pop('data_dir')
    return rep


def test_evaluate_killed_then_rerun_gives_the_same_report(tiny_run, tmp_path):
    flags = [f'--{k.replace("_", "-")}={v}' for k, v in TINY_EVAL.items()]
    ref = run_cli('evaluate', tiny_run, '--out-dir', tmp_path / 'ref', *flags)
    assert ref.returncode == 0, ref.stderr[-3000:]
    out = tmp_path / 'killed'
    p = start_cli('evaluate', tiny_run, '--out-dir', out, *flags, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: (out / 'stages' / 'reconstruction.json').is_file(), proc=p, timeout=300)
    p.send_signal(signal.SIGKILL); p.wait()
    assert not (out / 'report.json').exists()
    done = sorted(x.name for x in (out / 'stages').glob('*.json'))
    r = run_cli('evaluate', tiny_run, '--out-dir', out, *flags)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'reusing' in r.stdout and all(d.removesuffix('.json') in r.stdout for d in done)
    assert _strip_times(read_json(out / 'report.json')) == _strip_times(read_json(tmp_path / 'ref' / 'report.json'))


def test_bad_inputs_give_clear_errors(tiny_run, tmp_path):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match='tokenizer.safetensors'):
        evaluate_run(run_dir=str(tmp_path / 'empty'), **TINY_EVAL)
    generate_dataset(tmp_path / 'd16', 40, frames=16, image_size=32, bar=False)
    with pytest.raises(ValueError, match='16 frames'):
        evaluate_run(run_dir=str(tiny_run), data_dir=str(tmp_path / 'd16'), out_dir=str(tmp_path / 'e'), **TINY_EVAL)
    with pytest.raises(ValueError, match="context_frames must be a multiple of the tokenizer's temporal factor 2, at least 2 and less than the 8 frames of the videos, got 3"):
        evaluate_run(run_dir=str(tiny_run), out_dir=str(tmp_path / 'e'), **{**TINY_EVAL, 'context_frames': 3})
    assert not (tmp_path / 'e').exists()                                              # refused before touching anything
    with pytest.raises(ValueError, match='test_per_class must be an integer >= 1, got 0'):
        EvalConfig(run_dir=str(tiny_run), test_per_class=0)
    # finished stages are never mixed with other settings: a changed budget in the same out_dir is refused
    done = tmp_path / 'done'
    evaluate_run(run_dir=str(tiny_run), out_dir=str(done), **TINY_EVAL)
    before = {p.name: p.read_bytes() for p in done.rglob('*.json')}
    with pytest.raises(ValueError, match="with different settings \\(head_epochs: 2 in the directory, 3 requested\\)"):
        evaluate_run(run_dir=str(tiny_run), out_dir=str(done), **{**TINY_EVAL, 'head_epochs': 3})
    assert {p.name: p.read_bytes() for p in done.rglob('*.json')} == before
    r = run_cli('evaluate', tmp_path / 'empty')
    assert r.returncode == 2 and 'tokenizer.safetensors' in r.stderr


def test_sigterm_while_a_head_trains_exits_within_seconds_and_resumes(tiny_run, tmp_path):
    flags = [f'--{k.replace("_", "-")}={v}' for k, v in {**TINY_EVAL, 'num_samples': 2000, 'head_epochs': 40}.items()]
    out = tmp_path / 'ev'
    p = start_cli('evaluate', tiny_run, '--out-dir', out, *flags, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: (out / 'stages' / 'reconstruction.json').is_file(), proc=p, timeout=300)
    time.sleep(2.0)                                                          # inside the first classification head
    t0 = time.monotonic(); p.send_signal(signal.SIGTERM); p.wait(60)
    assert p.returncode == 143 and time.monotonic() - t0 < 10
    assert read_json(out / 'progress.json')['status'] == 'PREEMPTED'
    assert not (out / 'stages' / 'classify_tokens.json').exists()            # the interrupted stage is not committed half-done
