"""Export edge cases against a real PostgreSQL: unicode names, a value that does not decrypt, a
NULL email, text fields needing CSV quoting, both result transports, an empty segment."""

from __future__ import annotations

import csv
import hashlib

import pyarrow.parquet as pq

from orchestration.activation import fetch, files
from orchestration.privacy.vault import VaultKeys, blind_index, encrypt
from orchestration.runtime import db

TRICKY = 'at "risk", maybe\nnext week'


def run(url, kit, segments_dir, tmp_path, slug=None, run_id="run-aaaa1111", **kw):
    return kit.export(url, segments_dir, tmp_path, run_id, slug=slug or kit.SLUG, **kw)


def rows(path) -> dict[str, dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return {r["customer_id"]: r for r in csv.DictReader(fh)}


def test_unicode_undecryptable_null_and_quoted_values(
    act_db, kit, segments_dir, tmp_path, monkeypatch
):
    keys = kit.keys()
    zoe = blind_index(keys, "name", "zoë")
    with db.connect(act_db, autocommit=True) as conn:
        conn.execute(
            "insert into pii.vault (pii_type, value_hash, ciphertext, key_id) "
            "values ('name', %s, %s, %s) on conflict do nothing",
            (zoe, encrypt(keys, "name", zoe, "Zoë 李"), keys.key_id),
        )
        conn.execute(
            "update marts.customer_contacts set first_name_hash = %s "
            "where customer_id in ('cus_00050', 'cus_00051')",
            (zoe,),
        )
        # cus_00052's email was encrypted under a key since rotated away: not decryptable
        h52 = conn.execute(
            "select email_hash from marts.customer_contacts where customer_id = 'cus_00052'"
        ).fetchone()[0]
        stale = VaultKeys.from_master(b"r" * 32)
        conn.execute(
            "update pii.vault set ciphertext = %s where pii_type = 'email' and value_hash = %s",
            (encrypt(stale, "email", h52, "person52@example.com"), h52),
        )
        conn.execute(
            "update marts.customer_profiles set lifecycle_stage = %s "
            "where customer_id = 'cus_00053'",
            (TRICKY,),
        )
        conn.execute(
            "update marts.customer_profiles set lifecycle_stage = '' "
            "where customer_id = 'cus_00054'"
        )
        # cus_00003 has no email at all; make it a member
        conn.execute(
            "update marts.customer_profiles set lifetime_value = 999 "
            "where customer_id = 'cus_00003'"
        )
        kit.refresh(conn)
    columns = ["customer_id", "email", "first_name", "last_name", "lifecycle_stage"]
    kit.write_segment_file(
        segments_dir,
        kit.SLUG,
        [
            {"destination": "csv", "columns": columns},
            {"destination": "parquet", "columns": columns},
        ],
    )
    result = run(act_db, kit, segments_dir, tmp_path)
    directory = tmp_path / "exports" / kit.SLUG / result.export_id
    files.verify_export(directory)
    got = rows(directory / "members.csv")
    assert got["cus_00050"]["first_name"] == got["cus_00051"]["first_name"] == "Zoë 李"
    assert got["cus_00050"]["last_name"] == "last50"
    assert got["cus_00052"]["email"] == ""  # undecryptable: empty, the export goes on
    assert got["cus_00003"]["email"] == ""  # no email on file
    assert got["cus_00053"]["lifecycle_stage"] == TRICKY
    assert got["cus_00054"]["lifecycle_stage"] == ""
    assert got["cus_00055"]["email"] == "person55@example.com"
    parquet = pq.read_table(directory / "members.parquet").to_pylist()
    by_id = {r["customer_id"]: r for r in parquet}
    assert by_id["cus_00052"]["email"] is None and by_id["cus_00003"]["email"] is None
    assert by_id["cus_00053"]["lifecycle_stage"] == TRICKY
    with db.connect(act_db) as conn:
        details = conn.execute(
            "select details from audit.events where action = 'pii.decrypted'"
        ).fetchone()[0]
    assert details["types"]["email"]["undecryptable"] == 1
    assert details["types"]["email"]["decrypted"] == result.members - 2
    # first + last names share the "name" type: Zoë once, plus each member's own names
    assert details["types"]["name"]["undecryptable"] == 0

    # the streamed COPY transport (results over fetch.AGGREGATE_MAX_ROWS) writes the same bytes
    aggregated = (directory / "members.csv").read_bytes()
    monkeypatch.setattr(fetch, "AGGREGATE_MAX_ROWS", 0)
    again = run(act_db, kit, segments_dir, tmp_path, run_id="run-bbbb2222", force=True)
    streamed = (tmp_path / "exports" / kit.SLUG / again.export_id / "members.csv").read_bytes()
    assert hashlib.sha256(streamed).digest() == hashlib.sha256(aggregated).digest()


def test_empty_segment_exports_empty_files(act_db, kit, segments_dir, tmp_path):
    with db.connect(act_db, autocommit=True) as conn:
        kit.define_segment(conn, "nobody", "lifetime_value > 1000000")
        kit.refresh(conn, "nobody")
    kit.write_segment_file(
        segments_dir, "nobody", [{"destination": "csv"}, {"destination": "parquet"}]
    )
    result = run(act_db, kit, segments_dir, tmp_path, slug="nobody")
    assert (result.status, result.members, result.entered, result.exited) == (
        "exported",
        0,
        0,
        0,
    )
    seg_dir = tmp_path / "exports" / "nobody"
    manifest = files.verify_export(seg_dir / result.export_id)
    assert {f: i["rows"] for f, i in manifest["files"].items()} == dict.fromkeys(
        [f"{n}.{x}" for x in ("csv", "parquet") for n in ("members", "entered", "exited")], 0
    )
    header = (seg_dir / result.export_id / "members.csv").read_text().strip()
    assert header.replace('"', "") == "customer_id,email,first_name,last_name,lifetime_value"
    assert files.read_latest(seg_dir) == result.export_id
