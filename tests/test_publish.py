"""Seeing a run from elsewhere: publishing progress to fsspec URLs during real jobs, `mono3d status`
(paths and URLs, --watch, --json), the self-contained status page, and the read-only `mono3d serve`."""
import http.client, json, os, re, shutil, signal, subprocess, threading, time
from pathlib import Path
import fsspec
import pytest
from conftest import run_cli, start_cli, read_json, wait_for, cli_cmd
from mono3d.train import TrainConfig, fit
from mono3d.progress import ProgressFile, COMPLETE, PREEMPTED

ROOT = Path(__file__).resolve().parent.parent
TINY = dict(num_samples=96, val_samples=16, frames=8, image_size=32, batch_size=8, channels=8, channel_mults=(1, 2, 2),
            crop_size=16, crop_frames=4, crop_batch_size=16, warmup_steps=2, print_every=5, threads=1, progress_every=0.05,
            heartbeat_every=0.5, bar=False)
FLAGS = ['--num-samples', '96', '--val-samples', '16', '--frames', '8', '--image-size', '32', '--channels', '8',
         '--channel-mults', '1,2,2', '--crop-size', '16', '--crop-frames', '4', '--crop-batch-size', '16', '--threads', '1',
         '--progress-every', '0.05', '--heartbeat-every', '0.5', '--no-bar']


def test_training_publishes_to_memory_while_it_runs(tmp_path):
    url = 'memory://mono3d-test/run1'
    fs = fsspec.filesystem('memory')
    seen = []
    def watch():
        while not stop.is_set():
            try: seen.append(json.loads(fs.cat_file(url + '/progress.json'))['done'])
            except FileNotFoundError: pass
            time.sleep(0.02)
    stop = threading.Event(); t = threading.Thread(target=watch); t.start()
    try: fit(TrainConfig.from_dict({**TINY, 'epochs': 4, 'run_dir': str(tmp_path / 'run'), 'publish_to': url}))
    finally: stop.set(); t.join()
    assert len(set(seen)) >= 3 and seen == sorted(seen)                 # the copy moved with the job, not only at the end
    txt = fs.cat_file(url + '/PROGRESS.txt').decode()
    total = read_json(tmp_path / 'run' / 'metrics.json')['steps']
    assert 'COMPLETE' in txt and f'Completed: {total}/{total}' in txt
    html = fs.cat_file(url + '/status.html').decode()
    assert 'COMPLETE' in html and 'data:image/png;base64,' in html
    for name in ('loss_curve.png', 'recon.png', 'recon.gif', 'metrics.json', 'run.json'):
        assert fs.cat_file(f'{url}/{name}') == (tmp_path / 'run' / name).read_bytes(), name
    assert not [p for p in fs.find('memory://mono3d-test') if '.tmp' in p]   # written under a temporary name, then moved


def test_generation_publishes_to_a_local_folder_and_a_failing_target_is_not_fatal(tmp_path):
    pub = tmp_path / 'synced'
    r = run_cli('generate', tmp_path / 'data', '--num-samples', '3000', '--checkpoint-interval', '1000', '--image-size', '32',
                '--frames', '8', '--no-bar', '--publish-to', pub)
    assert r.returncode == 0, r.stderr
    assert 'Completed: 3000/3000' in (pub / 'PROGRESS.txt').read_text() and read_json(pub / 'progress.json')['status'] == COMPLETE
    assert (pub / 'status.html').read_bytes() == (tmp_path / 'data' / 'status.html').read_bytes()
    # a target that cannot be written (below a regular file): warnings, retries, and the job still completes
    (tmp_path / 'a-file').write_text('not a directory')
    r = run_cli('train', tmp_path / 'run', *FLAGS, '--epochs', '1', '--publish-to', tmp_path / 'a-file' / 'sub')
    assert r.returncode == 0, r.stderr
    assert 'COMPLETE' in (tmp_path / 'run' / 'PROGRESS.txt').read_text()
    assert 'publishing to' in r.stderr and 'will retry' in r.stderr


