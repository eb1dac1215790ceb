"""``orchestration.runtime.ui.supervise``, the process management behind ``cdp ui``, on a
stand-in for ``dagster dev``: a shell that ignores the signals and has a child of its own."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from tests.dagster_kit import ROOT, alive, descendants, kill_all

STUBBORN = ["sh", "-c", "trap '' INT TERM HUP; sleep 60 & echo ready; sleep 60"]


def supervised(cmd: list[str], grace: float) -> subprocess.Popen:
    code = (
        "import sys; from orchestration.runtime.ui import supervise; "
        f"sys.exit(supervise(sys.argv[1:], grace={grace}))"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, *cmd], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )


def stop_and_time(proc: subprocess.Popen, *signals: int) -> tuple[float, set[int]]:
    """Signal the supervisor; (seconds until it exited, its processes still alive then)."""
    tree: set[int] = set()
    try:
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 5
        while len(tree := descendants(proc.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(tree) == 3  # sh and its two sleeps
        started = time.monotonic()
        for signum in signals:
            proc.send_signal(signum)
            time.sleep(0.3)
        proc.wait(timeout=10)
        return time.monotonic() - started, alive(tree)
    finally:
        kill_all(tree | descendants(proc.pid))
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_what_ignores_the_signal_is_killed_after_the_grace_period():
    elapsed, left = stop_and_time(supervised(STUBBORN, grace=1.5), signal.SIGTERM)
    assert 1.5 <= elapsed < 5
    assert not left


def test_a_second_signal_kills_at_once():
    proc = supervised(STUBBORN, grace=30)
    elapsed, left = stop_and_time(proc, signal.SIGINT, signal.SIGINT)
    assert elapsed < 5
    assert proc.returncode == 128 + signal.SIGKILL
    assert not left


def test_the_command_exit_code_is_returned():
    proc = supervised(["sh", "-c", "exit 3"], grace=1)
    assert proc.wait(timeout=10) == 3
