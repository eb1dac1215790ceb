"""Helpers for the tests that start real Dagster processes (``dagster-daemon``, ``cdp ui``):
an isolated Dagster instance on fresh PostgreSQL databases, and process-tree bookkeeping so
nothing a test starts outlives it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's bin: dagster-daemon, dagster, cdp


@contextmanager
def isolated_dagster(server_url: str, home: Path, run_queue: dict | None = None):
    """A fresh warehouse database and a fresh Dagster storage database on the test server, and
    the environment that points CDP Lite and Dagster at them (CDP_HOME / DAGSTER_HOME under
    ``home``). The dagster.yaml is CDP Lite's own rendering minus its "generated" marker, so
    ``cdp ui`` keeps it instead of pointing storage at the server's shared ``dagster`` database.
    Yields ``(env, warehouse_url)``; both databases are dropped afterwards."""
    from orchestration.runtime.dagster_home import render
    from tests.conftest import _create_db, _drop_db

    warehouse = _create_db(server_url, "cdp_test_daemon_wh")
    storage = _create_db(server_url, "cdp_test_daemon_dg")
    try:
        dagster_home = home / "dagster"
        dagster_home.mkdir(parents=True, exist_ok=True)
        config = yaml.safe_load(
            render(storage.replace("postgresql://", "postgresql+psycopg2://", 1))
        )
        config["run_queue"].update(run_queue or {})
        (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        env = {k: v for k, v in os.environ.items() if not k.startswith("CDP_ALERT")}
        env.update(
            CDP_DATABASE_URL=warehouse,
            CDP_HOME=str(home),
            DAGSTER_HOME=str(dagster_home),
            PYTHONUNBUFFERED="1",
        )
        yield env, warehouse
    finally:
        _drop_db(server_url, warehouse)
        _drop_db(server_url, storage)


def start_logged(cmd: list[str], env: dict, log_path: Path) -> subprocess.Popen:
    """Start ``cmd`` from the project root with its output (both streams) in ``log_path``."""
    with log_path.open("wb") as log:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def process_table() -> dict[int, int]:
    """pid -> parent pid of every live process, from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()  # after "pid (comm)": state, ppid, ...
        if fields[0] != "Z":  # a zombie is already dead, waiting to be reaped
            table[int(entry.name)] = int(fields[1])
    return table


def descendants(pid: int) -> set[int]:
    table = process_table()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in table.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    table = process_table()
    return {p for p in pids if p in table}


def kill_all(pids: set[int]) -> None:
    for pid in alive(pids):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def stop_tree(proc, timeout: float = 15) -> None:
    """SIGTERM a process we started and everything under it; SIGKILL what is left after
    ``timeout``. Used in ``finally`` blocks."""
    tree = descendants(proc.pid) | {proc.pid}
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive(tree | descendants(proc.pid)):
        tree |= descendants(proc.pid)
        proc.poll()  # reap our own child so it does not linger as a zombie
        time.sleep(0.2)
    kill_all(tree)
    proc.wait(timeout=10)
