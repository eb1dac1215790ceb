"""A small warehouse with the shapes activation reads, built from real parts: the vault encrypts
the contacts, a real materialized view is the segment, and the segments package's own
``record_changes`` diffs it into ``segments.membership_snapshot`` / ``membership_changes``.
A local HTTP receiver (127.0.0.1, stopped after each test) plays the webhook endpoint."""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import psycopg
import pytest

from orchestration.activation.delivery import RetryPolicy
from orchestration.activation.webhooks import SignatureError, verify
from orchestration.privacy.vault import encrypt_many, index_series, load_keys
from orchestration.runtime import db
from orchestration.runtime.settings import load_settings
from orchestration.segments.membership import ensure_tables, record_changes

SLUG = "vip_test"
SECRET = "whsec_" + "c2VjcmV0LWZvci10ZXN0cy1vbmx5LTAxMjM0NTY3ODk="
FAST = RetryPolicy(max_attempts=4, timeout_s=5, concurrency=3, base_s=0.01, max_wait_s=5)

PROFILES_DDL = """
create table marts.customer_profiles (
    customer_id          text primary key,
    lifecycle_stage      text not null,
    subscription_status  text not null,
    lifetime_value       numeric(12,2) not null,
    churn_risk_score     integer
);
create table marts.customer_contacts (
    customer_id      text primary key,
    email_hash       text,
    phone_hash       text,
    first_name_hash  text,
    last_name_hash   text
);
"""


def keys():
    cfg = load_settings()
    return load_keys(cfg.pii_key, cfg.keys_dir)


def person(i: int) -> dict:
    return {
        "customer_id": f"cus_{i:05d}",
        "email": f"person{i}@example.com",
        "phone": f"+1555{i:07d}",
        "first_name": f"first{i}",
        "last_name": f"last{i}",
    }


def populate(conn: psycopg.Connection, n: int, *, ltv=lambda i: 100 + 10 * i) -> None:
    """n customers; contacts in the vault as blind indexes (customer 3 has no email)."""
    conn.execute(PROFILES_DDL)
    k = keys()
    people = pd.DataFrame([person(i) for i in range(1, n + 1)])
    people.loc[people.customer_id == "cus_00003", "email"] = None
    hashed = {}
    for col, pii_type in (
        ("email", "email"),
        ("phone", "phone"),
        ("first_name", "name"),
        ("last_name", "name"),
    ):
        hashed[col], plain = index_series(k, people[col], pii_type)
        vault = encrypt_many(k, pii_type, plain)
        with conn.cursor() as cur:
            cur.executemany(
                "insert into pii.vault (pii_type, value_hash, ciphertext, key_id) "
                "values (%s, %s, decode(substr(%s, 3), 'hex'), %s) on conflict do nothing",
                vault[["pii_type", "value_hash", "ciphertext", "key_id"]].itertuples(index=False),
            )
    with conn.cursor() as cur:
        cur.executemany(
            "insert into marts.customer_profiles values (%s, 'active', 'active', %s, 50)",
            [(cid, ltv(i)) for i, cid in enumerate(people.customer_id, start=1)],
        )
        cur.executemany(
            "insert into marts.customer_contacts values (%s, %s, %s, %s, %s)",
            list(
                zip(
                    people.customer_id,
                    hashed["email"],
                    hashed["phone"],
                    hashed["first_name"],
                    hashed["last_name"],
                    strict=True,
                )
            ),
        )
    ensure_tables(conn)


def define_segment(conn: psycopg.Connection, slug: str, where: str) -> None:
    """A segment view and its definitions row, as the segments package would leave them."""
    conn.execute(f"drop materialized view if exists segments.{slug}")
    conn.execute(
        f"create materialized view segments.{slug} as select customer_id, lifetime_value "
        f"from marts.customer_profiles where {where}"
    )
    conn.execute(f"create unique index on segments.{slug} (customer_id)")
    conn.execute(
        "insert into segments.definitions (slug, name, rule_hash, sql, columns) "
        "values (%s, %s, %s, %s, %s) "
        "on conflict (slug) do update set rule_hash = excluded.rule_hash",
        (slug, slug, f"hash-{where}", where, ["customer_id", "lifetime_value"]),
    )


def refresh(conn: psycopg.Connection, slug: str = SLUG, run_id: str = "refresh-run"):
    conn.execute(f"refresh materialized view segments.{slug}")
    return record_changes(conn, slug, run_id)


