"""Who to export, with which columns: the segment's changes read set-based from the warehouse,
and the PII columns decrypted through the audited access path.

``segments.membership_snapshot`` (equal to the view after each refresh, and untouched when dbt
rebuilds ``customer_profiles`` underneath the view) against ``activation.exported_members`` gives
members / entered / exited in one query, joined to ``marts.customer_profiles`` (fields) and
``marts.customer_contacts`` (blind-index hashes). Each distinct hash is decrypted once, in one
audited call, and joined back vectorised (``index_in`` + ``take``).
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg import sql

from orchestration.activation.destinations import FILE_DESTINATIONS
from orchestration.errors import CdpError
from orchestration.privacy.access import decrypt_fetched
from orchestration.privacy.vault import VaultKeys
from orchestration.segments.spec import (
    RuleError,
    SegmentError,
    SegmentSpec,
    load_directory,
    suggest,
)

ACTOR = "activation"
# export column -> (vault pii type, hash column of marts.customer_contacts)
PII_COLUMNS = {
    "email": ("email", "email_hash"),
    "phone": ("phone", "phone_hash"),
    "first_name": ("name", "first_name_hash"),
    "last_name": ("name", "last_name_hash"),
}
DEFAULT_COLUMNS = ("customer_id", "email", "first_name", "last_name")
ACTOR = "activation"


def load_segment(directory: Path, slug: str) -> SegmentSpec:
    specs, errors = load_directory(directory)
    if slug in specs:
        return specs[slug]
    for err in errors:
        if Path(err.source).stem == slug or f"/{slug}." in err.source:
            raise err
    raise CdpError(
        f"no segment `{slug}` in {directory}{suggest(slug, specs)} "
        f"(segments: {', '.join(sorted(specs)) or 'none'})"
    )


def export_columns(spec: SegmentSpec, index: int) -> list[str]:
    export = spec.exports[index]
    if export.columns:
        cols = list(dict.fromkeys(export.columns))
        return cols if "customer_id" in cols else ["customer_id", *cols]
    return list(dict.fromkeys([*DEFAULT_COLUMNS, *spec.rule_fields()]))


def profile_columns(conn: psycopg.Connection) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "select column_name from information_schema.columns where table_schema = 'marts' "
            "and table_name = 'customer_profiles' order by ordinal_position"
        ).fetchall()
    ]


def check_exports(spec: SegmentSpec, profile_columns: list[str]) -> dict[int, list[str]]:
    """{export index: columns}, or SegmentError naming every bad column / duplicate format."""
    known = set(profile_columns) | set(PII_COLUMNS) | {"customer_id"}
    errors, out, formats = [], {}, set()
    for i, export in enumerate(spec.exports):
        cols = export_columns(spec, i)
        for col in cols:
            if col not in known:
                hint = (
                    suggest(col, known)
                    or " (see `cdp segment fields`; PII: " + ", ".join(PII_COLUMNS) + ")"
                )
                errors.append(RuleError(f"exports[{i}].columns", f"unknown column `{col}`{hint}"))
        if export.destination in FILE_DESTINATIONS:
            if export.destination in formats:
                errors.append(
                    RuleError(
                        f"exports[{i}]",
                        f"a second `{export.destination}` export would "
                        "overwrite the first's files; merge their columns into one",
                    )
                )
            formats.add(export.destination)
        out[i] = cols
    if errors:
        raise SegmentError(spec.source, errors)
    return out


# members (entered when not yet exported) and those exported before who left; no CTEs, so the
# planner joins the big tables once; sorted afterwards in Arrow (cheaper than a collated sort)
_CHANGES = """
select
    case when e.customer_id is null then 'entered' else 'member' end as change,
    s.customer_id{fields}
from segments.membership_snapshot s
left join activation.exported_members e
    on e.segment = s.segment and e.customer_id = s.customer_id
{joins}
where s.segment = {seg}
union all
select 'exited', s.customer_id{fields}
from activation.exported_members s
{joins}
where s.segment = {seg}
    and not exists (
        select 1 from segments.membership_snapshot m
        where m.segment = s.segment and m.customer_id = s.customer_id
    )
