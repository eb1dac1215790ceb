"""Batches landed on several connections at once but committed strictly in order.

A connector's cursor says "everything up to here is in", so batch k must not commit before batch
k-1. The expensive part of a batch, though — validation, encoding and the server's COPY — does
not need that order, and PostgreSQL runs each COPY on one core. ``OrderedCommits`` lands up to
``workers`` batches concurrently, each in its own transaction on its own connection, and lets
each one commit only after its predecessor committed. If a batch fails, no later batch commits
(they roll back) and ``drain`` raises the first error; the earlier batches stay committed.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import psycopg

from orchestration.runtime.db import LANDING_LOCK, connect

# a job lands its batch and may return a second step, run only once the batches before it have
# committed (in the same transaction): what must not run concurrently with them, such as
# writing the cursor row every batch updates
Job = Callable[[psycopg.Connection], Callable[[psycopg.Connection], None] | None]
LOCK_TIMEOUT = "5min"  # a safety net: a lock wait this long fails the batch instead of hanging


class _Aborted(Exception):
    """An earlier batch failed: this one must not commit."""


class OrderedCommits:
    def __init__(self, url: str, workers: int = 2) -> None:
        self._url = url
        self._jobs: queue.Queue = queue.Queue(maxsize=max(1, workers))  # bounds read-ahead
        self._turn = threading.Condition()
        self._next_seq = 0
        self._committed = -1  # highest sequence number committed (or abandoned after a failure)
        self._error: BaseException | None = None
        self._threads = [
            threading.Thread(target=self._work, daemon=True) for _ in range(max(1, workers))
        ]
        for t in self._threads:
            t.start()

    def submit(self, job: Job) -> None:
        """Queue ``job(conn)``: it runs inside a transaction, then the step it returns (if any)
        once the previous batch committed; commits happen in submit order.

        While it waits for its turn a batch holds the locks it took, so only rows no earlier
        batch touches may be written before the turn (new rows are fine: nothing else sees
        them); rows every batch updates belong in the returned step."""
        self._raise_if_failed()
        self._jobs.put((self._next_seq, job))
        self._next_seq += 1

    def drain(self) -> None:
        """Wait until every submitted job committed; raise the first failure."""
        with self._turn:
            self._turn.wait_for(lambda: self._committed >= self._next_seq - 1)
        self._raise_if_failed()

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for t in self._threads:
            t.join()

    def __enter__(self) -> OrderedCommits:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _work(self) -> None:
        conn = None
        try:
            while (item := self._jobs.get()) is not None:
                seq, job = item
                try:
                    if self._error is not None:
                        raise _Aborted  # an earlier batch failed: skip the work too
                    if conn is None:
                        conn = connect(self._url, autocommit=True)
                        conn.execute(f"set lock_timeout = '{LOCK_TIMEOUT}'")
                    with conn.transaction():
                        conn.execute(LANDING_LOCK)  # first: see orchestration/runtime/db.py
                        then = job(conn)
                        self._wait_turn(seq)
                        if then is not None:
                            then(conn)
                    # committed on leaving the block
                except _Aborted:
                    pass
                except BaseException as exc:
                    with self._turn:
                        self._error = self._error or exc
                finally:
                    with self._turn:
                        self._committed = max(self._committed, seq)
                        self._turn.notify_all()
        finally:
            if conn is not None:
                conn.close()

    def _wait_turn(self, seq: int) -> None:
        with self._turn:
            self._turn.wait_for(lambda: self._committed >= seq - 1 or self._error is not None)
            if self._error is not None:
                raise _Aborted