def view_members(conn: psycopg.Connection, slug: str = SLUG) -> set[str]:
    return {r[0] for r in conn.execute(f"select customer_id from segments.{slug}").fetchall()}


def write_segment_file(directory: Path, slug: str, exports: list[dict]) -> Path:
    """A segment file whose rules name lifetime_value (so it is a default column)."""
    path = directory / f"{slug}.yml"
    doc = {
        "name": slug,
        "slug": slug,
        "rules": {
            "logic": "AND",
            "conditions": [{"field": "lifetime_value", "operator": "greater_than", "value": 500}],
        },
        "exports": exports,
    }
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture
def act_db(warehouse_url):
    """A warehouse with 60 customers and segment vip_test = lifetime_value > 500 (refreshed)."""
    with db.connect(warehouse_url, autocommit=True) as conn:
        populate(conn, 60)
        define_segment(conn, SLUG, "lifetime_value > 500")
        refresh(conn)
    return warehouse_url


@pytest.fixture
def segments_dir(tmp_path) -> Path:
    path = tmp_path / "segments"
    path.mkdir()
    return path


# ------------------------------------------------------------------------ the HTTP receiver


@dataclass
class Receiver:
    """A webhook endpoint that verifies signatures and dedupes on webhook-id, as the README
    tells receivers to. ``script`` maps a webhook-id's attempt number to a misbehaviour."""

    secret: str = SECRET
    status_first_attempts: int = 0  # answer 503 + Retry-After to this many first attempts
    retry_after: str = "1"
    drop_once: bool = False  # process one batch, then drop the connection without answering
    always_status: int | None = None
    plain: bool = False  # accept anything unsigned (the alert webhook); keep bodies in `posts`
    posts: list = field(default_factory=list)
    processed: dict[str, dict] = field(default_factory=dict)  # webhook-id -> body
    attempts: Counter = field(default_factory=Counter)
    duplicates: int = 0
    bad_signatures: int = 0
    dropped: int = 0
    unavailable: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/cdp"

    def start(self, port: int = 0) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                if receiver.plain:
                    receiver.posts.append(json.loads(body))
                    return self._answer(200)
                try:
                    msg_id = verify(receiver.secret, dict(self.headers), body)
                except SignatureError:
                    with receiver.lock:
                        receiver.bad_signatures += 1
                    return self._answer(401)
                with receiver.lock:
                    receiver.attempts[msg_id] += 1
                    if receiver.always_status:
                        return self._answer(receiver.always_status)
                    if receiver.attempts[msg_id] == 1 and receiver.unavailable < (
                        receiver.status_first_attempts
                    ):
                        receiver.unavailable += 1
                        return self._answer(503, {"Retry-After": receiver.retry_after})
                    if msg_id in receiver.processed:  # a retry of something already done
                        receiver.duplicates += 1
                        return self._answer(200)
                    receiver.processed[msg_id] = json.loads(body)
                    if receiver.drop_once and not receiver.dropped:
                        receiver.dropped += 1  # processed, but the sender never hears so
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return None
                return self._answer(200)

            def _answer(self, status, headers=None):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("content-length", "0")
                self.end_headers()

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def members(self) -> dict[str, list[str]]:
        out = {"entered": [], "exited": []}
        for body in self.processed.values():
            out["entered"] += [r["customer_id"] for r in body["entered"]]
            out["exited"] += [r["customer_id"] for r in body["exited"]]
        return out


@pytest.fixture
def receiver():
    servers: list[Receiver] = []

    def make(**kwargs) -> Receiver:
        servers.append(Receiver(**kwargs))
        return servers[-1]

    yield make
    for server in servers:
        server.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def export(url, segments_dir, tmp_path, run_id, *, slug=SLUG, policy=None, **kw):
    """``export_segment`` of the test segment into ``tmp_path/exports`` with the test keys and
    the fast retry policy; ``kw`` as export_segment takes them (``env``, ``force``, ...)."""
    from orchestration.activation.exports import export_segment

    return export_segment(
        url,
        slug,
        run_id,
        segments_dir=segments_dir,
        exports_dir=tmp_path / "exports",
        keys=keys(),
        policy=policy or FAST,
        **kw,
    )


@pytest.fixture
def kit():
    """The helpers above, for test modules (importlib mode cannot import conftest)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        SLUG=SLUG,
        SECRET=SECRET,
        FAST=FAST,
        keys=keys,
        person=person,
        populate=populate,
        define_segment=define_segment,
        refresh=refresh,
        view_members=view_members,
        write_segment_file=write_segment_file,
        free_port=free_port,
        export=export,
    )
