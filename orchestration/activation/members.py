"""Who to export, with which columns: the segment's changes read set-based from the warehouse,
and the PII columns decrypted through the audited access path.

``segments.membership_snapshot`` (equal to the view after each refresh, and untouched when dbt
rebuilds ``customer_profiles`` underneath the view) against ``activation.exported_members`` gives
members / entered / exited in one query, joined to ``marts.customer_profiles`` (fields),
``marts.customer_contacts`` (blind-index hashes) and, for emails and phones, ``pii.vault``
(ciphertexts). Arrow parses the result (``fetch.py``). Each distinct hash is decrypted once, in
one audited call (``privacy/access.py``), which returns plaintexts aligned with the rows.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from orchestration.activation import fetch
from orchestration.activation.destinations import FILE_DESTINATIONS, push_destination
from orchestration.errors import CdpError
from orchestration.privacy.access import decrypt_arrays
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
# PII types whose ciphertexts the changes query joins row by row: nearly one distinct value per
# customer, so the join is the cheapest way to fetch them. Names repeat (a few thousand distinct
# in 100,000 rows): their ciphertexts are read once per distinct hash by privacy/access.py.
JOINED_TYPES = ("email", "phone")


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
    if export.destination not in FILE_DESTINATIONS:
        fixed = push_destination(export.destination).columns
        if fixed:
            return list(fixed)
    if export.columns:
        cols = list(dict.fromkeys(export.columns))
        return cols if "customer_id" in cols else ["customer_id", *cols]
    return list(dict.fromkeys([*DEFAULT_COLUMNS, *spec.rule_fields()]))


def profile_columns(conn: psycopg.Connection) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            # the catalog, not information_schema (whose views cost ~10 ms per look-up)
            "select attname from pg_attribute "
            "where attrelid = to_regclass('marts.customer_profiles') "
            "and attnum > 0 and not attisdropped order by attnum"
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


# members (entered when not yet exported) and those exported before who left, in one pass: the
# segment's snapshot full-joined to what was exported; sorted afterwards in Arrow (cheaper than
# a collated sort)
_CHANGES = """
select
    case when s.customer_id is null then 'exited'
        when e.customer_id is null then 'entered' else 'member' end as change,
    customer_id{fields}
from (select customer_id from segments.membership_snapshot where segment = {seg}) s
full join (select customer_id from activation.exported_members where segment = {seg}) e
    using (customer_id)
{joins}
"""


def changes_query(slug: str, fields: list[str], pii: list[str]) -> sql.Composable:
    select = [sql.SQL(", p.{}").format(sql.Identifier(f)) for f in fields]
    joins = [sql.SQL("left join marts.customer_profiles p using (customer_id)")]
    if pii:
        joins.append(sql.SQL("left join marts.customer_contacts k using (customer_id)"))
    for col in pii:
        pii_type, hash_col = PII_COLUMNS[col]
        select.append(
            sql.SQL(", k.{} as {}").format(sql.Identifier(hash_col), sql.Identifier(f"{col}__hash"))
        )
        if pii_type not in JOINED_TYPES:
            continue
        alias = sql.Identifier(f"v_{col}")
        select.append(
            sql.SQL(", encode({}.ciphertext, 'hex') as {}").format(
                alias, sql.Identifier(f"{col}__ciphertext")
            )
        )
        joins.append(
            sql.SQL(
                "left join pii.vault {v} on {v}.pii_type = {t} and {v}.value_hash = k.{h}"
            ).format(v=alias, t=sql.Literal(pii_type), h=sql.Identifier(hash_col))
        )
    return sql.SQL(_CHANGES).format(
        seg=sql.Literal(slug), fields=sql.SQL("").join(select), joins=sql.SQL("\n").join(joins)
    )


def read_changes(
    conn: psycopg.Connection, slug: str, fields: list[str], pii: list[str]
) -> pa.Table:
    """change ('member' | 'entered' | 'exited'), customer_id, the fields, and per PII column its
    hash (``<col>__hash``) and, for emails and phones, its hex vault ciphertext
    (``<col>__ciphertext``), sorted by customer_id. One query, parsed by Arrow (``fetch.py``:
    no Python object per row)."""
    query = changes_query(slug, fields, pii)
    try:
        columns = fetch.describe(conn, query)
    except psycopg.errors.UndefinedTable as exc:
        conn.rollback()
        raise CdpError(
            f"cannot export segment `{slug}`: {str(exc).splitlines()[0]}; run the pipeline "
            "(dbt builds marts.customer_profiles and marts.customer_contacts) first"
        ) from None
    # at most snapshot + exported rows: small enough to fetch as one aggregated value?
    bound = conn.execute(
        "select (select count(*) from segments.membership_snapshot where segment = %s) "
        "+ (select count(*) from activation.exported_members where segment = %s)",
        (slug, slug),
    ).fetchone()[0]
    data = fetch.fetch_csv(
        conn,
        query,
        columns,
        aggregate=bound <= fetch.AGGREGATE_MAX_ROWS,
        plain=frozenset(c.name for c in columns if c.name.endswith("__ciphertext")),  # hex
    )
    table = fetch.read_table(data, columns, {"change": pa.string(), "customer_id": pa.string()})
    return table.take(pc.sort_indices(table["customer_id"]))


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
        hashes, cts = fetched.setdefault(PII_COLUMNS[col][0], ([], []))
        hashes.append(table[f"{col}__hash"].combine_chunks())
        if f"{col}__ciphertext" in table.column_names:
            cts.append(table[f"{col}__ciphertext"].combine_chunks())
    plain, counts = decrypt_arrays(
        conn,
        keys,
        {
            t: (pa.concat_arrays(h), pa.concat_arrays(c) if c else None)
            for t, (h, c) in fetched.items()
        },
        purpose=f"activation export of segment {slug}",
        actor=ACTOR,
        segment=slug,
        subject=export_id,
    )
    offset = dict.fromkeys(plain, 0)  # columns sharing a type were concatenated in order
    for col in pii:
        pii_type = PII_COLUMNS[col][0]
        table = table.append_column(col, plain[pii_type].slice(offset[pii_type], table.num_rows))
        offset[pii_type] += table.num_rows
    helpers = {f"{c}__{part}" for c in pii for part in ("hash", "ciphertext")}
    table = table.drop_columns([c for c in table.column_names if c in helpers])
    return table, sum(c["decrypted"] for c in counts.values())