def test_credentials_never_reach_the_logs(tmp_path):
    from mono3d.publish import redact_url
    assert redact_url('s3://AKIAXXXX:verysecret@bucket/run') == 's3://***@bucket/run'
    assert redact_url('https://user:pw@example.org/x?token=abc&x=1') == 'https://***@example.org/x?token=***&x=***'
    assert redact_url('gs://bucket/run') == 'gs://bucket/run'
    # a URL that carries credentials is used, but never written into the files the job publishes or serves
    url = 'memory://user:hunter2@bucket/run'
    fit(TrainConfig.from_dict({**TINY, 'epochs': 1, 'run_dir': str(tmp_path / 'run'), 'publish_to': url}))
    fs = fsspec.filesystem('memory')
    assert 'COMPLETE' in fs.cat_file(url + '/PROGRESS.txt').decode()
    for f in (tmp_path / 'run').glob('*.*'):
        if f.suffix in ('.json', '.txt', '.html'): assert 'hunter2' not in f.read_text(), f.name
    assert read_json(tmp_path / 'run' / 'run.json')['config']['job']['publish_to'] == 'memory://***@bucket/run'


def _progress(tmp_path, status, age=0.0, heartbeat=30.0):
    d = tmp_path / status.lower()
    p = ProgressFile(d, total=10, job='demo', unit='items', bar=False, heartbeat_every=heartbeat)
    p.update(4, metrics={'loss': 0.125}, last_checkpoint='step_00000004.pt', force=True)
    if status != 'RUNNING': p.finish({'COMPLETE': COMPLETE, 'PREEMPTED': PREEMPTED}[status])
    if age:
        s = read_json(d / 'progress.json'); s['updated_unix'] -= age
        (d / 'progress.json').write_text(json.dumps(s))
        t = time.time() - age; os.utime(d / 'progress.json', (t, t))     # a dead writer's file: the storage says it is old too
    return d


@pytest.mark.parametrize('status,age,expect', [('RUNNING', 0, 'RUNNING'), ('COMPLETE', 0, 'COMPLETE'),
                                               ('PREEMPTED', 0, 'PREEMPTED'), ('RUNNING', 3600, 'STALLED')])
def test_status_summarises_every_state_from_a_path_or_a_url(tmp_path, status, age, expect):
    d = _progress(tmp_path, status, age)
    for where in (d, 'file://' + str(d)):
        r = run_cli('status', where)
        assert r.returncode == {'STALLED': 3, 'PREEMPTED': 4}.get(expect, 0), r.stderr
        assert f'status:   {expect}' in r.stdout and '4/10 items (40.0%)' in r.stdout
        assert 'step_00000004.pt' in r.stdout and 'loss=0.125' in r.stdout and 'ago' in r.stdout
    r = run_cli('status', d, '--json')
    assert json.loads(r.stdout)['done'] == 4


def test_status_on_a_place_without_progress_files_is_a_clear_error(tmp_path):
    r = run_cli('status', tmp_path)
    assert r.returncode == 2 and 'no progress.json' in r.stderr and str(tmp_path) in r.stderr
    r = run_cli('status', 'file://' + str(tmp_path / 'nothing-here'))
    assert r.returncode == 2 and 'no progress.json' in r.stderr


def test_status_watch_follows_a_running_job_until_it_ends(tmp_path):
    run = tmp_path / 'run'
    job = start_cli('train', run, *FLAGS, '--epochs', '6', stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (run / 'progress.json').is_file() and read_json(run / 'progress.json')['job'] == 'train', proc=job, timeout=120)
        w = subprocess.run(cli_cmd('status', run, '--watch', '--every', '0.2'), capture_output=True, text=True, timeout=300)
    finally:
        job.wait(timeout=300)
    assert w.returncode == 0, w.stderr
    total = read_json(run / 'metrics.json')['steps']
    states = re.findall(rf'progress: (\d+)/{total} steps', w.stdout)
    assert len(set(states)) >= 2 and states[-1] == str(total) and 'status:   COMPLETE' in w.stdout


