"""Researcher ergonomics (issue 14), on real runs: tracebacks that are kept, experiment tracking, the reproducibility
record, a --help that teaches, config files, videos to look at, a console that does not tear, notebooks that show
their results."""
import fcntl, json, os, pty, re, select, signal, struct, subprocess, sys, termios
from pathlib import Path
import pytest
from conftest import run_cli, start_cli, read_json, wait_for, cli_cmd


def ManifestStore(*a, **k):
    from mono3d.store import ManifestStore as M      # imported when a test runs: the file collects against any version
    return M(*a, **k)


def sha256_file(p):
    from mono3d.store import sha256_file as f
    return f(p)

ROOT = Path(__file__).resolve().parent.parent
TINY = ['--num-samples', '96', '--val-samples', '16', '--frames', '8', '--image-size', '32', '--channels', '8',
        '--channel-mults', '1,2,2', '--crop-size', '16', '--crop-frames', '4', '--crop-batch-size', '16', '--threads', '1',
        '--progress-every', '0.1', '--heartbeat-every', '0.5', '--print-every', '5', '--no-bar']


def _broken_dataset(tmp_path) -> Path:
    "A dataset whose second shard passes its checksum but is not an npz file: reading it fails deep inside the training."
    data = tmp_path / 'data'
    assert run_cli('generate', data, '--num-samples', '96', '--checkpoint-interval', '48', '--frames', '8', '--image-size', '32',
                   '--no-bar').returncode == 0
    store = ManifestStore(data, 'checkpoint_', kind='shard')
    p = store.path(48, '.npz'); p.write_bytes(b'this is not a zip file' * 100)
    m = json.loads(store.manifest_path(48).read_text())
    m['files']['checkpoint_00000048.npz'] = {'sha256': sha256_file(p), 'bytes': p.stat().st_size}
    store.manifest_path(48).write_text(json.dumps(m))
    return data


def test_an_unexpected_failure_keeps_its_traceback_in_error_log(tmp_path):
    data = _broken_dataset(tmp_path)
    run = tmp_path / 'run'
    r = run_cli('train', run, *TINY, '--epochs', '2', '--data-dir', data, '--workers', '0')
    assert r.returncode == 1, r.stderr[-2000:]
    log = (run / 'error.log').read_text()
    assert 'Traceback (most recent call last)' in log and 'in load_videos' in log and 'ValueError' in log
    assert 'Traceback (most recent call last)' in r.stderr and f'(traceback in {run / "error.log"})' in r.stderr
    s = read_json(run / 'progress.json')
    assert s['status'] == 'FAILED' and 'ValueError' in s['message']
    # --debug lets the exception raise as it is (Python's own traceback and exit code)
    r = run_cli('train', run, *TINY, '--epochs', '2', '--data-dir', data, '--workers', '0', '--debug')
    assert r.returncode == 1 and 'in load_videos' in r.stderr and 'mono3d train: failed' not in r.stderr
    # a bad value is not a failure: exit 2, a message, no traceback
    r = run_cli('train', run, *TINY, '--epochs', '0')
    assert r.returncode == 2 and 'epochs must be an integer in [1, 100000], got 0' in r.stderr and 'Traceback' not in r.stderr


