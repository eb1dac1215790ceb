"""Audited decryption against a real PostgreSQL: the bulk Arrow path and the dict path, with
duplicates, NULLs, missing and undecryptable values, unicode, and one audit event per call."""

from __future__ import annotations

import pyarrow as pa
import pytest

from orchestration.errors import CdpError
from orchestration.privacy import access
from orchestration.privacy.vault import VaultKeys, blind_index, encrypt
from orchestration.runtime import db

KEYS = VaultKeys.from_master(b"k" * 32)
OTHER = VaultKeys.from_master(b"o" * 32)  # a rotated-away key
NAMES = ["Zoë", "José", "李小龙", 'O\'Brien, "Jr"', "Ann\nMarie"]


def _vault(conn, pii_type: str, values: dict[str, str], keys: VaultKeys = KEYS) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "insert into pii.vault (pii_type, value_hash, ciphertext, key_id) "
            "values (%s, %s, %s, %s)",
            [(pii_type, h, encrypt(keys, pii_type, h, v), keys.key_id) for h, v in values.items()],
        )


def _audits(conn) -> list:
    return conn.execute(
        "select actor, subject, segment, rows, details from audit.events "
        "where action = 'pii.decrypted' order by event_id"
    ).fetchall()


@pytest.fixture
def vault_db(warehouse_url):
    """Five unicode names (one encrypted with another key) and two emails in the vault."""
    names = {blind_index(KEYS, "name", n.lower()): n for n in NAMES}
    emails = {blind_index(KEYS, "email", e): e for e in ("a@x.com", "b@x.com")}
    with db.connect(warehouse_url) as conn:
        conn.execute("delete from pii.vault")
        conn.execute("delete from audit.events")
        stale = next(iter(names))
        _vault(conn, "name", {h: v for h, v in names.items() if h != stale})
        _vault(conn, "name", {stale: names[stale]}, OTHER)
        _vault(conn, "email", emails)
        conn.commit()
    return warehouse_url, names, emails, stale


def test_lookup_path_decrypts_each_distinct_hash_once_and_counts_the_rest(vault_db):
    url, names, _, stale = vault_db
    hashes = list(names)
    rows = [hashes[1], None, hashes[2], hashes[1], stale, "f" * 64, hashes[3], hashes[4]]
    with db.connect(url) as conn:
        plain, counts = access.decrypt_arrays(
            conn,
            KEYS,
            {"name": (pa.chunked_array([rows[:3], rows[3:]], pa.string()), None)},
            purpose="test export",
            actor="tester",
            segment="seg",
            subject="exp-1",
        )
        conn.commit()
        audits = _audits(conn)
    assert plain["name"].to_pylist() == [
        names[hashes[1]],
        None,  # no hash
        names[hashes[2]],
        names[hashes[1]],  # a duplicate, decrypted once
        None,  # encrypted with another key: undecryptable, not fatal
        None,  # not in the vault
        names[hashes[3]],
        names[hashes[4]],
    ]
    assert plain["name"].to_pylist()[2] == "李小龙"
    assert counts["name"] == {"requested": 6, "decrypted": 4, "missing": 1, "undecryptable": 1}
    assert len(audits) == 1
    actor, subject, segment, n, details = audits[0]
    assert (actor, subject, segment, n) == ("tester", "exp-1", "seg", 4)
    assert details["purpose"] == "test export" and details["types"]["name"] == counts["name"]


def test_joined_ciphertexts_as_hex_or_binary_and_a_ciphertext_moved_to_another_hash(vault_db):
    url, _, emails, _ = vault_db
    (ha, a), (hb, b) = emails.items()
    with db.connect(url) as conn:
        blobs = dict(
            conn.execute(
                "select value_hash, ciphertext from pii.vault where pii_type = 'email'"
            ).fetchall()
        )
        hashes = [ha, hb, None, ha, "e" * 64]
        # row 5: b's ciphertext presented under another hash fails authentication
        binary = [blobs[ha], blobs[hb], None, blobs[ha], blobs[hb]]
        for cts in (pa.array(binary, pa.binary()), pa.array([c and c.hex() for c in binary])):
            plain, counts = access.decrypt_arrays(
                conn,
                KEYS,
                {"email": (pa.array(hashes), cts)},
                purpose="test",
                actor="tester",
            )
            assert plain["email"].to_pylist() == [a, b, None, a, None]
            assert counts["email"] == {
                "requested": 3,
                "decrypted": 2,
                "missing": 0,
                "undecryptable": 1,
            }
        assert len(_audits(conn)) == 2  # one per call


def test_a_bad_value_in_a_large_batch_costs_only_itself(vault_db, monkeypatch):
    url, *_ = vault_db
    monkeypatch.setattr(access, "_BLOCK", 4)  # five blocks; the bad value is in the third
    hashes = [blind_index(KEYS, "email", f"p{i}@x.com") for i in range(20)]
    cts = [encrypt(KEYS, "email", h, f"p{i}@x.com") for i, h in enumerate(hashes)]
    cts[9] = cts[9][:-1] + bytes([cts[9][-1] ^ 1])  # a flipped tag bit
    with db.connect(url) as conn:
        plain, counts = access.decrypt_arrays(
            conn, KEYS, {"email": (pa.array(hashes), pa.array(cts))}, purpose="t", actor="t"
        )
    expected = [f"p{i}@x.com" for i in range(20)]
    expected[9] = None
    assert plain["email"].to_pylist() == expected
    assert counts["email"]["undecryptable"] == 1 and counts["email"]["decrypted"] == 19


def test_empty_requests_and_the_dict_api(vault_db):
    url, names, emails, stale = vault_db
    with db.connect(url) as conn:
        plain, counts = access.decrypt_arrays(
            conn,
            KEYS,
            {"email": (pa.array([], pa.string()), None), "name": (pa.array([None]), None)},
            purpose="t",
            actor="t",
        )
        assert plain["email"].to_pylist() == [] and plain["name"].to_pylist() == [None]
        assert counts["email"]["requested"] == counts["name"]["requested"] == 0
        got = access.decrypt_hashes(
            conn,
            KEYS,
            {"name": [*names, None, "not-a-hash"], "email": list(emails)},
            purpose="t",
            actor="t",
        )
        assert got["name"] == {h: v for h, v in names.items() if h != stale}
        assert got["email"] == emails
        assert len(_audits(conn)) == 2


def test_purpose_and_type_are_required(vault_db):
    url, *_ = vault_db
    with db.connect(url) as conn:
        with pytest.raises(CdpError, match="purpose"):
            access.decrypt_arrays(conn, KEYS, {}, purpose=" ", actor="t")
        with pytest.raises(CdpError, match="unknown PII type 'ssn'"):
            access.decrypt_arrays(
                conn, KEYS, {"ssn": (pa.array(["x"]), None)}, purpose="p", actor="t"
            )
