"""GA4 BigQuery-export records (NDJSON or Parquet, nested) as ``raw_ga4.events`` columns.

``pyarrow.json`` parses the newline-delimited JSON in C++ on every core; the nested fields are
picked with struct kernels, and ``event_params`` is written back to compact JSON text by string
kernels (JSON-escaping, per-parameter objects, one ``binary_join`` per event), so no event ever
becomes a Python object. Every raw column comes out as text, whatever the file typed it as: the
export writes INT64 values as JSON strings (``"event_timestamp": "1784790999000500"``) where other
tools write numbers, and the loader parses and validates text into the table's types either way.
Inside ``event_params`` values keep the JSON type they had in the file, and only the value fields
that are set are written, as the JSON export does.
"""

from __future__ import annotations

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

COLUMNS = (
    ("event_date", ("event_date",)),
    ("event_timestamp", ("event_timestamp",)),
    ("event_name", ("event_name",)),
    ("event_params", ("event_params",)),
    ("user_pseudo_id", ("user_pseudo_id",)),
    ("user_id", ("user_id",)),
    ("stream_id", ("stream_id",)),
    ("platform", ("platform",)),
    ("device_category", ("device", "category")),
    ("geo_country", ("geo", "country")),
    ("traffic_source_source", ("traffic_source", "source")),
    ("traffic_source_medium", ("traffic_source", "medium")),
    ("traffic_source_name", ("traffic_source", "name")),
    ("ecommerce_transaction_id", ("ecommerce", "transaction_id")),
    ("ecommerce_purchase_revenue", ("ecommerce", "purchase_revenue")),
)
SCHEMA = pa.schema([(name, pa.string()) for name, _ in COLUMNS])
_READ = pajson.ReadOptions(use_threads=True, block_size=8 << 20)
_PARSE = pajson.ParseOptions(newlines_in_values=False)


class Unsupported(ValueError):
    """A record shape the Arrow path does not handle (the caller falls back to orjson)."""


def parse_ndjson(data: bytes) -> pa.Table:
    """Newline-delimited JSON to an Arrow table (types inferred); ``pa.ArrowInvalid`` on a
    malformed line or a field whose JSON type changes between records."""
    return pajson.read_json(pa.py_buffer(data), read_options=_READ, parse_options=_PARSE)


def to_raw(table: pa.Table) -> pa.Table:
    """Export records (nested, as parsed or read from Parquet) as the raw table's columns, one
    record batch at a time (no copy to combine the parser's blocks)."""
    batches = [_raw_batch(b) for b in table.to_batches() if b.num_rows]
    return pa.Table.from_batches(batches, schema=SCHEMA)


def _raw_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    out = []
    for name, path in COLUMNS:
        col = _field(batch, path)
        if col is None:
            out.append(pa.nulls(batch.num_rows, pa.string()))
        elif name == "event_params":
            out.append(params_json(col))
        else:
            out.append(_text(col, name))
    return pa.RecordBatch.from_arrays(out, schema=SCHEMA)


def _field(batch: pa.RecordBatch, path: tuple[str, ...]) -> pa.Array | None:
    if path[0] not in batch.schema.names:
        return None
    col = batch.column(path[0])
    for sub in path[1:]:
        if not pa.types.is_struct(col.type) or col.type.get_field_index(sub) < 0:
            return None
        col = pc.struct_field(col, sub)
    return col


def _text(col: pa.Array, name: str) -> pa.Array:
    """A scalar field as text: strings unchanged, numbers in their JSON spelling."""
    t = col.type
    if pa.types.is_string(t) or pa.types.is_null(t):
        return col.cast(pa.string())
    if pa.types.is_large_string(t) or pa.types.is_integer(t) or pa.types.is_boolean(t):
        return pc.cast(col, pa.string())
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return _float_text(pc.cast(col, pa.float64()))
    raise Unsupported(f"field {name} has type {t}, not a scalar")


def _float_text(col: pa.Array) -> pa.Array:
    """Doubles as Python and orjson write them (1.0, not Arrow's 1)."""
    text = pc.cast(col, pa.string())
    bare = pc.invert(pc.match_substring_regex(text, r"[.eEni]"))
    return pc.if_else(pc.fill_null(bare, False), pc.binary_join_element_wise(text, ".0", ""), text)


def _escaped(col: pa.Array) -> pa.Array:
    """Text escaped for the inside of a JSON string literal (NULL stays NULL)."""
    col = col.cast(pa.string()) if not pa.types.is_string(col.type) else col
    special = pc.match_substring_regex(col, '["\\\\\\x00-\\x1f]')
    if not pc.any(special).as_py():  # the usual case: nothing to escape
        return col
    if not pc.any(pc.match_substring_regex(col, "[\\x00-\\x1f]")).as_py():
        return pc.replace_substring(pc.replace_substring(col, "\\", "\\\\"), '"', '\\"')
    # control characters (rare): escaped by orjson, value by value
    fixed = [None if v is None else orjson.dumps(v).decode()[1:-1] for v in col.to_pylist()]
    return pa.array(fixed, type=pa.string())


