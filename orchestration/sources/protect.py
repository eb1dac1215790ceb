"""PII protection for landing: plaintext identifiers become keyed blind indexes before anything
lands, and their encrypted values become ``pii.vault`` rows (``privacy.vault`` does the
cryptography; this module applies it to a producer's frame)."""

from __future__ import annotations

import pandas as pd
import psycopg
import pyarrow as pa

from orchestration.privacy.blocklist import Blocklist
from orchestration.privacy.vault import VaultKeys, encrypt_many, index_codes
from orchestration.runtime.db import copy_csv, frame_chunks
from orchestration.sources.schemas import RawTable
from orchestration.sources.validation import column_values


def protect_pii(
    table: RawTable, frame: pd.DataFrame | pa.Table, keys: VaultKeys, blocklist: Blocklist
) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """The landed columns' values with plaintext PII replaced by blind indexes; vault rows and
    blocked hashes."""
    source = {name: column_values(frame, name) for name, _ in table.columns}
    vault_parts, blocked_parts = [], []
    for pii in table.pii:
        values = column_values(frame, pii.column)
        if isinstance(values, pa.Array):
            values = values.to_pandas()  # PII tables are small; the vault code is pandas
        codes, hashes, plain_by_hash = index_codes(keys, values, pii.pii_type)
        source[pii.hash_column] = pa.array(hashes, type=pa.string()).take(
            pa.array(codes, mask=codes < 0)
        )
        if plain_by_hash:
            vault_parts.append(encrypt_many(keys, pii.pii_type, plain_by_hash))
        if pii.pii_type in ("email", "phone"):
            hashes_blocked = _blocked(blocklist, pii.pii_type, plain_by_hash)
            if hashes_blocked:
                blocked_parts.append(
                    pd.DataFrame(
                        {
                            "pii_type": pii.pii_type,
                            "value_hash": hashes_blocked,
                            "rule": "blocklist",
                        }
                    )
                )
    vault = pd.concat(vault_parts) if vault_parts else pd.DataFrame()
    blocked = pd.concat(blocked_parts) if blocked_parts else pd.DataFrame()
    if len(vault):
        vault = vault.drop_duplicates(["pii_type", "value_hash"])
    if len(blocked):
        blocked = blocked.drop_duplicates(["pii_type", "value_hash"])
    return source, vault, blocked


_BLOCKED_MEMO: dict[int, tuple[Blocklist, dict]] = {}


def _blocked(blocklist: Blocklist, pii_type: str, plain_by_hash: dict[str, str]) -> list[str]:
    """Hashes whose normalized value is on the blocklist; each value is checked once per
    blocklist for the process (the same identifiers recur in every table and batch)."""
    held = _BLOCKED_MEMO.get(id(blocklist))
    if held is None or held[0] is not blocklist:
        held = _BLOCKED_MEMO[id(blocklist)] = (blocklist, {})
    memo = held[1]
    if len(memo) > 2_000_000:
        memo.clear()
    new = [v for v in plain_by_hash.values() if (pii_type, v) not in memo]
    if new:
        flags = blocklist.flags(pd.Series(new, dtype="string"), pii_type).tolist()
        memo.update(zip(((pii_type, v) for v in new), flags, strict=True))
    return [h for h, v in plain_by_hash.items() if memo[(pii_type, v)]]


def insert_new(conn: psycopg.Connection, target: str, rows: pd.DataFrame) -> None:
    """Insert rows whose key is not there yet (COPY into a temp table, then one insert)."""
    tmp = "tmp_" + target.replace(".", "_")
    conn.execute(
        f"create temp table if not exists {tmp} (like {target} including defaults) on commit drop"
    )
    conn.execute(f"truncate {tmp}")
    copy_csv(conn, tmp, rows.columns, frame_chunks(rows))
    cols = ", ".join(rows.columns)
    # key order: concurrent batches inserting overlapping keys lock them in the same order
    key = "pii_type, value_hash"
    conn.execute(
        f"insert into {target} ({cols}) select {cols} from {tmp} order by {key} "
        "on conflict do nothing"
    )
