"""The PII vault: AES-GCM encryption and HMAC-SHA256 blind indexes.

One 32-byte master key (``CDP_PII_KEY``, base64, or a 0600 key file under ``$CDP_HOME/keys/``
created on first use) derives two independent keys with HKDF: one encrypts, one computes blind
indexes. Raw and warehouse tables only ever see ``hmac(index_key, pii_type ":" normalized)`` as hex;
``pii.vault`` maps ``(pii_type, value_hash)`` to the ciphertext (nonce || AES-GCM(value)), with the
pair as associated data so a ciphertext cannot be swapped onto another hash.

Normalization makes the same person's variants meet: emails are trimmed and lower-cased; phones
keep digits only, a 10-digit US number gets its country code; names and addresses are trimmed,
lower-cased and whitespace-collapsed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from orchestration.errors import CdpError

PII_TYPES = ("email", "phone", "name", "address")
KEY_FILE = "pii.key"


@dataclass(frozen=True)
class VaultKeys:
    key_id: str  # first 8 hex of sha256(master): which key encrypted a value
    encryption: bytes
    index: bytes

    @classmethod
    def from_master(cls, master: bytes) -> VaultKeys:
        if len(master) != 32:
            raise CdpError(f"the PII master key must be 32 bytes, got {len(master)}")

        def derive(info: bytes) -> bytes:
            return HKDF(hashes.SHA256(), 32, salt=None, info=info).derive(master)

        return cls(
            key_id=hashlib.sha256(master).hexdigest()[:8],
            encryption=derive(b"cdp-lite pii encryption v1"),
            index=derive(b"cdp-lite pii blind index v1"),
        )


def load_keys(pii_key: str | None, keys_dir: Path) -> VaultKeys:
    """The vault keys from ``CDP_PII_KEY`` or the key file (created 0600 on first run)."""
    if pii_key:
        try:
            master = base64.b64decode(pii_key, validate=True)
        except ValueError:
            raise CdpError(
                "CDP_PII_KEY is not valid base64; generate one with "
                "`python -c 'import os,base64;print(base64.b64encode(os.urandom(32)).decode())'`"
            ) from None
        if len(master) != 32:
            raise CdpError(f"CDP_PII_KEY must decode to 32 bytes, it decodes to {len(master)}")
        return VaultKeys.from_master(master)
    path = keys_dir / KEY_FILE
    if not path.exists():
        keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(base64.b64encode(os.urandom(32)) + b"\n")
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise CdpError(f"PII key file {path} is readable by others (mode {mode:o}); chmod 600 it")
    try:
        master = base64.b64decode(path.read_bytes().strip(), validate=True)
    except ValueError:
        raise CdpError(f"PII key file {path} is not valid base64") from None
    return VaultKeys.from_master(master)


# ------------------------------------------------------------------ normalization (vectorised)


def normalize(values: pd.Series, pii_type: str) -> pd.Series:
    """Normalized values; empty or missing become NA."""
    s = values.astype("string").str.strip()
    if pii_type == "email":
        s = s.str.lower()
    elif pii_type == "phone":
        digits = s.str.replace(r"\D", "", regex=True)
        s = digits.mask(digits.str.len() == 10, "1" + digits)
        s = "+" + s
        s = s.mask(digits.str.len() < 7)
    elif pii_type in ("name", "address"):
        s = s.str.lower().str.replace(r"\s+", " ", regex=True)
    else:
        raise ValueError(f"unknown pii type {pii_type!r}; known: {', '.join(PII_TYPES)}")
    return s.mask(s == "")


def blind_index(keys: VaultKeys, pii_type: str, normalized: str) -> str:
    msg = f"{pii_type}:{normalized}".encode()
    return hmac.digest(keys.index, msg, "sha256").hex()  # one-shot HMAC, same bytes


# Names and addresses keep their written form in the vault ("Sarah", "12 Main St"): exports show
# what the customer typed. Emails and phones are stored normalized (lower-case, +<digits>).
DISPLAY_FORM_TYPES = ("name", "address")


_NON_DIGITS = re.compile(r"\D")
_SPACES = re.compile(r"\s+")


def normalize_one(value, pii_type: str) -> str | None:
    """``normalize`` for one value (the same Python string operations, without pandas)."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    s = (value if isinstance(value, str) else str(value)).strip()
    if pii_type == "email":
        s = s.lower()
    elif pii_type == "phone":
        digits = _NON_DIGITS.sub("", s)
        if len(digits) < 7:
            return None
        s = "+" + ("1" + digits if len(digits) == 10 else digits)
    elif pii_type in ("name", "address"):
        s = _SPACES.sub(" ", s.lower())
    else:
        raise ValueError(f"unknown pii type {pii_type!r}; known: {', '.join(PII_TYPES)}")
    return s or None


