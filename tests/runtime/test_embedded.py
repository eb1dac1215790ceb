"""The embedded server: start twice, crash recovery, stop; a wrong external URL fails fast."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import psycopg
import pytest

from orchestration.errors import CdpError
from orchestration.runtime import db, embedded


@pytest.fixture
def pg_dir(tmp_path):
    yield tmp_path / "pg"
    embedded.stop(tmp_path / "pg")


def test_start_twice_reuses_the_server_and_stop_stops_it(pg_dir):
    first = embedded.start(pg_dir)
    second = embedded.start(pg_dir)
    assert first.running and second.pid == first.pid
    with psycopg.connect(first.url("postgres")) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    # the tuning applied on first start is live
    with psycopg.connect(first.url("postgres")) as conn:
        assert conn.execute("show synchronous_commit").fetchone() == ("off",)
    assert embedded.stop(pg_dir) is True
    assert not embedded.status(pg_dir).running
    assert embedded.stop(pg_dir) is False


def test_a_crashed_server_with_a_stale_pid_file_is_restarted(pg_dir):
    first = embedded.start(pg_dir)
    os.kill(first.pid, signal.SIGKILL)
    deadline = time.time() + 10
    while embedded.status(pg_dir).running and time.time() < deadline:
        time.sleep(0.05)
    assert (first.pgdata / "postmaster.pid").exists()  # the crash left its pid file behind
    again = embedded.start(pg_dir)
    assert again.running and again.pid != first.pid
    with psycopg.connect(again.url("postgres")) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_refused_connection_names_the_host_quickly():
    started = time.perf_counter()
    with pytest.raises(CdpError, match=r"127\.0\.0\.1:1/nowhere"):
        db.connect("postgresql://postgres@127.0.0.1:1/nowhere")
    assert time.perf_counter() - started < 10


def test_unresolvable_host_is_named():
    with pytest.raises(CdpError, match="no-such-host.invalid"):
        db.connect("postgresql://postgres@no-such-host.invalid:5432/cdp")


def test_a_server_that_never_answers_times_out_under_ten_seconds():
    """A listener that accepts TCP connections and says nothing (a hung server or firewall)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    held = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        started = time.perf_counter()
        with pytest.raises(CdpError, match=f"127.0.0.1:{port}"):
            db.connect(f"postgresql://postgres@127.0.0.1:{port}/cdp")
        assert time.perf_counter() - started < 10
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


def test_settings_reject_a_non_postgres_url():
    from orchestration.runtime.settings import load_settings

    with pytest.raises(CdpError, match="postgresql://"):
        load_settings({"CDP_DATABASE_URL": "mysql://root@localhost/x"})
    with pytest.raises(CdpError, match="CDP_DEMO_SCALE"):
        load_settings({"CDP_DEMO_SCALE": "lots"})


def test_dbt_env_from_socket_and_tcp_urls():
    env = db.dbt_env("postgresql://postgres@/cdp?host=/tmp/pgsock")
    assert env["CDP_PG_HOST"] == "/tmp/pgsock" and env["CDP_PG_DBNAME"] == "cdp"
    env = db.dbt_env("postgresql://u:p@127.0.0.1:6543/wh")
    assert (env["CDP_PG_HOST"], env["CDP_PG_PORT"], env["CDP_PG_USER"], env["CDP_PG_PASSWORD"]) == (
        "127.0.0.1",
        "6543",
        "u",
        "p",
    )
