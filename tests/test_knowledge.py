"""What the tokens know, part 2 (issue 23): the equation's parameters in the shards, triangulation from two
cameras, targets that a control can fail, depth per axis, and the whole two-camera evaluation run for real
(`mono3d generate` and `mono3d evaluate` in subprocesses, on a tiny trained tokenizer)."""
import numpy as np
import pytest
from conftest import run_cli, read_json
from mono3d.train import TrainConfig, fit
from mono3d.data import CLASSES, load_dataset, path_from_params
from mono3d.evaluate import (CLASSIFIERS, FORECASTERS, camera_frame_positions, equation_errors, equation_targets, render_equation,
                             rotated_projections, targets, triangulate)


@pytest.fixture(scope='module')
def two_cameras(tmp_path_factory):
    d = tmp_path_factory.mktemp('knowledge') / 'data'
    r = run_cli('generate', d, '--num-samples', 40, '--frames', 8, '--image-size', 32, '--cameras', 2, '--no-bar', '--quiet')
    assert r.returncode == 0, r.stderr[-2000:]
    return load_dataset(d, camera=None)


def test_each_shard_holds_the_equation_that_draws_its_path(two_cameras, tmp_path):
    ds = two_cameras
    assert ds.params is not None and set(np.unique(ds.labels)) == {0, 1, 2, 3}
    assert np.allclose(path_from_params(ds.params, ds.labels, 8), ds.trajectory_3d, atol=1e-5)
    r = run_cli('generate', tmp_path / 'rot', '--num-samples', 12, '--frames', 8, '--image-size', 32, '--rotate', '--no-bar', '--quiet')
    assert r.returncode == 0, r.stderr[-2000:]
    rot = load_dataset(tmp_path / 'rot')
    assert np.allclose(path_from_params(rot.params, rot.labels, 8), rot.trajectory_3d, atol=1e-5)
    # the parameters a head regresses: helical has radius, angular speed and rise; the others' slots are empty
    y = equation_targets(ds.params, ds.labels, ds.projections[:, 0], 32)
    h = int(np.flatnonzero(ds.labels == CLASSES.index('helical'))[0])
    assert np.isfinite(y[h]).sum() == 3 and 'helix of radius' in render_equation(2, y[h])
    assert equation_errors(y, y, ds.labels, ds.labels)['all_within_10pct'] == 1.0
    assert equation_errors(y, y, ds.labels, (ds.labels + 1) % 4)['all_within_10pct'] == 0.0          # the wrong family is wrong


def test_triangulation_recovers_the_track_and_is_sensitive_to_noise_and_angle(two_cameras):
    ds = two_cameras
    exact = triangulate(ds.projections, ds.centers_2d)
    assert np.abs(exact - ds.trajectory_3d).max() < 1e-3
    rng = np.random.default_rng(0)
    noisy = np.abs(triangulate(ds.projections, ds.centers_2d + rng.normal(0, 0.5, ds.centers_2d.shape)) - ds.trajectory_3d).mean()
    turned = np.abs(triangulate(rotated_projections(ds.projections, 32, 0.5, rng), ds.centers_2d) - ds.trajectory_3d).mean()
    assert 1e-3 < noisy < 0.1 and 1e-3 < turned < 0.1
    # a 0.5 degree turn moves a camera's image by f * tan(0.5 degree) pixels: about what the DLT then misplaces
    q = camera_frame_positions(ds.trajectory_3d, ds.projections[:, 0], 32)
    assert q.shape == ds.trajectory_3d.shape


def test_a_control_that_meets_a_target_makes_it_not_informative():
    cls = {k: {'balanced_accuracy': a} for k, a in zip(CLASSIFIERS, (0.995, 0.994, 0.25, 0.99, 0.9))}
    fc = {k: {'mae': e} for k, e in zip(FORECASTERS, (0.04, 0.2, 0.3, 0.1, 0.2, 0.3))}
    t = targets({'classification': cls, 'forecasting': fc})
    acc = t['classification: tokens >= 99% balanced accuracy']
    assert acc['met'] and acc['also_met_by'] == ['untrained_tokens', 'pixels_3dcnn'] and not acc['informative']
    assert not t['classification: tokens ahead of the untrained tokenizer by >= 30 points']['met']
    f = t['forecast: tokens MAE <= 0.05']
    assert f == {'met': True, 'also_met_by': [], 'informative': True}
    assert t["forecast: tokens MAE <= half the untrained tokenizer's"]['met']
    fc['last_position']['mae'] = 0.03                                      # standing still would do: the target shows nothing
    assert not targets({'classification': cls, 'forecasting': fc})['forecast: tokens MAE <= 0.05']['informative']


