"""``cdp ui`` stops cleanly: SIGTERM (a service manager, ``kill``) or SIGINT (Ctrl-C) to the
``cdp ui`` process stops the Dagster webserver, daemon and code servers it started, within
seconds, leaving no process behind."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.dagster_kit import (
    BIN,
    alive,
    descendants,
    isolated_dagster,
    kill_all,
    start_logged,
)

pytestmark = pytest.mark.e2e

STARTUP_TIMEOUT_S = 150
EXIT_TIMEOUT_S = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "(gone)"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:120]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_cdp_ui_and_everything_it_started(server_url, tmp_path, signum):
    port = free_port()
    with isolated_dagster(server_url, tmp_path / "home") as (env, _):
        log_path = tmp_path / "ui.log"
        proc = start_logged([str(BIN / "cdp"), "ui", "--port", str(port)], env, log_path)
        tree: set[int] = set()
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while not (answers(f"http://127.0.0.1:{port}/server_info") and _daemon_up(proc.pid)):
                assert proc.poll() is None, "cdp ui exited:\n" + log_path.read_text()
                assert time.monotonic() < deadline, "UI never came up:\n" + log_path.read_text()
                time.sleep(1)
            tree = descendants(proc.pid)
            names = {pid: cmdline(pid) for pid in tree}
            assert any("dagster_webserver" in c for c in names.values()), names
            assert any("dagster._daemon" in c for c in names.values()), names

            proc.send_signal(signum)
            started = time.monotonic()
            try:
                proc.wait(timeout=EXIT_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pytest.fail(f"cdp ui still running {EXIT_TIMEOUT_S}s after {signum.name}")
            stopped_in = time.monotonic() - started
            assert proc.returncode == 0, log_path.read_text()[-4000:]  # a clean stop

            deadline = time.monotonic() + EXIT_TIMEOUT_S
            while alive(tree) and time.monotonic() < deadline:
                time.sleep(0.5)
            left = {pid: names[pid] for pid in alive(tree)}
            assert not left, f"still running {EXIT_TIMEOUT_S}s after cdp ui exited: {left}"
            print(f"cdp ui stopped {len(tree)} processes in {stopped_in:.1f}s")
        finally:
            kill_all(tree | descendants(proc.pid))
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


def _daemon_up(pid: int) -> bool:
    return any("dagster._daemon" in cmdline(p) for p in descendants(pid))
