"""Pairwise accuracy of identity resolution against the demo generator's ground truth.

Over every source record present in both ``marts.customer_identities`` and
``demo_truth.identities`` (keyed by source, identity_type, source_id), a *pair* is two records;
it is predicted "same person" when both have the same ``customer_id`` and truly "same person"
when both have the same ``person_id``. Pairs are never materialized: a group of n records holds
n*(n-1)/2 pairs, so true positives are summed over (customer_id, person_id) intersections.

Only this module and the tests read ``demo_truth``; no dbt model does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import psycopg

PAIRS_SQL = """
with matched as (
    select distinct on (t.source, t.identity_type, t.source_id)
        t.source, t.identity_type, t.source_id, t.person_id, i.customer_id
    from demo_truth.identities as t
    inner join marts.customer_identities as i
        on i.source = t.source
        and i.identity_type = t.identity_type
        and i.source_id = t.source_id
    order by t.source, t.identity_type, t.source_id, i.customer_id
),
by_customer as (
    select count(*)::numeric as n from matched group by customer_id
),
by_person as (
    select count(*)::numeric as n from matched group by person_id
),
by_both as (
    select count(*)::numeric as n from matched group by customer_id, person_id
)
select
    (select count(*) from matched) as records,
    (select count(*) from demo_truth.identities) as truth_records,
    (select count(*) from marts.customer_identities) as resolved_records,
    (select count(distinct customer_id) from matched) as customers,
    (select count(distinct person_id) from matched) as persons,
    (select coalesce(sum(n * (n - 1) / 2), 0) from by_both) as true_positive_pairs,
    (select coalesce(sum(n * (n - 1) / 2), 0) from by_customer) as predicted_pairs,
    (select coalesce(sum(n * (n - 1) / 2), 0) from by_person) as true_pairs
"""


@dataclass(frozen=True)
class IdentityAccuracy:
    records: int  # source records in both truth and the resolved identities
    truth_records: int
    resolved_records: int
    customers: int  # distinct customer_ids among them
    persons: int  # distinct true persons among them
    true_positive_pairs: int
    predicted_pairs: int
    true_pairs: int

    @property
    def precision(self) -> float:
        return self.true_positive_pairs / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.true_positive_pairs / self.true_pairs if self.true_pairs else 1.0

    @property
    def coverage(self) -> float:
        """Share of truth records that were resolved at all."""
        return self.records / self.truth_records if self.truth_records else 1.0

    def as_metadata(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {k: int(v) for k, v in asdict(self).items()}
        out.update(
            precision=round(self.precision, 6),
            recall=round(self.recall, 6),
            coverage=round(self.coverage, 6),
        )
        return out


def has_truth(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "select to_regclass('demo_truth.identities') is not null "
        "and to_regclass('marts.customer_identities') is not null"
    ).fetchone()
    if not row[0]:
        return False
    return conn.execute("select exists (select 1 from demo_truth.identities)").fetchone()[0]


def identity_accuracy(conn: psycopg.Connection) -> IdentityAccuracy:
    row = conn.execute(PAIRS_SQL).fetchone()
    return IdentityAccuracy(*(int(v) for v in row))
