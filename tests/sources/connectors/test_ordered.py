"""OrderedCommits against a real PostgreSQL: batches land concurrently, commit in order."""

from __future__ import annotations

import threading
import time

import pytest

from orchestration.runtime import db
from orchestration.sources.connectors.ordered import OrderedCommits


def job(seq: int, delay: float, fail: bool = False):
    def run(conn):
        conn.execute("insert into landed (seq) values (%s)", (seq,))
        time.sleep(delay)
        if fail:
            raise RuntimeError(f"batch {seq} failed")
        # every batch updates this one row: safe only after the earlier batches committed
        return lambda conn: conn.execute("update cursor_row set seq = %s", (seq,))

    return run


def visible(url) -> set[int]:
    with db.connect(url) as conn:
        return {r[0] for r in conn.execute("select seq from landed")}


def test_batches_become_visible_strictly_in_submit_order(fresh_db):
    with db.connect(fresh_db) as conn:
        conn.execute("create table landed (seq int)")
        conn.execute("create table cursor_row as select -1 as seq")
        conn.commit()
    seen: list[set[int]] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.append(visible(fresh_db))
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    # the first batch is the slowest: later ones finish their work first, then wait for it
    delays = [0.6, 0.0, 0.2, 0.0, 0.1]
    with OrderedCommits(fresh_db, workers=3) as commits:
        for seq, delay in enumerate(delays):
            commits.submit(job(seq, delay))
        commits.drain()
    done.set()
    watcher.join()
    assert visible(fresh_db) == set(range(5))
    assert all(s == set(range(len(s))) for s in seen), [sorted(s) for s in seen if s]
    with db.connect(fresh_db) as conn:
        assert conn.execute("select seq from cursor_row").fetchone() == (4,)


def test_a_failed_batch_stops_every_later_one(fresh_db):
    with db.connect(fresh_db) as conn:
        conn.execute("create table landed (seq int)")
        conn.execute("create table cursor_row as select -1 as seq")
        conn.commit()
    with (
        OrderedCommits(fresh_db, workers=2) as commits,
        pytest.raises(RuntimeError, match="batch 2 failed"),
    ):
        for seq in range(6):
            commits.submit(job(seq, 0.05, fail=seq == 2))
        commits.drain()
    assert visible(fresh_db) == {0, 1}
    with db.connect(fresh_db) as conn:
        assert conn.execute("select seq from cursor_row").fetchone() == (1,)
