"""``cdp ui``: ``dagster dev`` (webserver, daemon, code server) supervised so that it stops
with ``cdp ui``.

``dagster dev`` runs in a session of its own, so signals reach it only through ``cdp ui``:
SIGINT (Ctrl-C), SIGTERM and SIGHUP are forwarded to its whole process group — ``dagster dev``
and the processes it starts shut down on them, as they do on a terminal's Ctrl-C. Whatever is
still running ``GRACE_S`` seconds later is killed, and so is everything at once on a second
signal. Without this, a SIGTERM to ``cdp ui`` (a service manager, ``kill``, a closed terminal)
ended only ``cdp ui`` and left the webserver, daemon and code servers running."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

GRACE_S = 8.0  # from the first signal until what is left of dagster dev is killed
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
POLL_S = 0.2


def command(port: int) -> list[str]:
    from orchestration.runtime.settings import PROJECT_ROOT

    dagster = shutil.which("dagster", path=os.path.dirname(sys.executable)) or "dagster"
    return [dagster, "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"), "-p", str(port)]


def serve(port: int, log: Callable[[str], None] = print) -> int:
    """Run the Dagster UI and daemon until they exit or ``cdp ui`` is told to stop; the exit
    code of ``dagster dev`` (128 + signal number when it had to be killed)."""
    from orchestration.runtime.dagster_home import ensure_dagster_home
    from orchestration.runtime.settings import PROJECT_ROOT

    ensure_dagster_home()
    log(f"Dagster UI on http://localhost:{port} (Ctrl-C to stop)")
    return supervise(command(port), cwd=PROJECT_ROOT)


def supervise(cmd: Sequence[str], *, cwd: Path | None = None, grace: float = GRACE_S) -> int:
    """Run ``cmd`` in a new session and process group; forward SIGINT/SIGTERM/SIGHUP to that
    group; return once the group is empty (SIGKILLed ``grace`` seconds after the first signal,
    or after the command itself exited leaving processes behind, or on a second signal)."""
    received: list[int] = []
    group: list[int] = []  # the process group id, once started

    def forward(signum: int, _frame) -> None:
        received.append(signum)
        if group:
            _signal_group(group[0], signal.SIGKILL if len(received) > 1 else signum)

    previous = {s: signal.signal(s, forward) for s in FORWARDED}
    try:
        proc = subprocess.Popen(list(cmd), cwd=cwd, start_new_session=True)
        group.append(proc.pid)  # a new session's leader: its pid is the group id
        if received:  # a signal arrived while starting
            _signal_group(proc.pid, received[-1])
        kill_at: float | None = None
        while True:
            now = time.monotonic()
            if received and kill_at is None:
                kill_at = now + grace
            if proc.poll() is not None:
                if not _group_alive(proc.pid):
                    break
                if kill_at is None:  # dagster dev ended by itself but left processes behind
                    kill_at = now + grace
            if kill_at is not None and now >= kill_at:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
                break
            time.sleep(POLL_S)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    code = proc.returncode
    return code if code >= 0 else 128 - code


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group is already empty
        os.killpg(pgid, signum)


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group is still running. Zombies do not count: a process
    whose parent already exited waits for init to reap it, and init may take its time."""
    proc_fs = Path("/proc")
    if not proc_fs.is_dir():  # not Linux: ask the kernel (zombies count there)
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in proc_fs.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        # after "pid (comm)": state, ppid, pgrp, ...
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False
