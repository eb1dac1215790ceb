"""Churn features for any cutoff date, from the same SQL as ``marts.churn_features``.

The feature SQL is the dbt macro ``churn_features_sql(cutoff)``; this module renders it with
``dbt compile --inline`` for a cutoff and runs it, so training snapshots at past cutoffs and the
scoring snapshot share one definition (no leakage: only events strictly before the cutoff)."""

from __future__ import annotations

from datetime import date

import psycopg

from orchestration.warehouse.project import run_dbt


def churn_features_sql(cutoff: date, url: str) -> str:
    """The compiled feature SELECT for ``cutoff`` (refs resolved against ``url``'s warehouse)."""
    inline = "{{ churn_features_sql(\"'" + cutoff.isoformat() + "'::date\") }}"
    proc = run_dbt(["compile", "--quiet", "--output", "text", "--inline", inline], url)
    sql = proc.stdout.strip()
    if not sql.lower().lstrip().startswith("with"):
        # older dbt prints log lines before the compiled SQL
        sql = sql[sql.lower().index("with") :]
    return sql


def churn_features(conn: psycopg.Connection, cutoff: date, url: str) -> list[tuple]:
    """Feature rows for ``cutoff`` (column names from ``cursor.description``)."""
    return conn.execute(churn_features_sql(cutoff, url)).fetchall()