@pytest.fixture(scope='module')
def tiny_tokenizer(tmp_path_factory):
    run = tmp_path_factory.mktemp('knowledge_run') / 'run'
    fit(TrainConfig.from_dict(dict(run_dir=str(run), num_samples=96, val_samples=16, frames=8, image_size=32, batch_size=8,
                                   channels=8, channel_mults=(1, 2, 2), crop_size=16, crop_frames=4, crop_batch_size=16, epochs=1,
                                   warmup_steps=2, threads=1, bar=False, quiet=True)))
    return run


def test_two_camera_evaluation_reports_equations_depth_and_one_camera_against_two(tiny_tokenizer, tmp_path):
    out = tmp_path / 'eval'
    r = run_cli('evaluate', tiny_tokenizer, '--out-dir', out, '--num-samples', 240, '--test-per-class', 10, '--val-per-class', 5,
                '--head-epochs', 2, '--pixel-epochs', 1, '--batch-size', 16, '--threads', 1, '--quiet', timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = read_json(out / 'report.json')
    assert rep['config']['context_frames'] == 4 and rep['data']['cameras'] == 2          # half of the run's 8 frames, by default
    assert set(rep['classification']) == set(CLASSIFIERS) and set(rep['forecasting']) == set(FORECASTERS)
    assert set(rep['equations']) == {'tokens', 'untrained_tokens', 'random_codes', 'pixels_3dcnn'}
    eq = rep['equations']['tokens']
    assert set(eq['median_relative_error']) == set(CLASSES) and len(eq['examples']) == 4 and 0 <= eq['all_within_10pct'] <= 1
    cams = rep['cameras']
    assert {'one_camera_tokens', 'two_camera_tokens', 'triangulation', 'triangulation_noise_0.5px', 'triangulation_angle_0.5deg'} == set(cams)
    assert all(len(m['mae_per_axis']) == 3 for m in cams.values())
    # the classical answer from two real views is far better than any head of this barely trained tokenizer, and noise costs it
    assert cams['triangulation']['mae'] < 0.01 < cams['one_camera_tokens']['mae']
    assert cams['triangulation_noise_0.5px']['mae'] > cams['triangulation']['mae']
    # the equation fitted to 3D tracks: the true pixels' triangulation writes nearly every equation, the controls none
    fits = rep['equation_fits']
    assert {'two_camera_decoded', 'one_camera_tokens_head', 'two_camera_tokens_head', 'one_camera_ceiling', 'two_camera_untrained_tokens',
            'two_camera_random_codes', 'triangulation'} == set(fits)
    assert fits['triangulation']['all_within_10pct'] >= 0.7 and fits['triangulation']['track_mae'] < 0.01       # 8 frames of 32x32
    assert fits['two_camera_random_codes']['all_within_10pct'] <= 0.1 and fits['two_camera_untrained_tokens']['all_within_10pct'] <= 0.1
    assert any(k.startswith("equations from both cameras' decoded tokens") for k in rep['targets'])
    # one camera knowing its camera, the exact centroids and radii but one size for every object stays below two cameras' fit
    assert fits['one_camera_ceiling']['all_within_10pct'] < fits['triangulation']['all_within_10pct']
    for m in rep['forecasting'].values(): assert set(m['mae_per_class']) == set(CLASSES)
    assert all({'met', 'also_met_by', 'informative'} == set(t) for t in rep['targets'].values())
    md = (out / 'report.md').read_text()
    for words in ('helical taken for circular', 'x / y / depth', 'The equation', 'One camera against two', 'untrained tokenizer codes (control)',
                  "fitted to the decoded codes' 3D track", 'random codes, both cameras (control)'):
        assert words in md, words
    assert (out / 'axis_errors.png').stat().st_size > 1000


def test_the_fitted_equation_of_every_family_is_exact_on_its_own_path():
    "Least squares in the predicted class's family gives back every parameter of a true track (a line, a parabola, a circle, a helix)."
    from mono3d.data import DatasetConfig, sample_metadata
    from mono3d.evaluate import fit_equation
    m = sample_metadata(DatasetConfig(frames=16, image_size=64), range(40))
    y = equation_targets(m['params'], m['labels'], m['projections'][:, 0], 64)
    tracks = camera_frame_positions(m['trajectory_3d'], m['projections'][:, 0], 64)
    e = equation_errors(np.stack([fit_equation(p, c) for p, c in zip(tracks, m['labels'])]), y, m['labels'], m['labels'])
    assert e['all_within_10pct'] == 1.0 and max(v for d in e['median_relative_error'].values() for v in d.values()) < 1e-3
    wrong = np.stack([fit_equation(p, (c + 1) % 4) for p, c in zip(tracks, m['labels'])])      # another family's fit is not the equation
    assert equation_errors(wrong, y, m['labels'], m['labels'])['all_within_10pct'] == 0.0