def json_string(col: pa.Array) -> pa.Array:
    """Text as JSON string literals (NULL stays NULL)."""
    return pc.binary_join_element_wise('"', _escaped(col), '"', "", null_handling="emit_null")


def _member(name: str, col: pa.Array) -> pa.Array:
    """``"name":value`` per row, NULL where the value is NULL (so it can be left out)."""
    t = col.type
    label = orjson.dumps(name).decode() + ":"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return pc.binary_join_element_wise(
            label + '"', _escaped(col), '"', "", null_handling="emit_null"
        )
    if pa.types.is_boolean(t):
        text = pc.if_else(col, "true", "false")
    elif pa.types.is_integer(t):
        text = pc.cast(col, pa.string())
    elif pa.types.is_floating(t) or pa.types.is_decimal(t):
        text = _float_text(pc.cast(col, pa.float64()))
    elif pa.types.is_null(t):
        return pa.nulls(len(col), pa.string())
    else:
        raise Unsupported(f"event_params value of type {t}")
    return pc.binary_join_element_wise(label, text, "", null_handling="emit_null")


def params_json(params: pa.Array) -> pa.Array:
    """``event_params`` (list of {key, value: {string_value | int_value | ...}}) as compact JSON
    text per event: ``[{"key":"k","value":{"int_value":1}},...]``."""
    if pa.types.is_null(params.type):
        return pa.nulls(len(params), pa.string())
    if not pa.types.is_list(params.type) or not pa.types.is_struct(params.type.value_type):
        raise Unsupported(f"event_params has type {params.type}")
    items = params.values
    kinds = items.type
    n = len(items)
    if kinds.get_field_index("key") >= 0:
        key = pc.struct_field(items, "key")
        key = pc.binary_join_element_wise('"', _escaped(key), '"', "", null_handling="emit_null")
        key = pc.fill_null(key, "null") if key.null_count else key
    else:
        key = "null"
    if kinds.get_field_index("value") >= 0 and pa.types.is_struct(kinds.field("value").type):
        value = pc.struct_field(items, "value")
        members = [_member(f.name, pc.struct_field(value, f.name)) for f in value.type]
        set_per_row = sum(
            (m.is_valid().to_numpy(zero_copy_only=False).astype(np.int8) for m in members),
            np.zeros(n, dtype=np.int8),
        )
        if not members:
            inner = pa.array([""] * n, pa.string())
        elif set_per_row.max(initial=0) <= 1:  # GA4: one value field per parameter
            inner = pc.fill_null(pc.coalesce(*members), "")
        else:  # Parquet-like rows with several set: all of them, in field order
            inner = pc.binary_join_element_wise(*members, ",", null_handling="skip")
            inner = pc.fill_null(inner, "")
        body = pc.binary_join_element_wise('{"key":', key, ',"value":{', inner, "}}", "")
        if value.null_count:
            null_value = pc.binary_join_element_wise('{"key":', key, ',"value":null}', "")
            body = pc.if_else(value.is_valid(), body, null_value)
    else:
        body = pc.binary_join_element_wise('{"key":', key, ',"value":null}', "")
    if items.null_count:
        body = pc.if_else(items.is_valid(), body, "null")
    lists = pa.ListArray.from_arrays(params.offsets, body, mask=params.is_null())
    joined = pc.binary_join(lists, ",")
    return pc.binary_join_element_wise("[", joined, "]", "", null_handling="emit_null")


def _as_text(v):
    return None if v is None else v if isinstance(v, str) else str(v)


def read_json_rows(data: bytes) -> dict[str, list]:
    """The fallback reader, one record at a time with orjson: for the files ``pyarrow.json``
    refuses (a field whose JSON type changes between records, a malformed line: this one then
    raises ``orjson.JSONDecodeError``, which names the problem)."""
    cols: dict[str, list] = {name: [] for name in SCHEMA.names}
    out = list(cols.values())
    loads, dumps = orjson.loads, orjson.dumps
    for line in data.splitlines():
        if not line.strip():
            continue
        r = loads(line)
        device = r.get("device") or {}
        geo = r.get("geo") or {}
        ts = r.get("traffic_source") or {}
        ec = r.get("ecommerce") or {}
        params = r.get("event_params")
        values = (
            r.get("event_date"),
            r.get("event_timestamp"),
            r.get("event_name"),
            None if params is None else dumps(params).decode(),
            r.get("user_pseudo_id"),
            r.get("user_id"),
            r.get("stream_id"),
            r.get("platform"),
            device.get("category"),
            geo.get("country"),
            ts.get("source"),
            ts.get("medium"),
            ts.get("name"),
            ec.get("transaction_id"),
            ec.get("purchase_revenue"),
        )
        for column, value in zip(out, values, strict=True):
            column.append(_as_text(value))
    return cols