"""


_ARROW_TYPES = {
    16: pa.bool_(),
    20: pa.int64(),
    21: pa.int16(),
    23: pa.int32(),
    700: pa.float32(),
    701: pa.float64(),
    1082: pa.date32(),
    1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"),
}


def _arrow_type(column) -> pa.DataType:
    """The Arrow type of a result column (psycopg ``Column``); text for anything else."""
    if column.type_code == 1700:  # numeric: exact when it has a precision, else a float
        if column.precision and column.precision <= 38:
            return pa.decimal128(column.precision, column.scale or 0)
        return pa.float64()
    return _ARROW_TYPES.get(column.type_code, pa.string())


def read_changes(
    conn: psycopg.Connection, slug: str, fields: list[str], pii: list[str]
) -> pa.Table:
    """change ('member' | 'entered' | 'exited'), customer_id, the fields, and per PII column its
    hash and vault ciphertext (``<col>__hash``, ``<col>__ciphertext``), sorted by customer_id.

    One query, streamed with ``COPY ... TO STDOUT`` and parsed by Arrow's CSV reader with the
    result's own column types (no Python object per value)."""
    select = [sql.SQL(", p.{}").format(sql.Identifier(f)) for f in fields]
    joins = [sql.SQL("left join marts.customer_profiles p on p.customer_id = s.customer_id")]
    if pii:
        joins.append(
            sql.SQL("left join marts.customer_contacts k on k.customer_id = s.customer_id")
        )
    for col in pii:
        pii_type, hash_col = PII_COLUMNS[col]
        alias = sql.Identifier(f"v_{col}")
        select.append(
            sql.SQL(", k.{h} as {hn}, {v}.ciphertext as {cn}").format(
                h=sql.Identifier(hash_col), hn=sql.Identifier(f"{col}__hash"), v=alias,
                cn=sql.Identifier(f"{col}__ciphertext"),
            )
        )  # fmt: skip
        joins.append(
            sql.SQL(
                "left join pii.vault {v} on {v}.pii_type = {t} and {v}.value_hash = k.{h}"
            ).format(v=alias, t=sql.Literal(pii_type), h=sql.Identifier(hash_col))
        )
    query = sql.SQL(_CHANGES).format(
        seg=sql.Literal(slug), fields=sql.SQL("").join(select), joins=sql.SQL("\n").join(joins)
    )
    with conn.cursor() as cur:
        try:
            cur.execute(sql.SQL("select * from ({}) q limit 0").format(query))
        except psycopg.errors.UndefinedTable as exc:
            conn.rollback()
            raise CdpError(
                f"cannot export segment `{slug}`: {str(exc).splitlines()[0]}; run the pipeline "
                "(dbt builds marts.customer_profiles and marts.customer_contacts) first"
            ) from None
        columns = list(cur.description)
        buf = bytearray()
        copy_sql = sql.SQL("copy ({}) to stdout (format csv, header true)").format(query)
        with cur.copy(copy_sql) as copy:
            for chunk in copy:
                buf += chunk
    types = {c.name: _arrow_type(c) for c in columns}
    types["change"] = types["customer_id"] = pa.string()
    table = pacsv.read_csv(
        pa.py_buffer(bytes(buf)),
        convert_options=pacsv.ConvertOptions(
            column_types=types,
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,  # "" is an empty string, unquoted empty is NULL
            true_values=["t"],
            false_values=["f"],
        ),
    )
    return table.take(pc.sort_indices(table["customer_id"]))


def _lookup(hashes: pa.ChunkedArray, mapping: dict[str, str]) -> pa.Array:
    keys = pa.array(list(mapping), pa.string())
    values = pa.array(list(mapping.values()), pa.string())
    return pc.take(values, pc.index_in(hashes, value_set=keys))


def decrypt_columns(
    conn: psycopg.Connection,
    keys: VaultKeys,
    table: pa.Table,
    pii: list[str],
    *,
    slug: str,
    export_id: str,
) -> tuple[pa.Table, int]:
    """Replace each PII column's hash and ciphertext by its plaintext (one audited call)."""
    if not pii:
        return table, 0
    fetched: dict[str, tuple[list, list]] = {}
    for col in pii:
        pii_type = PII_COLUMNS[col][0]
        hashes, cts = fetched.setdefault(pii_type, ([], []))
        hashes += table[f"{col}__hash"].to_pylist()
        cts += table[f"{col}__ciphertext"].to_pylist()
    plain = decrypt_fetched(
        conn,
        keys,
        fetched,
        purpose=f"activation export of segment {slug}",
        actor=ACTOR,
        segment=slug,
        subject=export_id,
    )
    for col in pii:
        lookup = _lookup(table[f"{col}__hash"], plain[PII_COLUMNS[col][0]])
        table = table.append_column(col, lookup)
    table = table.drop_columns([f"{c}__{part}" for c in pii for part in ("hash", "ciphertext")])
    return table, sum(len(v) for v in plain.values())