def _serve(run_dir, *extra):
    p = subprocess.Popen(cli_cmd('serve', run_dir, '--port', '0', *extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    m = re.search(r'http://127\.0\.0\.1:(\d+)/', line)
    assert m, line + p.stderr.read() if p.poll() is not None else line
    return p, int(m.group(1))


def _request(port, method, path):
    c = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
    c.putrequest(method, path, skip_accept_encoding=True); c.endheaders()
    r = c.getresponse(); body = r.read(); c.close()
    return r.status, body, dict(r.getheaders())


@pytest.fixture(scope='module')
def served_run(tmp_path_factory):
    base = tmp_path_factory.mktemp('serve')
    run = base / 'run'
    fit(TrainConfig.from_dict({**TINY, 'epochs': 2, 'run_dir': str(run)}))
    (base / 'secret.txt').write_text('outside the run dir')
    (run / 'link-out').symlink_to(base / 'secret.txt')
    p, port = _serve(run)
    yield run, port
    p.terminate(); p.wait(timeout=10)


def test_serve_answers_files_of_the_run_only(served_run):
    run, port = served_run
    s, body, h = _request(port, 'GET', '/status.html')
    assert s == 200 and b'COMPLETE' in body and h['Content-Type'].startswith('text/html')
    assert _request(port, 'GET', '/')[1] == body                               # the run's page is the index
    total = read_json(run / 'metrics.json')['steps']
    s, body, _ = _request(port, 'GET', '/PROGRESS.txt'); assert s == 200 and f'Completed: {total}/{total}'.encode() in body
    s, body, h = _request(port, 'HEAD', '/progress.json'); assert s == 200 and body == b'' and int(h['Content-Length']) > 100
    for bad in ('/../secret.txt', '/%2e%2e/secret.txt', '/..%2fsecret.txt', '/%2E%2E%2Fsecret.txt', '/checkpoints/../../secret.txt',
                '/link-out', '/data/../../secret.txt', '//etc/passwd', '/%252e%252e/secret.txt', '/status.html%00.png'):
        s, body, _ = _request(port, 'GET', bad)
        assert s in (403, 404) and b'outside the run dir' not in body, (bad, s)
    assert _request(port, 'GET', '/checkpoints/')[0] in (403, 404)           # no directory listings
    for method in ('POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'):
        s, _, h = _request(port, method, '/status.html')
        assert s == 405 and h.get('Allow') == 'GET, HEAD', method
    assert (run / 'status.html').is_file()


def test_serve_refuses_bad_arguments(tmp_path):
    r = run_cli('serve', tmp_path / 'missing')
    assert r.returncode == 2 and 'missing' in r.stderr
    r = run_cli('serve', tmp_path, '--port', '70000')
    assert r.returncode == 2 and 'port must be' in r.stderr


CHROMIUM = next((shutil.which(n) for n in ('chromium', 'chromium-browser', 'google-chrome') if shutil.which(n)), None)


def _chromium(*args):
    udd = Path(os.environ.get('TMPDIR', '/tmp')) / f'mono3d-chromium-{os.getpid()}-{time.monotonic_ns()}'
    cmd = [CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', f'--user-data-dir={udd}', *args]
    try: return subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    finally: shutil.rmtree(udd, ignore_errors=True)


@pytest.mark.skipif(CHROMIUM is None, reason='Chromium is not installed (CI installs Debian\'s chromium; `apt-get install chromium`)')
def test_status_page_in_a_real_browser(served_run, tmp_path):
    run, port = served_run
    url = f'http://127.0.0.1:{port}/status.html'
    dom = _chromium('--dump-dom', url).stdout
    total = read_json(run / 'metrics.json')['steps']
    assert f'Completed: {total}/{total}' in dom and re.search(r'id="status"[^>]*>\s*COMPLETE', dom)
    assert not re.search(r'(src|href)="https?://', dom)                       # self-contained: no external requests
    shots = ROOT / 'artifacts'
    for name, size in (('status_page_laptop.png', '1200,1000'), ('status_page_phone.png', '390,844')):
        r = _chromium(f'--screenshot={shots / name}', f'--window-size={size}', '--hide-scrollbars', url)
        assert (shots / name).stat().st_size > 10_000, r.stderr[-2000:]
    # a job that dies without a word: its page (written while RUNNING) detects STALLED from the timestamp
    job = start_cli('train', tmp_path / 'dead', *FLAGS, '--epochs', '50', stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: (tmp_path / 'dead' / 'status.html').is_file() and 'epoch' in (tmp_path / 'dead' / 'status.html').read_text(), proc=job, timeout=120)
    job.send_signal(signal.SIGKILL); job.wait()
    page = (tmp_path / 'dead' / 'status.html').read_text()
    assert re.search(r'id="status"[^>]*>\s*RUNNING', page)
    time.sleep(2.0)                                                          # > 3 heartbeats of 0.5 s
    dom = _chromium('--dump-dom', (tmp_path / 'dead' / 'status.html').as_uri()).stdout
    assert re.search(r'id="status"[^>]*>\s*STALLED', dom), dom[:3000]
