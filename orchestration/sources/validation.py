"""Typing and validation of a producer's columns for landing: each raw column becomes an Arrow
array of what its PostgreSQL type's binary COPY form needs (see ``runtime.pgbinary``), and each
row that cannot land gets the reasons why.

Columns that already have the right type — what the generator and the connectors hand over,
pandas or Arrow — are checked with vectorised Arrow/numpy operations and never touched per value;
only text in a typed column is parsed (with pandas, as before), which is the rare path. Bad values
become NULL in the typed array and their row is rejected, so nothing the server could refuse is
ever sent, except JSON syntax: PostgreSQL validates ``json`` itself during COPY, and only when it
refuses a batch is every JSON value checked here (``strict_json``) to find the bad rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from orchestration.runtime.pgbinary import numeric_layout

_BOOL = {
    "true": True,
    "t": True,
    "1": True,
    "yes": True,
    "false": False,
    "f": False,
    "0": False,
    "no": False,
}
_INT_RANGE = {"bigint": 2**63, "integer": 2**31, "smallint": 2**15}


@dataclass
class Checked:
    """One column after validation: the typed array (NULL where the value is bad) and the rows
    whose value is bad, with what is wrong with them."""

    typed: pa.Array
    bad: np.ndarray | None = None  # bool per row
    what: str = ""


def column_values(frame, name: str):
    """A column of a pandas DataFrame (a Series) or of a pyarrow Table (an Array)."""
    if isinstance(frame, pa.Table):
        col = frame.column(name)
        return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return frame[name]


def to_arrow(values) -> pa.Array | None:
    """The Arrow array of a typed column without touching its values one by one, or None for
    pandas object (or other Python-object) columns, which need per-value handling."""
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    if values.dtype == object:
        return None
    arr = pa.array(values, from_pandas=True)  # zero-copy or vectorised for every pandas dtype
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def check(values, pgtype: str, *, strict_json: bool = False) -> Checked:
    """Type one column for ``pgtype``; see the module docstring."""
    arr = to_arrow(values)
    if pgtype in ("text", "json", "jsonb"):
        return _text(values, arr, json=pgtype != "text", strict_json=strict_json)
    if pgtype in _INT_RANGE:
        return _integer(values, arr, pgtype)
    if pgtype.startswith("numeric"):
        return _numeric(values, arr, pgtype)
    if pgtype in ("timestamptz", "timestamp with time zone"):
        return _timestamp(values, arr)
    if pgtype == "boolean":
        return _boolean(values, arr)
    raise ValueError(f"the loader cannot land PostgreSQL type {pgtype!r}")


def shown(values, rows: np.ndarray) -> list[str]:
    """The offending input values of ``rows`` as the rejection reason quotes them."""
    if isinstance(values, pa.Array | pa.ChunkedArray):
        picked = values.take(pa.array(rows)).to_pylist()
    else:
        picked = values.iloc[rows].tolist()
    # a NUL cannot be stored in the reason (text): it is shown escaped
    return [
        "" if v is None or v is pd.NA or v != v else str(v)[:60].replace("\x00", "\\x00")
        for v in picked
    ]


def string_bytes(arr: pa.Array) -> np.ndarray:
    """The UTF-8 bytes of a string array's values (zero-copy, only this slice's)."""
    offsets = string_offsets(arr)
    data = arr.buffers()[2]
    if data is None or len(offsets) < 2:
        return np.zeros(0, dtype=np.uint8)
    return np.frombuffer(data, dtype=np.uint8)[offsets[0] : offsets[-1]]


def string_offsets(arr: pa.Array) -> np.ndarray:
    width = 8 if pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type) else 4
    return np.frombuffer(
        arr.buffers()[1],
        dtype=np.int64 if width == 8 else np.int32,
        count=len(arr) + 1,
        offset=width * arr.offset,
    )


# ------------------------------------------------------------------------------ per type


def _text(values, arr, *, json: bool, strict_json: bool) -> Checked:
    if arr is None:
        arr = _text_from_objects(values, json=json)
    elif not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = pc.cast(arr, pa.string())
    bad = None
    what = "contains a NUL character, which PostgreSQL text cannot hold"
    # JSON is scanned only in strict mode: the server refuses a NUL there too, and the loader
    # then retries strictly, so the common case skips reading the biggest columns twice
    data = string_bytes(arr) if not json or strict_json else np.zeros(0, np.uint8)
    if len(data) and data.min() == 0:
        # a zero byte somewhere (maybe in a NULL slot): find the rows
        bad = pc.fill_null(pc.match_substring(arr, "\x00"), False).to_numpy(zero_copy_only=False)
        bad = bad if bad.any() else None
    if json and strict_json:
        invalid = _json_invalid(arr)
        if invalid.any():
            bad, what = invalid | (bad if bad is not None else False), "is not valid JSON"
    if bad is not None:
        arr = pc.if_else(pa.array(bad), pa.scalar(None, arr.type), arr)
    return Checked(arr, bad, what)


def _text_from_objects(values: pd.Series, *, json: bool) -> pa.Array:
    try:
        return pa.array(values.to_numpy(), type=pa.string(), from_pandas=True)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        pass  # not all str: dicts/lists for JSON columns, numbers in text columns

    def text(v):
        if v is None or v is pd.NA or (isinstance(v, float) and v != v):
            return None
        if json and isinstance(v, dict | list):
            return orjson.dumps(v).decode()
        return v if isinstance(v, str) else str(v)

    return pa.array([text(v) for v in values.tolist()], type=pa.string())


def _json_invalid(arr: pa.Array) -> np.ndarray:
    """True where a value is neither null nor valid JSON text (one orjson parse per value)."""
    loads, err = orjson.loads, orjson.JSONDecodeError
    out = np.zeros(len(arr), dtype=bool)
    for i, v in enumerate(arr.to_pylist()):
        if v is None:
            continue
        try:
            loads(v)
        except err:
            out[i] = True
    return out


def _parsed_numbers(values) -> tuple[pa.Array, np.ndarray]:
    """Text (or mixed) values as float64; the rows that were present but not numbers."""
    series = values.to_pandas() if isinstance(values, pa.Array) else values
    num = pd.to_numeric(series, errors="coerce")
    num = pd.Series(num, dtype="float64")
    bad = (_present(series) & num.isna()).to_numpy()
    return pa.array(num.to_numpy(), from_pandas=True), bad


def _present(series: pd.Series) -> pd.Series:
    """Non-null and, for text, non-empty."""
    present = series.notna()
    if series.dtype == object or isinstance(series.dtype, pd.StringDtype | pd.ArrowDtype):
        present &= series.astype("string").str.len().fillna(0) > 0
    return present


def _cast_text(arr, target: pa.DataType):
    """Text that is all clean numbers, cast in C++ (the export files' INT64-as-string); None
    when any value needs the forgiving parser (spaces, "1.0", "", junk)."""
    if arr is not None and (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        try:
            return pc.cast(arr, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
    return None


def _integer(values, arr, pgtype: str) -> Checked:
    bad = np.zeros(len(values), dtype=bool)
    cast = _cast_text(arr, pa.int64())
    arr = arr if cast is None else cast
    if arr is None or not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
        if arr is not None and pa.types.is_boolean(arr.type):
            arr = pc.cast(arr, pa.int64())
        else:
            arr, bad = _parsed_numbers(values if arr is None else arr)
    limit = _INT_RANGE[pgtype]
    target = {"bigint": pa.int64(), "integer": pa.int32(), "smallint": pa.int16()}[pgtype]
    if pa.types.is_floating(arr.type):
        v = arr.to_numpy(zero_copy_only=False)
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(v) & (np.floor(v) == v) & (v >= -limit) & (v < limit)
        bad |= ~ok & ~np.isnan(v)
        ints = np.where(ok, v, 0).astype(np.int64)
        typed = pa.array(ints, mask=~ok, type=pa.int64())
    else:
        typed = arr
        if arr.type.bit_width > target.bit_width or pa.types.is_unsigned_integer(arr.type):
            v = arr.to_numpy(zero_copy_only=False) if not arr.null_count else None
            if v is None:
                v = pc.fill_null(arr, 0).to_numpy()
            over = (v >= limit) | (v < -limit) if v.dtype.kind == "i" else v >= limit
            if over.any():
                bad |= over
                typed = pc.if_else(pa.array(over), pa.scalar(None, arr.type), arr)
    typed = pc.cast(typed, target, safe=False)
    return Checked(typed, bad if bad.any() else None, f"is not a valid {pgtype}")


def _numeric(values, arr, pgtype: str) -> Checked:
    precision, scale = numeric_layout(pgtype)
    bad = np.zeros(len(values), dtype=bool)
    if arr is not None and pa.types.is_decimal(arr.type):
        arr = pc.cast(arr, pa.float64())
    cast = _cast_text(arr, pa.float64())
    arr = arr if cast is None else cast
    if arr is None or not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
        arr, bad = _parsed_numbers(values if arr is None else arr)
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    v = pc.fill_null(arr, 0).to_numpy() if arr.null_count else arr.to_numpy()
    if v.dtype.kind in "iu":
        ok = np.abs(v) < 10 ** (precision - scale)
        units = np.where(ok, v, 0).astype(np.int64) * 10**scale
    else:
        units, ok = _round_units(v.astype(np.float64), scale)
        ok &= np.abs(units) < 10**precision
    bad |= valid & ~ok
    good = valid & ok
    typed = pa.array(np.where(good, units, 0), mask=~good, type=pa.int64())
    return Checked(typed, bad if bad.any() else None, f"is not a valid {pgtype}")


def _round_units(v: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """Floats as int64 units of 10^-scale, rounded half away from zero like PostgreSQL rounds the
    float's shortest decimal text (the value a text COPY would have sent)."""
    ok = np.isfinite(v) & (np.abs(v) < 9e15 / 10**scale)
    scaled = np.where(ok, v, 0) * 10**scale
    units = np.trunc(scaled + np.copysign(0.5, scaled))
    # when the float is close to a half unit, scaling may have drifted across it: decide those
    # few from the decimal text itself
    near = ok & (np.abs(np.abs(scaled - np.trunc(scaled)) - 0.5) < 1e-6)
    if near.any():
        from decimal import ROUND_HALF_UP, Decimal

        exp = Decimal(1).scaleb(-scale)
        for i in np.flatnonzero(near):
            d = Decimal(repr(float(v[i]))).quantize(exp, rounding=ROUND_HALF_UP)
            units[i] = int(d.scaleb(scale))
    return units.astype(np.int64), ok


def _timestamp(values, arr) -> Checked:
    bad = None
    if arr is not None and pa.types.is_date(arr.type):
        arr = pc.cast(arr, pa.timestamp("s"))
    if arr is None or not pa.types.is_timestamp(arr.type):
        series = values.to_pandas() if isinstance(values, pa.Array) else values
        ts = pd.to_datetime(series, utc=True, errors="coerce", format="ISO8601")
        bad = (_present(series) & ts.isna()).to_numpy()
        arr = pa.array(ts)
    # to microseconds, rounding what is finer (text COPY rounds fractional seconds too)
    unit = arr.type.unit
    raw = pc.cast(arr, pa.int64())
    ints = pc.fill_null(raw, 0).to_numpy() if raw.null_count else raw.to_numpy()
    if unit == "ns":
        ints = (ints + 500) // 1000
    elif unit != "us":
        ints = ints * {"s": 1_000_000, "ms": 1_000}[unit]
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    typed = pa.array(ints, mask=~valid, type=pa.int64())
    return Checked(typed, bad if bad is not None and bad.any() else None, "is not a timestamp")


def _boolean(values, arr) -> Checked:
    if arr is not None and pa.types.is_boolean(arr.type):
        return Checked(arr)
    series = values.to_pandas() if isinstance(values, pa.Array) else values
    mapped = series.map(lambda v: _BOOL.get(str(v).strip().lower()) if pd.notna(v) else None)
    bad = (_present(series) & mapped.isna()).to_numpy()
    typed = pa.array(mapped.where(~bad, None).tolist(), type=pa.bool_())
    return Checked(typed, bad if bad.any() else None, "is not a boolean")
