"""Deterministic identifiers: Shopify-like bigint sequences, ULID-like strings, GA4 pseudo ids."""

from __future__ import annotations

import numpy as np

# every sequential id family of shard k starts k strides after shard 0's: a shard (scale <= 2)
# spans well under 10**9 ids in every family (orders, the widest: ~130,000 ids x 20,000 mean gap)
SHARD_ID_STRIDE = 10**10


def shard_base(base: int, shard: int) -> int:
    """The first id of a family in ``shard`` (shard 0: ``base``, the unsharded ids)."""
    return base + shard * SHARD_ID_STRIDE


_CROCKFORD = np.frombuffer(b"0123456789ABCDEFGHJKMNPQRSTVWXYZ", dtype=np.uint8)
_ALNUM = np.frombuffer(b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789", dtype=np.uint8)


def _chars_to_str(codes: np.ndarray) -> np.ndarray:
    """(n, k) uint8 ASCII -> object array of str."""
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    k = codes.shape[1]
    return codes.view(f"S{k}").ravel().astype(f"U{k}").astype(object)


def ulid_parts(secs: np.ndarray, rng: np.random.Generator):
    """(milliseconds, 40 random bits, 40 random bits) of ULID-like ids (see ``encode_ulid``)."""
    secs = np.asarray(secs, dtype=np.int64)
    n = len(secs)
    ms = secs * 1000 + rng.integers(0, 1000, size=n)
    return ms, rng.integers(0, 1 << 40, size=n), rng.integers(0, 1 << 40, size=n)


def _ulid_codes(ms, r1, r2) -> np.ndarray:
    ms, r1, r2 = (np.asarray(x, dtype=np.int64) for x in (ms, r1, r2))
    codes = np.empty((len(ms), 26), dtype=np.uint8)
    for i in range(10):
        codes[:, i] = _CROCKFORD[(ms >> (5 * (9 - i))) & 31]
    for i in range(8):
        codes[:, 10 + i] = _CROCKFORD[(r1 >> (5 * (7 - i))) & 31]
        codes[:, 18 + i] = _CROCKFORD[(r2 >> (5 * (7 - i))) & 31]
    return codes


def encode_ulid(ms: np.ndarray, r1: np.ndarray, r2: np.ndarray) -> np.ndarray:
    """26-char uppercase ULID-like ids: 48-bit millisecond time + 80 random bits (Crockford)."""
    return _chars_to_str(_ulid_codes(ms, r1, r2))


def encode_ulid_arrow(ms, r1, r2):
    """``encode_ulid`` as an Arrow string array (the ASCII bytes reused, no Python str)."""
    import pyarrow as pa

    codes = np.ascontiguousarray(_ulid_codes(ms, r1, r2))
    fixed = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(26), len(codes), [None, pa.py_buffer(codes)]
    )
    return fixed.cast(pa.binary()).cast(pa.string())


def ulids(secs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return encode_ulid(*ulid_parts(secs, rng))


def short_ids(n: int, rng: np.random.Generator, k: int = 6) -> np.ndarray:
    """Klaviyo-style short alphanumeric ids (metrics, flows)."""
    return _chars_to_str(_ALNUM[rng.integers(0, len(_ALNUM), size=(n, k))])


def sequential_ids(
    secs: np.ndarray, base: int, rng: np.random.Generator, max_gap: int = 1
) -> np.ndarray:
    """Bigint ids increasing with creation time (ties broken by position), random gaps."""
    secs = np.asarray(secs, dtype=np.int64)
    order = np.lexsort((np.arange(len(secs)), secs))
    gaps = rng.integers(1, max_gap + 1, size=len(secs)) if max_gap > 1 else np.ones(len(secs))
    ids = np.empty(len(secs), dtype=np.int64)
    ids[order] = base + np.cumsum(gaps).astype(np.int64)
    return ids


def rank_by_time(secs: np.ndarray) -> np.ndarray:
    """0-based rank of each element by time (ties by position)."""
    order = np.lexsort((np.arange(len(secs)), np.asarray(secs)))
    rank = np.empty(len(secs), dtype=np.int64)
    rank[order] = np.arange(len(secs))
    return rank
