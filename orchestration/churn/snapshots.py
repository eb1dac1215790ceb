"""Training and scoring snapshots: the warehouse's churn feature SQL rendered at past cutoffs
(features strictly before each cutoff) joined with labels from strictly after it.

Cutoffs: the scoring cutoff is ``marts.churn_features.cutoff_date`` (the day after the last
loaded day). The held-out evaluation cutoff is ``horizon`` days before it (its label window ends
exactly where the data ends); training cutoffs end another ``horizon`` days earlier, so no
training label looks into the held-out window, and step back ``step_days`` at a time.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd
import psycopg

from orchestration.churn.history import HISTORY_ORDER_COLUMNS, with_history
from orchestration.churn.labels import SUB_EVENT_COLUMNS, churn_labels, eligible
from orchestration.churn.model import SQL_INPUT_COLUMNS
from orchestration.errors import CdpError
from orchestration.runtime import db

# a cutoff no data can precede; replaced by each real cutoff in the rendered SQL
_SENTINEL = date(1901, 1, 1)
_SENTINEL_SQL = f"'{_SENTINEL.isoformat()}'::date"
_NON_NUMERIC = {"customer_id", "cutoff_date", "subscription_status"}

ORDERS_SQL = """
select customer_id, ordered_at, is_cancelled, cancelled_at, total_price
from intermediate.int_orders_rolled_up
where customer_id is not null
"""
SUB_EVENTS_SQL = """
select identities.customer_id, e.subscription_id::text, e.event_type, e.occurred_at
from staging.stg_subscriptions__events as e
inner join intermediate.int_identities_stitched as identities
    on identities.node_key = 'subscriptions:customer_id:' || e.subscription_customer_id::text
"""


@dataclass(frozen=True)
class Cutoffs:
    train: tuple[date, ...]  # oldest first
    holdout: date
    scoring: date

    def as_dict(self) -> dict:
        return {
            "train": [d.isoformat() for d in self.train],
            "holdout": self.holdout.isoformat(),
            "scoring": self.scoring.isoformat(),
        }


def plan_cutoffs(scoring: date, horizon_days: int, n_train: int, step_days: int) -> Cutoffs:
    holdout = scoring - timedelta(days=horizon_days)
    latest_train = holdout - timedelta(days=horizon_days)
    train = tuple(latest_train - timedelta(days=step_days * k) for k in range(n_train))[::-1]
    return Cutoffs(train=train, holdout=holdout, scoring=scoring)


class FeatureSql:
    """The feature SELECT for any cutoff, rendered once through dbt and reused.

    ``render`` renders the macro for one cutoff (default:
    ``orchestration.warehouse.features.churn_features_sql``)."""

    def __init__(self, url: str, render: Callable[[date, str], str] | None = None):
        if render is None:
            from orchestration.warehouse.features import churn_features_sql as render
        template = render(_SENTINEL, url)
        if _SENTINEL_SQL not in template:
            raise CdpError(
                "the churn feature SQL rendered by dbt does not contain the cutoff literal "
                f"{_SENTINEL_SQL}; check macros/churn_features.sql"
            )
        self.template = template

    def __call__(self, cutoff: date) -> str:
        return self.template.replace(_SENTINEL_SQL, f"'{cutoff.isoformat()}'::date")


def _frame(cur: psycopg.Cursor) -> pd.DataFrame:
    return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


def normalize_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns as float (numeric arrives as Decimal), flags as bool."""
    out = frame.copy()
    for col in out.columns:
        if col in _NON_NUMERIC:
            continue
        if col.startswith(("is_", "has_")):
            out[col] = out[col].fillna(False).astype(bool)
        else:
            out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    return out