def test_tensorboard_gets_the_scalars_and_no_duplicate_steps_after_a_resume(tmp_path):
    pytest.importorskip('tensorboard')
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    run = tmp_path / 'run'
    flags = [*TINY, '--epochs', '12', '--log-to', 'tensorboard', '--ckpt-every-steps', '5']
    p = start_cli('train', run, *flags, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: (run / 'progress.json').is_file() and read_json(run / 'progress.json')['job'] == 'train'
             and read_json(run / 'progress.json')['done'] >= 12, proc=p, timeout=120)
    os.kill(p.pid, signal.SIGKILL); p.wait()                  # killed after step 12: steps 11-12 were logged, not checkpointed
    r = run_cli('train', run, *flags)
    assert r.returncode == 0, r.stderr[-2000:]
    total = read_json(run / 'metrics.json')['steps']
    acc = EventAccumulator(str(run / 'tb'), size_guidance={'scalars': 0}); acc.Reload()
    steps = [e.step for e in acc.Scalars('train/loss')]
    assert sorted(set(steps)) == list(range(1, total + 1)) and len(steps) == total, 'duplicated or missing steps'
    loss = read_json(run / 'metrics.json')['history']['train_loss']
    assert [round(e.value, 5) for e in acc.Scalars('train/loss')] == [round(x, 5) for x in loss]
    assert 'val/psnr' in acc.Tags()['scalars'] and 'val/psnr_over_blank' in acc.Tags()['scalars']
    for tag in ('train/l1', 'train/l2', 'train/aux', 'train/grad_norm', 'train/lr', 'val/ssim', 'val/codebook_usage', 'val/perplexity'):
        assert tag in acc.Tags()['scalars'], tag                     # everything the console has, and more
    assert 'val/reconstructions' in acc.Tags()['images']             # the validation's picture, at each validation
    hp = EventAccumulator(str(run / 'tb' / 'hparams')); hp.Reload()
    final = read_json(run / 'metrics.json')['final']
    assert hp.Scalars('final/psnr')[0].value == pytest.approx(final['psnr'], rel=1e-6)   # the hyperparameters beside the final metrics


def _wandb_records(path) -> list:
    "The protobuf records of a W&B `.wandb` file: a 7-byte header, then LevelDB's log format (32 KiB blocks of FULL/FIRST/MIDDLE/LAST chunks)."
    from wandb.proto import wandb_internal_pb2 as pb
    data, pos, block, out, part = Path(path).read_bytes(), 7, 32768, [], b''
    assert data[:4] == b':W&B', data[:7]
    while pos + 7 <= len(data):
        if block - pos % block < 7: pos += block - pos % block; continue      # a block's tail too short for a header is padding
        n, kind = int.from_bytes(data[pos + 4:pos + 6], 'little'), data[pos + 6]
        if kind == 0 and n == 0: break
        chunk, pos = data[pos + 7:pos + 7 + n], pos + 7 + n
        part = chunk if kind in (1, 2) else part + chunk
        if kind in (1, 4): r = pb.Record(); r.ParseFromString(part); out.append(r)
    return out


def _items(items) -> dict:
    return {i.key or '/'.join(i.nested_key): i.value_json for i in items}


