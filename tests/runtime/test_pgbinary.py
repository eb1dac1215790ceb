"""Binary COPY payloads from Arrow columns, loaded into a real PostgreSQL and read back."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest

from orchestration.runtime import db, pgbinary

COLUMNS = {
    "a": "bigint",
    "b": "text",
    "c": "numeric(12,2)",
    "d": "timestamptz",
    "e": "boolean",
    "f": "integer",
    "g": "json",
    "h": "jsonb",
    "i": "double precision",
    "j": "smallint",
}


def load(url, columns: dict[str, tuple[pa.Array, str]], order=None):
    names = list(columns) if order is None else order
    with db.connect(url) as conn:
        ddl = ", ".join(f"{n} {t}" for n, (_, t) in columns.items())
        conn.execute(f"create table t ({ddl})")
        payload = pgbinary.encode_rows([columns[n] for n in names])
        db.copy_binary(conn, "t", names, payload)
        rows = conn.execute(f"select {', '.join(columns)} from t").fetchall()
        conn.rollback()
    return rows


def test_every_type_round_trips_with_nulls_and_empty_strings(fresh_db):
    cols = {
        "a": (pa.array([1, None, -5, 2**62]), "bigint"),
        "b": (pa.array(["x", "", None, 'héllo ✓ 😀 "q" \\ \t\n,']), "text"),
        "c": (pa.array([0, 1, -12345, 999_999_999_999]), "numeric(12,2)"),
        "d": (pa.array([0, None, 1_700_000_000_123_456, -1_000_000]), "timestamptz"),
        "e": (pa.array([True, False, None, True]), "boolean"),
        "f": (pa.array([1, 2, None, -(2**31)], pa.int32()), "integer"),
        "g": (pa.array(['{"a": [1, 2.5]}', None, "[]", '"\\u00e9"']), "json"),
        "h": (pa.array(['{"a":1}', None, "[]", '"s"']), "jsonb"),
        "i": (pa.array([1.5, None, -0.0, 1e300]), "double precision"),
        "j": (pa.array([7, None, -(2**15), 2**15 - 1], pa.int16()), "smallint"),
    }
    rows = load(fresh_db, cols)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert rows[0] == (
        1,
        "x",
        Decimal("0.00"),
        epoch,
        True,
        1,
        {"a": [1, 2.5]},
        {"a": 1},
        1.5,
        7,
    )
    assert rows[1] == (None, "", Decimal("0.01"), None, False, 2, None, None, None, None)
    assert rows[2][1] is None and rows[2][2] == Decimal("-123.45") and rows[2][5] is None
    assert rows[2][3] == datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=UTC)
    assert rows[3][1] == 'héllo ✓ 😀 "q" \\ \t\n,' and rows[3][2] == Decimal("9999999999.99")
    assert rows[3][3] == datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert rows[3][6] == "é" and rows[3][9] == 2**15 - 1


@pytest.mark.parametrize("pgtype", ["numeric(12,2)", "numeric(6,0)", "numeric(10,5)"])
def test_numeric_edge_values(fresh_db, pgtype):
    p, s = pgbinary.numeric_layout(pgtype)
    top = 10**p - 1
    units = [0, 1, -1, 99, 100, 9999, 10_000, 10_001, 123_456_789 % top, top, -top, 10 ** (p - 1)]
    rows = load(fresh_db, {"v": (pa.array(units), pgtype)})
    assert [r[0] for r in rows] == [Decimal(u).scaleb(-s) for u in units]


def test_timestamps_from_arrow_timestamps_any_unit_or_zone(fresh_db):
    moment = datetime(2025, 3, 30, 1, 30, 5, 250_000, tzinfo=UTC)
    micros = int(moment.timestamp() * 1_000_000)
    cols = {
        "us": (pa.array([micros], pa.timestamp("us", tz="UTC")), "timestamptz"),
        "ns": (pa.array([micros * 1000], pa.timestamp("ns", tz="Europe/Paris")), "timestamptz"),
        "s": (pa.array([micros // 1_000_000], pa.timestamp("s")), "timestamptz"),
    }
    us, ns, s = load(fresh_db, cols)[0]
    assert us == ns == moment and s == moment.replace(microsecond=0)


def test_any_column_order_and_the_cheapest_order(fresh_db):
    cols = {
        "t1": (pa.array(["a", None, "ccc"]), "text"),
        "n1": (pa.array([1, None, 3]), "bigint"),
        "t2": (pa.array([None, "", "z"]), "text"),
        "n2": (pa.array([None, 2.5, None]), "double precision"),
    }
    expected = [("a", 1, None, None), (None, None, "", 2.5), ("ccc", 3, "z", None)]
    assert load(fresh_db, cols) == expected
    order = pgbinary.copy_order([t for _, t in cols.values()])
    names = [list(cols)[i] for i in order]
    assert names == ["n1", "n2", "t1", "t2"]
    assert load(fresh_db, cols, order=names) == expected


def test_an_empty_batch_is_a_valid_payload(fresh_db):
    assert load(fresh_db, {"a": (pa.array([], pa.int64()), "bigint")}) == []


def test_large_batches_and_sliced_arrays(fresh_db):
    n = 50_000
    text = pa.array([f"row {i} " + "x" * (i % 50) for i in range(n + 10)]).slice(10)
    ints = pa.array(np.arange(n + 10, dtype=np.int64)).slice(10)
    rows = load(fresh_db, {"t": (text, "text"), "i": (ints, "bigint")})
    assert len(rows) == n and rows[0] == ("row 10 " + "x" * 10, 10)
    assert rows[-1] == (f"row {n + 9} " + "x" * ((n + 9) % 50), n + 9)


def test_unsupported_types_are_named():
    assert pgbinary.supports("numeric(12,2)") and not pgbinary.supports("numeric")
    with pytest.raises(ValueError, match="numeric\\(p,s\\)"):
        pgbinary.numeric_layout("numeric")
