"""PostgreSQL binary COPY payloads built from Arrow columns, with no Python loop per row.

Binary COPY (PostgreSQL docs, "COPY — Binary Format"): a fixed header, then per row an int16
field count and per field an int32 byte length (-1 for NULL) followed by the value in its type's
send/recv format, then an int16 -1 trailer. The server still checks every value with the column
type's receive function (``json`` is validated, ``text`` must be valid UTF-8 without NUL), but it
skips the CSV line and field parsing that dominated text COPY, and so does the client: the
fields are big-endian numpy views and Arrow string buffers, and one ``binary_join_element_wise``
kernel interleaves them into rows. Arrow kernels and ``numpy`` release the GIL, so another thread
can prepare or send a batch meanwhile.

Columns arrive already typed (``encode_rows`` documents what each PostgreSQL type expects); the
loader's validation does the typing and rejects what does not fit, so nothing here can fail on a
value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
TRAILER = b"\xff\xff"
PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01T00:00:00Z in Unix microseconds
NUMERIC = re.compile(r"numeric\((\d+),\s*(\d+)\)")
_FIXED = {
    "bigint": ">i8",
    "integer": ">i4",
    "smallint": ">i2",
    "double precision": ">f8",
    "timestamptz": ">i8",
    "timestamp with time zone": ">i8",
    "boolean": "u1",
}
_TEXT = ("text", "json", "jsonb")


def numeric_layout(pgtype: str) -> tuple[int, int]:
    """(precision, scale) of ``numeric(p,s)``; only what fits int64 arithmetic is supported."""
    m = NUMERIC.fullmatch(pgtype.strip())
    if not m:
        raise ValueError(f"binary COPY supports numeric(p,s) only, not {pgtype!r}")
    p, s = int(m[1]), int(m[2])
    if p - s + 4 * -(-s // 4) > 18:
        raise ValueError(f"{pgtype} is too wide for the binary encoder (at most 18 digits)")
    return p, s


def supports(pgtype: str) -> bool:
    if pgtype in _FIXED or pgtype in _TEXT:
        return True
    try:
        numeric_layout(pgtype)
    except ValueError:
        return False
    return True


def copy_order(pgtypes: Sequence[str]) -> list[int]:
    """Column positions in the order ``encode_rows`` packs best: fixed-width types first (they
    share one piece per row), text types last (two pieces each). COPY takes any column order."""
    return sorted(range(len(pgtypes)), key=lambda i: pgtypes[i] in _TEXT)


def encode_rows(columns: Sequence[tuple[pa.Array, str]]) -> list:
    """The binary COPY payload of equal-length columns, as buffers to write in order.

    Each column is ``(array, postgres type)``; nulls become NULL. Expected arrays:
    ``text``/``json``/``jsonb``: string (valid UTF-8, no NUL); ``bigint``/``integer``/
    ``smallint``: integers in range; ``double precision``: float64; ``boolean``: bool;
    ``timestamptz``: int64 microseconds since the Unix epoch (UTC) or an Arrow timestamp;
    ``numeric(p,s)``: int64 units of 10^-s (123.45 in numeric(12,2) is 12345), |units| < 10^p.
    Any order works; ``copy_order`` gives the cheapest."""
    n = len(columns[0][0]) if columns else 0
    if n == 0:
        return [HEADER + TRAILER]
    head = np.empty(n, dtype=">i2")
    head[:] = len(columns)
    pieces: list[pa.Array] = []
    run: list[tuple[np.ndarray, np.ndarray | None]] = [(head, None)]  # fixed fields, row piece
    for array, pgtype in columns:
        array = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
        if pgtype in _TEXT:
            lengths, values = _text(array, jsonb=pgtype == "jsonb")
            # the text's length field rides in the fixed run before it, saving a piece
            run.append((lengths, None))
            pieces.append(_fixed_run(run, n))
            pieces.append(values)
            run = []
            continue
        values = _fixed_values(array, pgtype)
        valid = None if array.null_count == 0 else array.is_valid().to_numpy(zero_copy_only=False)
        size = values.dtype.itemsize
        lengths = np.full(n, size, dtype=">i4")
        if valid is not None:
            lengths[~valid] = -1
        run += [(lengths, None), (values, valid)]
    if run:
        pieces.append(_fixed_run(run, n))
    if len(pieces) == 1:
        rows = pieces[0]
    else:
        # no input is null (a NULL field is a -1 length and no value bytes), so "emit_null",
        # the kernel's fast path, is exact here
        rows = pc.binary_join_element_wise(*pieces, b"", null_handling="emit_null")
    offsets = np.frombuffer(
        rows.buffers()[1], dtype=np.int32, count=len(rows) + 1, offset=4 * rows.offset
    )
    body = memoryview(rows.buffers()[2])[offsets[0] : offsets[-1]]
    return [HEADER, body, TRAILER]


def _fixed_run(fields: list[tuple[np.ndarray, np.ndarray | None]], n: int) -> pa.Array:
    """Consecutive fixed-width fields as one binary value per row. A field with a validity mask
    drops its bytes where the value is NULL (its length field already says -1)."""
    spec = [(f"f{i}", values.dtype) for i, (values, _) in enumerate(fields)]
    rec = np.empty(n, dtype=spec)
    for i, (values, _) in enumerate(fields):
        rec[f"f{i}"] = values
    matrix = rec.view(np.uint8).reshape(n, rec.dtype.itemsize)
    if all(valid is None or valid.all() for _, valid in fields):
        return _fsb(matrix)
    keep = np.ones(matrix.shape, dtype=bool)
    for i, (_, valid) in enumerate(fields):
        if valid is not None:
            start = rec.dtype.fields[f"f{i}"][1]
            keep[:, start : start + fields[i][0].dtype.itemsize] = valid[:, None]
    data = matrix[keep]  # row-major: each row's kept bytes, rows in order
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(keep.sum(axis=1, dtype=np.int32), out=offsets[1:])
    return pa.BinaryArray.from_buffers(
        pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def _fsb(matrix: np.ndarray) -> pa.Array:
    """An (n, w) uint8 matrix as a binary array of n w-byte values (zero-copy, then offsets)."""
    matrix = np.ascontiguousarray(matrix)
    n, w = matrix.shape
    fsb = pa.FixedSizeBinaryArray.from_buffers(pa.binary(w), n, [None, pa.py_buffer(matrix)])
    return fsb.cast(pa.binary())


def _text(array: pa.Array, *, jsonb: bool) -> tuple[np.ndarray, pa.Array]:
    """(int32 big-endian lengths, -1 for NULL; the values, NULL as empty)."""
    if not pa.types.is_binary(array.type):
        array = array.cast(pa.binary())  # zero-copy from string; large types must fit 2 GiB
    if jsonb:  # jsonb's binary form is a version byte, then the text
        empty, one = pa.scalar(b"", pa.binary()), pa.scalar(b"\x01", pa.binary())
        array = pc.binary_join_element_wise(
            pc.if_else(array.is_valid(), one, empty), array, b"", null_handling="emit_null"
        )
    lengths = pc.fill_null(pc.binary_length(array), -1).to_numpy().astype(">i4")
    return lengths, pc.fill_null(array, b"") if array.null_count else array


def _fixed_values(array: pa.Array, pgtype: str) -> np.ndarray:
    """Big-endian values (NULL slots hold zeros) in the type's binary send format."""
    if pgtype.startswith("numeric"):
        return _numeric(array, *numeric_layout(pgtype))
    dtype = _FIXED[pgtype]
    if pgtype.startswith("timestamp"):
        if pa.types.is_timestamp(array.type):
            unit = pa.timestamp("us", tz=array.type.tz)
            array = pc.cast(array, unit, safe=False).cast(pa.int64())
        micros = _filled(array, 0).astype(np.int64)
        return (micros - PG_EPOCH_US).astype(dtype)
    if pgtype == "boolean":
        return _filled(array, False).astype(dtype)
    return _filled(array, 0).astype(dtype)


