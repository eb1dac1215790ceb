"""Audited plaintext access: "decrypt these blind-index hashes for this purpose".

The only sanctioned way to read PII back out of ``pii.vault``. Each call decrypts every distinct
hash once (AES-GCM per value is unavoidable; everything else is set-based: one query fetches the
ciphertexts, one AESGCM object decrypts them in a tight loop) and writes exactly one
``audit.events`` row saying who read how many values of which types, for what and for which
segment. Callers join the returned mapping back onto their rows (vectorised, e.g.
``pyarrow.compute.index_in`` + ``take``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

import psycopg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from orchestration.errors import CdpError
from orchestration.privacy.vault import PII_TYPES, VaultKeys


def decrypt_hashes(
    conn: psycopg.Connection,
    keys: VaultKeys,
    requests: Mapping[str, Iterable[str | None]],
    *,
    purpose: str,
    actor: str,
    segment: str | None = None,
    subject: str | None = None,
) -> dict[str, dict[str, str]]:
    """Plaintext for blind-index hashes, per PII type: ``{pii_type: {value_hash: plaintext}}``.

    ``requests`` maps a vault PII type (email, phone, name, address) to the hashes wanted (None
    and duplicates are ignored). Hashes absent from the vault are absent from the result. One
    audit event per call, committed with the caller's transaction (or at once in autocommit)."""
    fetched: dict[str, tuple[int, dict]] = {}
    for pii_type, hashes in requests.items():
        _check_type(pii_type)
        wanted = list({h for h in hashes if h and "," not in h})  # hex digests, never commas
        rows = []
        if wanted:
            # one text parameter, split server-side: binding a 100k-element list is slow
            with conn.cursor(binary=True) as cur:
                rows = cur.execute(
                    "select value_hash, ciphertext from pii.vault where pii_type = %s "
                    "and value_hash = any(string_to_array(%s, ','))",
                    (pii_type, ",".join(wanted)),
                ).fetchall()
        fetched[pii_type] = (len(wanted), dict(rows))
    return _decrypt_and_audit(conn, keys, fetched, purpose, actor, segment, subject)


def decrypt_fetched(
    conn: psycopg.Connection,
    keys: VaultKeys,
    fetched: Mapping[str, tuple[Iterable[str | None], Iterable[str | bytes | None]]],
    *,
    purpose: str,
    actor: str,
    segment: str | None = None,
    subject: str | None = None,
) -> dict[str, dict[str, str]]:
    """Like ``decrypt_hashes``, for callers whose own query already joined ``pii.vault``:
    ``{pii_type: (hashes, ciphertexts)}`` row-aligned (ciphertext as bytes or PostgreSQL's
    ``\\x``-hex text; duplicates and nulls are fine). Saves a second round trip with every hash
    as a parameter. Same contract: each distinct hash decrypted once, one audit event."""
    prepared: dict[str, tuple[int, dict]] = {}
    for pii_type, (hashes, ciphertexts) in fetched.items():
        _check_type(pii_type)
        pairs = dict(zip(hashes, ciphertexts, strict=True))  # distinct hashes, C speed
        pairs.pop(None, None)
        wanted = len(pairs)
        prepared[pii_type] = (
            wanted,
            {
                h: bytes.fromhex(c[2:]) if isinstance(c, str) else c
                for h, c in pairs.items()
                if c is not None
            },
        )
    return _decrypt_and_audit(conn, keys, prepared, purpose, actor, segment, subject)


def _check_type(pii_type: str) -> None:
    if pii_type not in PII_TYPES:
        raise CdpError(f"unknown PII type {pii_type!r}; known: {', '.join(PII_TYPES)}")


def _decrypt_and_audit(conn, keys, fetched, purpose, actor, segment, subject):
    if not purpose.strip():
        raise CdpError("decrypting PII needs a purpose (it is recorded in audit.events)")
    out: dict[str, dict[str, str]] = {}
    counts: dict[str, dict[str, int]] = {}
    decrypt = AESGCM(keys.encryption).decrypt
    for pii_type, (wanted, ciphertexts) in fetched.items():
        plain: dict[str, str] = {}
        failed = 0
        prefix = f"{pii_type}:"
        for value_hash, ciphertext in ciphertexts.items():
            try:
                plain[value_hash] = decrypt(
                    ciphertext[:12], ciphertext[12:], (prefix + value_hash).encode()
                ).decode()
            except InvalidTag:
                failed += 1  # another key encrypted it (rotation); reported, not fatal
        out[pii_type] = plain
        counts[pii_type] = {
            "requested": wanted,
            "decrypted": len(plain),
            "missing": wanted - len(plain) - failed,
            "undecryptable": failed,
        }
    conn.execute(
        "insert into audit.events (actor, action, subject, segment, rows, details) "
        "values (%s, 'pii.decrypted', %s, %s, %s, %s::jsonb)",
        (
            actor,
            subject,
            segment,
            sum(len(v) for v in out.values()),
            json.dumps({"purpose": purpose, "key_id": keys.key_id, "types": counts}),
        ),
    )
    return out