def query_features(url: str, sql: str) -> pd.DataFrame:
    """Run the feature SQL; rows stream out as CSV through COPY and Arrow parses them (no
    per-value Python objects: at scale 10 that is the difference between ~1 and ~6 GiB)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    buf = io.BytesIO()
    with db.connect(url) as conn, conn.cursor() as cur:
        conn.execute("set work_mem = '256MB'")
        with cur.copy(f"copy ({sql}) to stdout with (format csv, header true)") as copy:
            for chunk in copy:
                buf.write(chunk)
    buf.seek(0)
    table = pacsv.read_csv(
        buf,
        convert_options=pacsv.ConvertOptions(
            true_values=["t"],
            false_values=["f"],
            column_types={"customer_id": pa.string(), "subscription_status": pa.string()},
            strings_can_be_null=False,
        ),
    )
    frame = table.to_pandas(date_as_object=True)
    missing = [c for c in SQL_INPUT_COLUMNS if c not in frame.columns]
    if missing:
        raise CdpError(
            f"churn feature SQL lacks columns {missing}; check macros/churn_features.sql"
        )
    return normalize_features(frame)


def load_features(url: str, sql: FeatureSql, cutoffs: list[date], workers: int = 2):
    """Feature snapshots for several cutoffs, queried concurrently; {cutoff: frame}."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        frames = list(pool.map(lambda c: query_features(url, sql(c)), cutoffs))
    return dict(zip(cutoffs, frames, strict=True))


def scoring_features(conn: psycopg.Connection, horizon_days: int) -> pd.DataFrame:
    """``marts.churn_features`` (the scoring snapshot) with its eligible customers only, and
    their purchase-history features at its cutoff."""
    if not db.table_exists(conn, "marts.churn_features"):
        raise CdpError("marts.churn_features does not exist yet: run the dbt build first")
    with conn.cursor() as cur:
        cur.execute("select * from marts.churn_features")
        frame = normalize_features(_frame(cur))
    if frame.empty:
        raise CdpError("marts.churn_features is empty: land data and run the dbt build first")
    frame = frame[eligible(frame)].reset_index(drop=True)
    orders, _ = load_label_events(conn, subscriptions=False)
    return with_history(frame, orders, frame["cutoff_date"].max(), horizon_days)


def load_label_events(
    conn: psycopg.Connection, *, subscriptions: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The orders (for labels and history features) and subscription events (for labels)."""
    with conn.cursor() as cur:
        cur.execute(ORDERS_SQL)
        orders = _frame(cur)
        events = pd.DataFrame(columns=list(SUB_EVENT_COLUMNS))
        if subscriptions:
            cur.execute(SUB_EVENTS_SQL)
            events = _frame(cur)
    orders = orders.reindex(columns=list(HISTORY_ORDER_COLUMNS))
    events = events.reindex(columns=list(SUB_EVENT_COLUMNS))
    orders["ordered_at"] = pd.to_datetime(orders["ordered_at"], utc=True)
    orders["is_cancelled"] = orders["is_cancelled"].fillna(False).astype(bool)
    orders["cancelled_at"] = pd.to_datetime(orders["cancelled_at"], utc=True)
    events["occurred_at"] = pd.to_datetime(events["occurred_at"], utc=True)
    return orders, events


def labelled_snapshots(
    features: dict[date, pd.DataFrame],
    orders: pd.DataFrame,
    sub_events: pd.DataFrame,
    horizon_days: int,
) -> pd.DataFrame:
    """Eligible customers per cutoff with their features (SQL and purchase history) and
    ``churned`` label, stacked."""
    parts = []
    for cutoff, frame in sorted(features.items()):
        frame = with_history(frame, orders, cutoff, horizon_days)
        labels = churn_labels(frame, orders, sub_events, cutoff, horizon_days)
        snap = frame.merge(labels, on="customer_id", how="inner", validate="one_to_one")
        snap["cutoff_date"] = cutoff
        parts.append(snap)
    return pd.concat(parts, ignore_index=True)


def data_hash(frame: pd.DataFrame) -> str:
    """sha256 of a snapshot's rows (order-independent): the model's training-data fingerprint."""
    cols = sorted(frame.columns)
    rows = pd.util.hash_pandas_object(
        frame.sort_values(["cutoff_date", "customer_id"])[cols].astype(str), index=False
    )
    return hashlib.sha256(rows.to_numpy().tobytes()).hexdigest()