def _filled(array: pa.Array, fill) -> np.ndarray:
    if array.null_count:
        array = pc.fill_null(array, fill)
    return array.to_numpy(zero_copy_only=False)


def _numeric(array: pa.Array, precision: int, scale: int) -> np.ndarray:
    """numeric's binary form with a fixed number of base-10000 digits per value: ndigits,
    weight, sign, dscale, digits (the server strips leading and trailing zero digits)."""
    units = _filled(array, 0).astype(np.int64)
    frac_groups = -(-scale // 4)
    int_groups = max(1, -(-(precision - scale) // 4))
    ndigits = int_groups + frac_groups
    magnitude = np.abs(units) * 10 ** (4 * frac_groups - scale)
    rec = np.empty(
        len(units),
        dtype=[("nd", ">i2"), ("w", ">i2"), ("s", ">u2"), ("ds", ">i2"), ("d", ">i2", (ndigits,))],
    )
    rec["nd"] = ndigits
    rec["w"] = int_groups - 1
    rec["s"] = np.where(units < 0, 0x4000, 0)
    rec["ds"] = scale
    for k in range(ndigits):
        rec["d"][:, k] = (magnitude // 10_000 ** (ndigits - 1 - k)) % 10_000
    return rec.view(np.dtype((np.void, rec.dtype.itemsize)))
