"""Audited plaintext access: "decrypt these blind-index hashes for this purpose".

The only sanctioned way to read PII back out of ``pii.vault``. Each call decrypts every distinct
hash once and writes exactly one ``audit.events`` row saying who read how many values of which
types (requested, decrypted, missing, undecryptable), for what and for which segment. Every
ciphertext is authenticated with ``{pii_type}:{value_hash}`` as associated data, so a ciphertext
moved onto another hash fails; such values (and ones another key encrypted) are counted as
``undecryptable``, never fatal.

``decrypt_arrays`` is the bulk path (exports): hashes arrive as Arrow arrays, with their
ciphertexts when the caller's own query joined ``pii.vault`` (cheapest for near-unique values
such as emails) or without, and then the vault is read here for the distinct hashes only (names
repeat: thousands of distinct values across 100,000 rows). Everything but the AES-GCM call runs
vectorised: distinct hashes (one ``dictionary_encode``), nonce/body split, associated data, UTF-8
validation, the join back onto the rows. ``decrypt_hashes`` is the same for a few Python values.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Iterable, Mapping

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from orchestration.errors import CdpError
from orchestration.privacy.vault import PII_TYPES, VaultKeys

NONCE_BYTES = 12
LOOKUP_BATCH = 100_000  # hashes per vault query (one text parameter each)
_BLOCK = 8192  # values per fast-path block; a failure re-decrypts only its block one by one

Column = pa.Array | pa.ChunkedArray


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
    and duplicates are ignored). Hashes absent from the vault, or that do not decrypt, are
    absent from the result. One audit event per call, committed with the caller's transaction
    (or at once in autocommit)."""
    arrays = {t: pa.array(list(hashes), pa.string()) for t, hashes in requests.items()}
    plain, _ = decrypt_arrays(
        conn,
        keys,
        {t: (h, None) for t, h in arrays.items()},
        purpose=purpose,
        actor=actor,
        segment=segment,
        subject=subject,
    )
    return {
        t: {h: v for h, v in zip(arrays[t].to_pylist(), p.to_pylist(), strict=True) if h and v}
        for t, p in plain.items()
    }


def decrypt_arrays(
    conn: psycopg.Connection,
    keys: VaultKeys,
    requests: Mapping[str, tuple[Column, Column | None]],
    *,
    purpose: str,
    actor: str,
    segment: str | None = None,
    subject: str | None = None,
) -> tuple[dict[str, pa.Array], dict[str, dict[str, int]]]:
    """``{pii_type: (hashes, ciphertexts or None)}`` → ``({pii_type: plaintexts}, counts)``.

    ``hashes`` is a string array (duplicates and nulls fine); ``ciphertexts`` the row-aligned
    ``nonce || AES-GCM`` vault values, binary or hex text (``encode(ciphertext, 'hex')``), or
    None to read them from ``pii.vault`` here. Plaintexts are aligned with the same rows, null
    where the hash is null, not in the vault or does not decrypt; counts are per type, in
    distinct hashes. Each distinct hash is decrypted once; one audit event for the call."""
    if not purpose.strip():
        raise CdpError("decrypting PII needs a purpose (it is recorded in audit.events)")
    for pii_type in requests:
        if pii_type not in PII_TYPES:
            raise CdpError(f"unknown PII type {pii_type!r}; known: {', '.join(PII_TYPES)}")
    decrypt = AESGCM(keys.encryption).decrypt
    out: dict[str, pa.Array] = {}
    counts: dict[str, dict[str, int]] = {}
    for pii_type, (hashes, ciphertexts) in requests.items():
        hashes = _combined(hashes).cast(pa.string())
        encoded = pc.dictionary_encode(hashes)
        rows, distinct = encoded.indices, encoded.dictionary
        if ciphertexts is None:
            cts = _lookup(conn, pii_type, distinct)
        else:
            ciphertexts = _binary(_combined(ciphertexts))
            if len(ciphertexts) != len(hashes):
                raise ValueError(f"{len(hashes)} hashes but {len(ciphertexts)} ciphertexts")
            cts = ciphertexts.take(_first_rows(rows))
        present = pc.is_valid(cts)
        plain = _decrypt_all(decrypt, pii_type, distinct.filter(present), cts.filter(present))
        decrypted = len(plain) - plain.null_count
        if cts.null_count:  # back to one slot per distinct hash, null where none is stored
            slot = np.cumsum(present.to_numpy(zero_copy_only=False)) - 1
            plain = pc.if_else(present, plain.take(pa.array(np.maximum(slot, 0))), None)
        out[pii_type] = plain.take(rows)
        counts[pii_type] = {
            "requested": len(distinct),
            "decrypted": decrypted,
            "missing": cts.null_count,
            "undecryptable": len(cts) - cts.null_count - decrypted,
        }
    conn.execute(
        "insert into audit.events (actor, action, subject, segment, rows, details) "
        "values (%s, 'pii.decrypted', %s, %s, %s, %s::jsonb)",
        (
            actor,
            subject,
            segment,
            sum(c["decrypted"] for c in counts.values()),
            json.dumps({"purpose": purpose, "key_id": keys.key_id, "types": counts}),
        ),
    )
    return out, counts