def index_codes(keys: VaultKeys, values: pd.Series, pii_type: str):
    """The work of ``index_series`` per distinct value: ``(codes, hashes, plain)`` where row i's
    blind index is ``hashes[codes[i]]`` (code -1: missing) and ``plain`` maps each hash to the
    plaintext to vault.

    Normalization and HMAC run once per distinct written value, memoized per key for the
    process (the same emails recur across tables, batches and re-runs), never per row."""
    codes, raw = pd.factorize(values, use_na_sentinel=True)  # raw: distinct, first-seen order
    memo = _memo(_INDEX_MEMO, keys.index)
    display = pii_type in DISPLAY_FORM_TYPES
    hashes: list[str | None] = []
    plain: dict[str, str] = {}
    for v in raw.tolist() if hasattr(raw, "tolist") else list(raw):
        # 5551234567 and "5551234567" (or 1 and True) are equal keys, not equal inputs
        key = (pii_type, v) if isinstance(v, str) else (pii_type, type(v).__name__, v)
        got = memo.get(key)
        if got is None:
            norm = normalize_one(v, pii_type)
            if norm is None:
                got = (None, None)
            else:
                text = v if isinstance(v, str) else str(v)
                shown = _SPACES.sub(" ", text.strip()) if display else norm
                got = (blind_index(keys, pii_type, norm), shown)
            memo[key] = got
        h, shown = got
        hashes.append(h)
        if h is not None and h not in plain:  # names: the first written form seen
            plain[h] = shown
    return codes, hashes, plain


def index_series(keys: VaultKeys, values: pd.Series, pii_type: str) -> tuple[pd.Series, dict]:
    """Blind indexes of a column, plus {hash: plaintext to vault} for each distinct value.

    The plaintext is the normalized value, or for names and addresses the first written form
    seen (trimmed). See ``index_codes``."""
    codes, hashes, plain = index_codes(keys, values, pii_type)
    per_code = np.array([*hashes, None], dtype=object)  # code -1 picks the trailing None
    return pd.Series(per_code[codes], index=values.index, dtype=object), plain


# Per-key memos, bounded, shared by the landing threads (dict operations are atomic; a race
# only computes a value twice). Keyed by the derived key itself so two keys never mix.
_INDEX_MEMO: dict[bytes, dict] = {}
_CIPHER_MEMO: dict[bytes, dict] = {}
_MEMO_MAX = 2_000_000


def _memo(store: dict[bytes, dict], key: bytes) -> dict:
    memo = store.setdefault(key, {})
    if len(memo) > _MEMO_MAX:
        memo.clear()
    return memo


def encrypt(keys: VaultKeys, pii_type: str, value_hash: str, plaintext: str) -> bytes:
    nonce = os.urandom(12)
    aad = f"{pii_type}:{value_hash}".encode()
    return nonce + AESGCM(keys.encryption).encrypt(nonce, plaintext.encode(), aad)


def decrypt(keys: VaultKeys, pii_type: str, value_hash: str, ciphertext: bytes) -> str:
    aad = f"{pii_type}:{value_hash}".encode()
    data = bytes(ciphertext)
    return AESGCM(keys.encryption).decrypt(data[:12], data[12:], aad).decode()


def encrypt_many(keys: VaultKeys, pii_type: str, values: dict[str, str]) -> pd.DataFrame:
    """Vault rows for {hash: plaintext}: columns pii_type, value_hash, ciphertext (hex), key_id.

    A value encrypted before in this process reuses its ciphertext (same plaintext, hash and
    nonce, so nothing new is revealed): the vault keeps one row per hash anyway."""
    aes = AESGCM(keys.encryption)
    memo = _memo(_CIPHER_MEMO, keys.encryption)
    blobs = []
    fresh = iter(())  # nonces, drawn in one call for the values not encrypted before
    for value_hash, plaintext in values.items():
        blob = memo.get((pii_type, value_hash, plaintext))
        if blob is None:
            nonce = next(fresh, None)
            if nonce is None:
                pool = os.urandom(12 * len(values))
                fresh = (pool[i : i + 12] for i in range(0, len(pool), 12))
                nonce = next(fresh)
            aad = f"{pii_type}:{value_hash}".encode()
            blob = "\\x" + (nonce + aes.encrypt(nonce, plaintext.encode(), aad)).hex()
            memo[(pii_type, value_hash, plaintext)] = blob
        blobs.append(blob)
    return pd.DataFrame(
        {
            "pii_type": pii_type,
            "value_hash": list(values),
            "ciphertext": blobs,
            "key_id": keys.key_id,
        },
        columns=["pii_type", "value_hash", "ciphertext", "key_id"],
    )
