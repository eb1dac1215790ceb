"""Dagster resources shared by every domain: the warehouse connection and the PII vault keys.

Settings are read once (``orchestration.runtime.settings``); resources only hand them out."""

from contextlib import contextmanager

import dagster as dg
import psycopg

from orchestration.privacy.blocklist import Blocklist, load_blocklist
from orchestration.privacy.vault import VaultKeys, load_keys
from orchestration.runtime import db
from orchestration.runtime.schema import ensure_warehouse
from orchestration.runtime.settings import settings


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse: ``CDP_DATABASE_URL`` or the embedded server (empty = from settings)."""

    database_url: str = ""

    def url(self) -> str:
        return self.database_url or db.warehouse_url()

    @contextmanager
    def connect(self):
        with db.connect(self.url()) as conn:
            ensure_warehouse(conn)
            yield conn

    def ensure_schema(self) -> None:
        """Create CDP Lite's schemas and Python-owned tables on a fresh warehouse."""
        with self.connect():
            pass

    def vault_keys(self) -> VaultKeys:
        cfg = settings()
        return load_keys(cfg.pii_key, cfg.keys_dir)

    def blocklist(self) -> Blocklist:
        return load_blocklist(settings().identity_blocklist)


def query_rows(conn: psycopg.Connection, sql: str, params=None) -> list[tuple]:
    return conn.execute(sql, params).fetchall()
