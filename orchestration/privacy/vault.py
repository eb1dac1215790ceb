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
    return hmac.new(keys.index, msg, hashlib.sha256).hexdigest()


# Names and addresses keep their written form in the vault ("Sarah", "12 Main St"): exports show
# what the customer typed. Emails and phones are stored normalized (lower-case, +<digits>).
DISPLAY_FORM_TYPES = ("name", "address")


def index_series(keys: VaultKeys, values: pd.Series, pii_type: str) -> tuple[pd.Series, dict]:
    """Blind indexes of a column, plus {hash: plaintext to vault} for each distinct value.

    HMAC runs once per distinct normalized value, not per row. The plaintext is the normalized
    value, or for names and addresses the first written form seen (trimmed)."""
    norm = normalize(values, pii_type)
    uniques = norm.dropna().unique()
    hashes_ = {v: blind_index(keys, pii_type, v) for v in uniques}
    hashed = norm.map(hashes_)
    if pii_type in DISPLAY_FORM_TYPES:
        shown = values.astype("string").str.strip().str.replace(r"\s+", " ", regex=True)
        first = pd.DataFrame({"norm": norm, "shown": shown}).dropna().drop_duplicates("norm")
        plain = {hashes_[n]: v for n, v in zip(first["norm"], first["shown"], strict=True)}
    else:
        plain = {h: v for v, h in hashes_.items()}
    return hashed.astype(object).where(hashed.notna(), None), plain


def encrypt(keys: VaultKeys, pii_type: str, value_hash: str, plaintext: str) -> bytes:
    nonce = os.urandom(12)
    aad = f"{pii_type}:{value_hash}".encode()
    return nonce + AESGCM(keys.encryption).encrypt(nonce, plaintext.encode(), aad)


def decrypt(keys: VaultKeys, pii_type: str, value_hash: str, ciphertext: bytes) -> str:
    aad = f"{pii_type}:{value_hash}".encode()
    data = bytes(ciphertext)
    return AESGCM(keys.encryption).decrypt(data[:12], data[12:], aad).decode()


def encrypt_many(keys: VaultKeys, pii_type: str, values: dict[str, str]) -> pd.DataFrame:
    """Vault rows for {hash: plaintext}: columns pii_type, value_hash, ciphertext (hex), key_id."""
    aes = AESGCM(keys.encryption)
    n = len(values)
    nonces = np.frombuffer(os.urandom(12 * n), dtype=np.uint8).reshape(n, 12) if n else []
    rows = []
    for (value_hash, plaintext), nonce in zip(values.items(), nonces, strict=True):
        nonce_b = bytes(nonce)
        aad = f"{pii_type}:{value_hash}".encode()
        rows.append((value_hash, (nonce_b + aes.encrypt(nonce_b, plaintext.encode(), aad)).hex()))
    frame = pd.DataFrame(rows, columns=["value_hash", "ciphertext"])
    frame.insert(0, "pii_type", pii_type)
    frame["ciphertext"] = "\\x" + frame["ciphertext"]
    frame["key_id"] = keys.key_id
    return frame
