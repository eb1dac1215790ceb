"""The one way CDP Lite talks to PostgreSQL: URLs, connections, COPY and schema helpers (psycopg 3).

``CDP_DATABASE_URL`` names the warehouse. Unset, the embedded server is started (or reused) and
the warehouse is its database ``cdp``. Dagster's storage lives in database ``dagster`` on the same
server either way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter

from orchestration.errors import CdpError
from orchestration.runtime import embedded
from orchestration.runtime.settings import Settings, settings

WAREHOUSE_DB = "cdp"
DAGSTER_DB = "dagster"
CONNECT_TIMEOUT_S = 5
# The first statement of every transaction that writes raw_* rows: a shared lock held to commit.
# A dbt build's on-run-start barrier (macros/incremental.sql) notes the time, then takes this
# lock exclusively, so every raw row stamped (_loaded_at = transaction start) before the barrier
# is committed before any incremental model reads. Loads never block each other.
LANDING_LOCK = "select pg_advisory_xact_lock_shared(hashtext('cdp.raw_landing'))"


def describe(url: str) -> str:
    """host:port/database of a URL, without credentials, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or parse_qs(parts.query).get("host", ["localhost"])[0]
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}{parts.path or '/'}"


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def server_url(cfg: Settings | None = None) -> str:
    """The warehouse URL, starting the embedded server when no external one is configured."""
    cfg = cfg or settings()
    if cfg.database_url:
        return cfg.database_url
    status = embedded.start(cfg.pg_dir)
    url = status.url(WAREHOUSE_DB)
    ensure_database(url)
    return url


def warehouse_url(cfg: Settings | None = None) -> str:
    return server_url(cfg)


def dagster_url(cfg: Settings | None = None) -> str:
    """SQLAlchemy URL for dagster-postgres (psycopg2 driver: SQLAlchemy 2.1 maps a bare
    ``postgresql://`` to psycopg 3, whose NOTIFY handling dagster-postgres does not support)."""
    url = with_database(server_url(cfg), DAGSTER_DB)
    ensure_database(url)
    return url.replace("postgresql://", "postgresql+psycopg2://", 1).replace(
        "postgres://", "postgresql+psycopg2://", 1
    )


def connect(url: str | None = None, *, autocommit: bool = False) -> psycopg.Connection:
    url = url or warehouse_url()
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CdpError(
            f"cannot connect to PostgreSQL at {describe(url)}: {first}. "
            "Check CDP_DATABASE_URL (unset it to use the embedded server)."
        ) from exc


def ensure_database(url: str) -> None:
    """Create the URL's database when the server does not have it yet."""
    name = urlsplit(url).path.lstrip("/") or "postgres"
    try:
        with connect(url):
            return
    except CdpError as exc:
        if not isinstance(exc.__cause__, psycopg.OperationalError) or "does not exist" not in str(
            exc
        ):
            raise
    with connect(with_database(url, "postgres"), autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if not exists:
            # another process may create it concurrently
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))


@contextmanager
def cursor(url: str | None = None) -> Iterator[psycopg.Cursor]:
    with connect(url) as conn, conn.cursor() as cur:
        yield cur


def copy_csv(
    conn: psycopg.Connection, table: str, columns: Iterable[str], chunks: Iterable[bytes]
) -> None:
    """Stream CSV chunks (no header, empty = NULL) into ``table`` with COPY."""
    stmt = sql.SQL("copy {} ({}) from stdin (format csv)").format(
        sql.Identifier(*table.split(".")),
        sql.SQL(", ").join(sql.Identifier(c) for c in columns),
    )
    # a sender thread streams chunk k while Python prepares chunk k+1
    with conn.cursor() as cur, cur.copy(stmt, writer=QueuedLibpqWriter(cur)) as copy:
        for chunk in chunks:
            copy.write(chunk)


def copy_binary(
    conn: psycopg.Connection, table: str, columns: Iterable[str], chunks: Iterable
) -> None:
    """Stream a binary COPY payload (``runtime.pgbinary.encode_rows``) into ``table``."""
    stmt = sql.SQL("copy {} ({}) from stdin (format binary)").format(
        sql.Identifier(*table.split(".")),
        sql.SQL(", ").join(sql.Identifier(c) for c in columns),
    )
    # the payload is built already: written straight from this thread, which waits on the socket
    # with the GIL released while the server parses
    with conn.cursor() as cur, cur.copy(stmt) as copy:
        for chunk in chunks:
            copy.write(chunk)


def frame_to_csv(frame) -> bytes:
    """A DataFrame as CSV bytes for ``copy_csv`` (no header; nulls empty, strings quoted).

    Arrow's C++ writer is about 4x faster than ``DataFrame.to_csv`` and quotes every string, so
    an empty string stays distinct from NULL."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = (
        frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    )
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False, batch_size=16_384))
    return sink.getvalue().to_pybytes()


def frame_chunks(frame, rows_per_chunk: int = 250_000) -> Iterator[bytes]:
    for start in range(0, len(frame), rows_per_chunk):
        yield frame_to_csv(frame.iloc[start : start + rows_per_chunk])


def ensure_tables(conn: psycopg.Connection, schema: str, tables: list[str], ddl: str) -> None:
    """Run ``ddl`` (``create … if not exists``) unless every table in ``tables`` of ``schema``
    exists; serialized by an advisory lock, since parallel steps racing on ``create table if not
    exists`` can collide in the catalog."""
    present = conn.execute(
        "select count(*) from pg_tables where schemaname = %s and tablename = any(%s)",
        (schema, tables),
    ).fetchone()[0]
    if present == len(tables):
        return
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"cdp.ddl.{schema}",))
        conn.execute(ddl)


def table_exists(conn: psycopg.Connection, qualified: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (qualified,)).fetchone()[0]


def dbt_env(url: str) -> dict[str, str]:
    """Environment variables ``profiles.yml`` reads, derived from a warehouse URL.

    A unix-socket URL (``?host=/dir``, the embedded server) becomes host=/dir, which psycopg2 and
    therefore dbt-postgres accept."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    host = parts.hostname or query.get("host", ["localhost"])[0]
    return {
        "CDP_PG_HOST": host,
        "CDP_PG_PORT": str(parts.port or 5432),
        "CDP_PG_USER": parts.username or "postgres",
        "CDP_PG_PASSWORD": parts.password or "",
        "CDP_PG_DBNAME": (parts.path or "/postgres").lstrip("/") or "postgres",
        "CDP_PG_SSLMODE": query.get("sslmode", ["prefer"])[0],
    }