def _combined(values: Column) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _binary(values: pa.Array) -> pa.Array:
    """Binary ciphertexts; hex text is decoded in one C call over the whole column."""
    if pa.types.is_large_string(values.type):
        values = values.cast(pa.string())
    if not pa.types.is_string(values.type):
        return values.cast(pa.binary())
    if not len(values):
        return pa.array([], pa.binary())
    validity, offsets, data = values.buffers()
    offsets = np.frombuffer(offsets, np.int32)[values.offset : values.offset + len(values) + 1]
    raw = binascii.unhexlify(memoryview(data)[offsets[0] : offsets[-1]])
    out = pa.Array.from_buffers(
        pa.binary(),
        len(values),
        [None, pa.py_buffer((offsets - offsets[0]) // 2), pa.py_buffer(raw)],
    )
    return pc.if_else(pc.is_valid(values), out, None) if values.null_count else out


def _first_rows(rows: pa.Array) -> pa.Array:
    """The row of each distinct value's first occurrence (codes 0..n-1 all occur)."""
    valid = pc.is_valid(rows)
    positions = np.flatnonzero(valid.to_numpy(zero_copy_only=False))
    _, first = np.unique(rows.filter(valid).to_numpy(), return_index=True)
    return pa.array(positions[first])


def _lookup(conn: psycopg.Connection, pii_type: str, distinct: pa.Array) -> pa.Array:
    """The vault ciphertext of each distinct hash (null when absent): one query per batch,
    the hashes as one text parameter (binding a 100k-element list costs more than the query)
    and the answer as one aggregated value, parsed by Arrow."""
    # blind indexes are hex digests: anything else cannot be in the vault (and could not be
    # sent comma-separated)
    wanted = distinct.filter(pc.match_substring_regex(distinct, "^[0-9a-f]+$"))
    found_hashes, found_cts = [], []
    for lo in range(0, len(wanted), LOOKUP_BATCH):
        param = ",".join(wanted.slice(lo, LOOKUP_BATCH).to_pylist())
        with conn.cursor(binary=True) as cur:
            data = cur.execute(
                "select convert_to(string_agg(v.value_hash || ',' || encode(v.ciphertext, 'hex'), "
                "E'\\n'), 'UTF8') from pii.vault v "
                "join unnest(string_to_array(%s, ',')) as w(value_hash) using (value_hash) "
                "where v.pii_type = %s",
                (param, pii_type),
            ).fetchone()[0]
        if data:
            found = pacsv.read_csv(
                pa.py_buffer(data),
                read_options=pacsv.ReadOptions(column_names=["h", "c"]),
                convert_options=pacsv.ConvertOptions(
                    column_types={"h": pa.string(), "c": pa.string()}
                ),
            )
            found_hashes.append(found["h"].combine_chunks())
            found_cts.append(_binary(found["c"].combine_chunks()))
    if not found_hashes:
        return pa.nulls(len(distinct), pa.binary())
    index = pc.index_in(distinct, value_set=pa.concat_arrays(found_hashes))
    return pa.concat_arrays(found_cts).take(index)


def _decrypt_all(decrypt, pii_type: str, hashes: pa.Array, cts: pa.Array) -> pa.Array:
    """Plaintext per ciphertext; null where it does not decrypt (another key, damaged, bound
    to another hash, not UTF-8)."""
    if not len(cts):
        return pa.array([], pa.string())
    nonces = pc.binary_slice(cts, 0, NONCE_BYTES).to_pylist()
    longest = pc.max(pc.binary_length(cts)).as_py() or NONCE_BYTES
    # an explicit stop: pyarrow 26 mis-sizes binary_slice's output without one
    bodies = pc.binary_slice(cts, NONCE_BYTES, longest).to_pylist()
    aads = pc.binary_join_element_wise(f"{pii_type}:", hashes, "").cast(pa.binary()).to_pylist()
    values: list[bytes | None] = []
    for lo in range(0, len(nonces), _BLOCK):
        hi = lo + _BLOCK
        try:
            values += [
                decrypt(n, b, a)
                for n, b, a in zip(nonces[lo:hi], bodies[lo:hi], aads[lo:hi], strict=True)
            ]
        except (InvalidTag, ValueError):  # another key (rotation) or a damaged value
            for n, b, a in zip(nonces[lo:hi], bodies[lo:hi], aads[lo:hi], strict=True):
                try:
                    values.append(decrypt(n, b, a))
                except (InvalidTag, ValueError):
                    values.append(None)
    try:
        return pa.array(values, pa.binary()).cast(pa.string())
    except pa.ArrowInvalid:  # authentic but not UTF-8: not ours to guess at, count it
        return pa.array([_utf8(v) for v in values], pa.string())


def _utf8(value: bytes | None) -> str | None:
    try:
        return value.decode() if value is not None else None
    except UnicodeDecodeError:
        return None