def test_wandb_offline_run_resumes_the_same_run(tmp_path):
    pytest.importorskip('wandb')
    run = tmp_path / 'run'
    env = {**os.environ, 'WANDB_MODE': 'offline', 'WANDB_SILENT': 'true', 'WANDB_DIR': str(run)}
    flags = [*TINY, '--epochs', '3', '--log-to', 'wandb']
    r = subprocess.run(cli_cmd('train', run, *flags), capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    wid = read_json(run / 'run.json')['wandb_id']
    runs = list((run / 'wandb').glob(f'offline-run-*-{wid}'))
    assert runs, sorted(p.name for p in (run / 'wandb').iterdir())
    # read the offline run back: every scalar the console has, the picture of each validation, the hyperparameters, the final metrics
    records = _wandb_records(next(runs[0].glob('run-*.wandb')))
    history = [_items(r.history.item) for r in records if r.WhichOneof('record_type') == 'history']
    for tag in ('train/loss', 'train/l1', 'train/l2', 'train/aux', 'train/grad_norm', 'train/lr', 'val/psnr', 'val/psnr_over_blank',
                'val/ssim', 'val/codebook_usage', 'val/perplexity', 'val/reconstructions/path'):
        assert any(tag in h for h in history), tag
    metrics = read_json(run / 'metrics.json')
    logged = [round(float(h['train/loss']), 5) for h in history if 'train/loss' in h]
    assert logged == [round(x, 5) for x in metrics['history']['train_loss']]
    shown = [json.loads(h['val/reconstructions/path']) for h in history if 'val/reconstructions/path' in h]
    assert len(shown) == len(metrics['history']['val']) and all((runs[0] / 'files' / s).is_file() for s in shown)
    psnr = [float(h['val/psnr']) for h in history if 'val/psnr' in h]
    assert psnr == pytest.approx([v['psnr'] for v in metrics['history']['val']], rel=1e-9)
    config = next(_items(r.run.config.update) for r in records if r.WhichOneof('record_type') == 'run')
    assert json.loads(config['optim'])['lr'] == 3e-3 and json.loads(config['model'])['channels'] == 8
    summary = {k: v for r in records if r.WhichOneof('record_type') == 'summary' for k, v in _items(r.summary.update).items()}
    assert float(summary['final/psnr']) == pytest.approx(metrics['final']['psnr'], rel=1e-6)
    r = subprocess.run(cli_cmd('train', run, *[f if f != '3' else '4' for f in flags]), capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert read_json(run / 'run.json')['wandb_id'] == wid and len(list((run / 'wandb').glob(f'offline-run-*-{wid}'))) == 2


def test_reproducibility_record_in_run_metrics_and_report(tmp_path):
    run = tmp_path / 'run'
    r = run_cli('train', run, *TINY, '--epochs', '1')
    assert r.returncode == 0, r.stderr[-2000:]
    rec = read_json(run / 'run.json')['runs'][-1]
    for k in ('mono3d', 'python', 'torch', 'numpy', 'vector_quantize_pytorch', 'command', 'host', 'world_size', 'git'): assert k in rec, k
    assert 'train' in rec['command'] and rec['world_size'] == 1 and rec['torch'].startswith('2.')
    if (ROOT / '.git').exists(): assert re.fullmatch(r'[0-9a-f]{40}', rec['git']['commit']) and isinstance(rec['git']['dirty'], bool)
    assert read_json(run / 'metrics.json')['reproducibility'] == rec
    r = run_cli('evaluate', run, '--num-samples', '160', '--test-per-class', '5', '--val-per-class', '3', '--context-frames', '4',
                '--head-epochs', '1', '--pixel-epochs', '1', '--batch-size', '16', '--head-width', '8', '--threads', '1')
    assert r.returncode == 0, r.stderr[-2000:]
    rep = read_json(run / 'eval' / 'report.json')
    assert rep['reproducibility']['torch'] == rec['torch'] and 'evaluate' in rep['reproducibility']['command']
    # the status pages: metrics with their units, the validation curves, and the evaluation's report as tables
    page = (run / 'status.html').read_text()
    assert re.search(r'<td>val_psnr</td><td>-?\d+\.\d\d dB</td>', page) and re.search(r'<td>codebook_usage</td><td>\d+\.\d%</td>', page)
    assert 'alt="validation.png"' in page and 'alt="loss_curve.png"' in page
    page = (run / 'eval' / 'status.html').read_text()
    assert page.count('<table class="md">') >= 3 and '<th>' in page and 'alt="confusion.png"' in page


def test_help_teaches_and_version_answers():
    r = run_cli('train', '-h')
    h = r.stdout
    assert r.returncode == 0
    for text in ('data: the videos', 'model: the tokenizer', 'optim:', 'recipe:', 'job:', '--quantizer {fsq,lfq}', 'one of: fsq, lfq',
                 '--device {auto,cpu,cuda}', '--precision {auto,fp32,bf16,measure}', '--channels-last, --no-channels-last', '--config FILE',
                 'held-out videos', '--data-seed', '--restart'):
        assert text in h, text
    assert '(default: 0.003)' in h and '(default: 5,5,5,5,5)' in h
    r = run_cli('generate', '-h')
    assert r.returncode == 0 and '--num-samples' in r.stdout and '(default: 50000)' in r.stdout and '--bar, --no-bar' in r.stdout
    r = run_cli('--version')
    assert r.returncode == 0 and re.fullmatch(r'mono3d \d+\.\d+\.\d+\n', r.stdout)
    # every job's help, and a refused flag, answer without importing torch (or matplotlib): the parsers live in mono3d.config
    probe = ('import sys, mono3d.cli as c\nfor argv in [[n, "-h"] for n in c.JOBS] + [["train", "r", "--epoks", "3"], ["sample", "r", "--label", "spiral"]]:\n'
             '    try: c.main(argv)\n    except SystemExit as e: assert e.code == (0 if "-h" in argv else 2), (argv, e.code)\n'
             'print(sorted(m for m in ("torch", "matplotlib", "numpy") if m in sys.modules))')
    r = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.splitlines()[-1] == '[]', (r.stdout[-300:], r.stderr[-2000:])
    assert '--epoks: did you mean --epochs?' in r.stderr and "invalid choice: 'spiral'" in r.stderr


def test_config_file_yaml_json_and_an_earlier_run_json_with_flags_on_top(tmp_path):
    run = tmp_path / 'run'
    assert run_cli('train', run, *TINY, '--epochs', '1').returncode == 0
    # an earlier run's run.json reproduces its configuration; a flag on top changes one value
    r = run_cli('train', tmp_path / 'again', '--config', run / 'run.json', '--no-bar')
    assert r.returncode == 0, r.stderr[-2000:]
    a, b = read_json(run / 'run.json')['identity'], read_json(tmp_path / 'again' / 'run.json')['identity']
    assert a == b
    assert sha256_file(run / 'tokenizer.safetensors') == sha256_file(tmp_path / 'again' / 'tokenizer.safetensors')
    (tmp_path / 'c.yaml').write_text('optim:\n  lr: 0.002\nchannels: 8\nchannel_mults: [1, 2, 2]\nnum_samples: 96\n')
    r = run_cli('train', tmp_path / 'y', '--config', tmp_path / 'c.yaml', '--lr', '0.001', '--frames', '8', '--image-size', '32',
                '--crop-size', '16', '--crop-frames', '4', '--crop-batch-size', '16', '--epochs', '1', '--threads', '1', '--no-bar')
    assert r.returncode == 0, r.stderr[-2000:]
    ident = read_json(tmp_path / 'y' / 'run.json')['identity']
    assert ident['lr'] == 0.001 and ident['channels'] == 8 and ident['num_samples'] == 96
    (tmp_path / 'bad.json').write_text('{"lr": 0.1, "nope": 1}')
    r = run_cli('train', tmp_path / 'z', '--config', tmp_path / 'bad.json')
    assert r.returncode == 2 and "unknown parameter 'nope'" in r.stderr and not (tmp_path / 'z').exists()


def test_dataset_preview_is_an_animated_gif(tmp_path):
    from PIL import Image
    data = tmp_path / 'data'
    assert run_cli('generate', data, '--num-samples', '8', '--frames', '8', '--image-size', '32', '--no-bar').returncode == 0
    r = run_cli('preview', data)
    assert r.returncode == 0, r.stderr
    with Image.open(data / 'preview.gif') as im: assert im.n_frames == 8 and im.format == 'GIF'
    r = run_cli('preview', tmp_path / 'nothing')
    assert r.returncode == 2 and 'is not a directory' in r.stderr


def test_console_lines_never_tear_the_progress_bar(tmp_path):
    "On a terminal the bar and the printed lines share stderr/stdout: every printed line stands on a line of its own."
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', 24, 120, 0, 0))   # a terminal of 0 columns shows no bar at all
    p = subprocess.Popen(cli_cmd('train', tmp_path / 'run', *[f for f in TINY if f != '--no-bar'], '--epochs', '3', '--print-every', '2'),
                         stdout=slave, stderr=slave, env={**os.environ, 'PYTHONUNBUFFERED': '1', 'COLUMNS': '120'})
    os.close(slave)
    out = b''
    while True:
        r, _, _ = select.select([master], [], [], 1.0)
        if r:
            try: chunk = os.read(master, 65536)
            except OSError: break
            if not chunk: break
            out += chunk
        elif p.poll() is not None: break
    p.wait(); os.close(master)
    assert p.returncode == 0, out.decode(errors='replace')[-2000:]
    text = out.decode(errors='replace')
    segments = re.split(r'[\r\n]', text)
    lines = [s for s in segments if '[train] step' in s]
    assert len(lines) >= 5
    for s in lines:
        clean = re.sub(r'\x1b\[[0-9;]*[A-Za-z]', '', s)
        assert clean.lstrip().startswith('[train] step') and '%|' not in clean, repr(s)
    clean = [re.sub(r'\x1b\[[0-9;]*[A-Za-z]', '', s).strip() for s in lines]
    steps, vals = [s for s in clean if re.match(r'\[train\] step +\d+/', s)], [s for s in clean if ': held-out' in s]
    assert steps and all(re.search(r' ETA \d+:\d\d:\d\d$', s) for s in steps), steps      # the step lines carry the ETA
    assert vals and all(len(s) < 160 for s in vals), vals                                  # validation lines fit a terminal
    assert any('loss=' in s for s in segments if '%|' in s)                                # the bar shows the loss


def test_quiet_fit_prints_only_heartbeats_and_the_end(tmp_path):
    code = ('from mono3d.train import fit\n'
            f"fit(dict(run_dir={str(tmp_path / 'run')!r}, num_samples=96, val_samples=16, frames=8, image_size=32, channels=8,"
            " channel_mults=(1, 2, 2), crop_size=16, crop_frames=4, crop_batch_size=16, epochs=2, threads=1, print_every=1,"
            " heartbeat_every=1000), quiet=True)\n")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert '[train] step' not in r.stdout and '[generate]' not in r.stdout
    assert 'COMPLETE' in (tmp_path / 'run' / 'PROGRESS.txt').read_text()
    final = [l for l in r.stdout.splitlines() if l.startswith('[train] COMPLETE')]    # --quiet promises the final result
    assert len(final) == 1 and 'held-out PSNR' in final[0], r.stdout[-2000:]
    again = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert again.returncode == 0 and 'is already complete' in again.stdout, again.stdout[-2000:]


NOTEBOOK_OUTPUT_BUDGET = 400_000        # bytes of outputs per module notebook: figures read on a code host, the repo stays small


def test_module_notebooks_show_their_results_within_a_size_budget():
    total = 0
    for nb in sorted((ROOT / 'nbs').glob('[0-9][0-9]_*.ipynb')):
        cells = json.loads(nb.read_text())['cells']
        outs = [o for c in cells if c['cell_type'] == 'code' for o in c.get('outputs', [])]
        size = len(json.dumps(outs))
        total += size
        assert outs, f'{nb.name} has no outputs: run scripts/run_notebooks.py'
        assert size <= NOTEBOOK_OUTPUT_BUDGET, f'{nb.name} outputs take {size:,} bytes (budget {NOTEBOOK_OUTPUT_BUDGET:,})'
    for nb in ('06_data.ipynb', '11_plots.ipynb', '13_train.ipynb'):
        cells = json.loads((ROOT / 'nbs' / nb).read_text())['cells']
        kinds = {k for c in cells if c['cell_type'] == 'code' for o in c.get('outputs', []) for k in o.get('data', {})}
        assert kinds & {'image/png', 'image/gif'}, f'{nb} shows no figure'
    assert total < 3_000_000


def test_ci_runs_the_readme_test_command_verbatim_and_dev_extras_stay_light():
    "The README's test command is the one .ci/run runs; trackers, JupyterLab and cloud filesystems are extras, not dev tools."
    readme, ci = (ROOT / 'README.md').read_text(), (ROOT / '.ci' / 'run').read_text()
    cmd = next(l for l in readme.splitlines() if l.startswith('python3 -m venv') and 'scripts/test.sh' in l)
    assert cmd in ci and '.[dev,tensorboard,wandb]' in cmd
    import configparser
    cfg = configparser.ConfigParser(delimiters=['=']); cfg.read(ROOT / 'settings.ini')
    dev = cfg['DEFAULT']['dev_requirements']
    assert not any(name in dev for name in ('tensorboard', 'wandb', 'jupyterlab', 's3fs', 'gcsfs'))
    assert 'vector-quantize-pytorch>=1.20,<2' in cfg['DEFAULT']['requirements']


def test_print_config_is_a_complete_yaml_that_config_reads_back_and_a_typo_gets_the_nearest_flag(tmp_path):
    r = run_cli('train', tmp_path / 'a', '--lr', '0.001', '--frames', '8', '--print-config')
    assert r.returncode == 0 and not (tmp_path / 'a').exists(), r.stderr      # printing the config creates nothing
    assert '# training seed' in r.stdout and '\n  frames: 8\n' in r.stdout and '\n  lr: 0.001\n' in r.stdout
    (tmp_path / 'a.yaml').write_text(r.stdout)
    again = run_cli('train', tmp_path / 'a', '--config', tmp_path / 'a.yaml', '--print-config')
    assert again.returncode == 0 and again.stdout == r.stdout                  # read back, the same configuration
    typo = run_cli('train', tmp_path / 'b', '--lrr', '3')
    assert typo.returncode == 2 and 'did you mean --lr?' in typo.stderr and not (tmp_path / 'b').exists()


def test_every_job_draws_its_bar_by_default_and_says_so_the_same_way():
    "`--bar` means the same in every command: on by default (drawn on a terminal or as a notebook widget)."
    from mono3d.data import GenerateConfig
    from mono3d.train import TrainConfig
    from mono3d.evaluate import EvalConfig
    from mono3d.tokens import TokenCacheConfig
    from mono3d.prior import PriorConfig
    from mono3d.evaluate_prior import EvalPriorConfig
    classes = (GenerateConfig, TrainConfig, EvalConfig, TokenCacheConfig, PriorConfig, EvalPriorConfig)
    assert {c.__name__: c().job.bar for c in classes} == {c.__name__: True for c in classes}


def test_readme_is_short_names_real_tests_and_its_extras():
    "The README stays under 12,000 characters, every test it cites exists, every guarantee cites one, and it names the extras."
    import configparser, re
    readme = (ROOT / 'README.md').read_text()
    assert len(readme) <= 12_000, len(readme)
    cited = re.findall(r'tests/(test_\w+)\.py::(test_\w+)', readme)
    assert len(cited) >= 10
    for module, name in cited:
        assert re.search(rf'^def {name}\(', (ROOT / 'tests' / f'{module}.py').read_text(), re.M), f'{module}.py has no {name}'
    guarantees = readme.split('## Guarantees', 1)[1].split('\n## ', 1)[0]
    for bullet in re.split(r'\n- ', guarantees)[1:]:
        assert '::test_' in bullet or 'bench/' in bullet, f'a guarantee cites no test: {bullet[:80]!r}'
    cfg = configparser.ConfigParser(delimiters=['=']); cfg.read(ROOT / 'settings.ini')
    extras = {k.split('_requirements')[0] for k in cfg['DEFAULT'] if k.endswith('_requirements') and k != 'dev_requirements'}
    assert extras >= {'lab', 's3', 'gcs', 'tensorboard', 'wandb'}, extras
    for extra in extras: assert f'[{extra}]' in readme or f',{extra}]' in readme or f'{extra},' in readme, f'the README does not name the [{extra}] extra'


def test_a_short_run_caps_its_warm_up_and_says_so_and_heartbeats_keep_quiet_while_steps_print(tmp_path):
    "A run shorter than --warmup-steps still reaches its learning rate; no heartbeat line where a step line came in its interval."
    import time
    run, beat = tmp_path / 'run', 1.0
    flags = [*TINY, '--steps', '60', '--warmup-steps', '100', '--print-every', '1', '--heartbeat-every', str(beat)]
    p = start_cli('train', run, *flags, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = [(time.monotonic(), line.rstrip('\n')) for line in p.stdout]     # each line as it arrives (every line is flushed)
    assert p.wait() == 0, '\n'.join(l for _, l in lines[-20:])
    plan = next(l for _, l in lines if 'warm-up' in l)
    assert 'warm-up 6 steps (--warmup-steps 100 capped at a tenth of the run)' in plan, plan
    lr = read_json(run / 'metrics.json')['history']['lr']
    assert max(lr) == pytest.approx(3e-3, rel=0.05), max(lr)                 # uncapped, 60 steps would end at 1.8e-3
    steps = [t for t, l in lines if l.startswith('[train] step ')]
    assert len(steps) >= 50 and steps[-1] - steps[0] > 2 * beat
    # a heartbeat only after a whole interval without a line; half an interval of slack for the reader's own delays,
    # while a heartbeat that ignored the step lines (one every ~0.05 s) would come within 0.1 s of one
    for t, l in lines:
        if l.startswith('[heartbeat]'):
            assert not [s for s in steps if t - beat / 2 < s < t], f'a heartbeat {l!r} came {t - max(s for s in steps if s < t):.2f} s after a step line'
    quiet = run_cli('train', tmp_path / 'quiet', *TINY, '--steps', '6', '--print-every', '1000', '--heartbeat-every', '0.2', '--quiet')
    assert quiet.returncode == 0 and '[train] step' not in quiet.stdout and '[heartbeat]' in quiet.stdout   # quiet keeps the heartbeats
    assert 'COMPLETE' in quiet.stdout.splitlines()[-1], quiet.stdout[-500:]   # --quiet keeps the final line its help promises
