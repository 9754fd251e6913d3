"The suite's polling helper: a process that dies before the awaited state fails the wait at once, naming its exit code."
import subprocess, sys, time
import pytest
from conftest import wait_for


def test_a_process_that_exits_early_fails_the_wait_at_once_with_its_exit_code():
    p = subprocess.Popen([sys.executable, '-c', 'import sys; sys.exit(3)'])
    t0 = time.monotonic()
    with pytest.raises(AssertionError, match='exited with 3'):
        wait_for(lambda: False, timeout=60, proc=p)
    assert time.monotonic() - t0 < 10                      # not the 60 s timeout


def test_a_state_left_behind_by_a_finished_process_still_counts(tmp_path):
    flag = tmp_path / 'done'
    p = subprocess.Popen([sys.executable, '-c', f'open({str(flag)!r}, "w").close()'])
    p.wait()
    assert wait_for(lambda: flag.is_file(), timeout=5, proc=p)


def test_a_running_process_is_waited_for_until_the_timeout(tmp_path):
    p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])
    try:
        t0 = time.monotonic()
        with pytest.raises(AssertionError, match='within 1'):
            wait_for(lambda: False, timeout=1, proc=p)
        assert 0.9 < time.monotonic() - t0 < 10
    finally:
        p.kill(); p.wait()
