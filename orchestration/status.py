"""``cdp status``: per stage of the pipeline, the last success, the last failure with its reason,
and how old they are; per source how far behind the landed data is; when each mart was built.

Where it comes from (all in the warehouse, so it describes this warehouse and nothing else):

- ``ops.stage_runs``: one row per step of every ``cdp_pipeline`` run, success or failure with its
  reason, written by the job's hooks (``orchestration/definitions.py``). This is where failures
  of any stage are read;
- the stages' own records: ``ops.load_batches`` and the newest record of each raw table
  (sources), ``ops.model_refreshes`` (dbt, filled from each build's ``run_results.json``),
  ``ml.model_runs`` and ``ml.scoring_runs`` (churn), ``segments.definitions`` (segments),
  ``activation.exports`` and ``activation.deliveries`` (exports).

A stage is *failing* when its latest outcome is a failure (a source or a segment's exports count
on their own: one failing source fails the stage). Plain Python: the CLI renders it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import psycopg

from orchestration.runtime import db
from orchestration.sources.schemas import TABLES
from orchestration.warehouse.run_results import ModelRefresh

STAGES = ("sources", "dbt", "churn", "segments", "exports")

DDL = """
create schema if not exists ops;
create table if not exists ops.stage_runs (
    run_id       text not null,
    step         text not null,
    stage        text not null,
    job          text,
    started_at   timestamptz,
    finished_at  timestamptz not null default now(),
    status       text not null check (status in ('succeeded', 'failed')),
    message      text,
    primary key (run_id, step)
);
create index if not exists stage_runs_stage_finished on ops.stage_runs (stage, finished_at);
create table if not exists ops.model_refreshes (
    model         text primary key,
    relation      text,
    refreshed_at  timestamptz not null,
    run_id        text,
    rows          bigint
);
"""


def ensure_tables(conn: psycopg.Connection) -> None:
    """Create ops.stage_runs and ops.model_refreshes once."""
    db.ensure_tables(conn, "ops", ["stage_runs", "model_refreshes"], DDL)


# ----------------------------------------------------------------------------------- recording


def stage_of(step_key: str) -> str:
    """The stage a step of ``cdp_pipeline`` belongs to."""
    key = step_key.split("[")[0]
    if key.startswith("cdp_dbt") or key.endswith("identity_accuracy_vs_demo_truth"):
        return "dbt"
    if key.startswith("churn"):
        return "churn"
    if key.startswith("segments__"):
        return "segments"
    if key.startswith("export"):
        return "exports"
    if key.startswith(("demo_sources", "raw_", "sources")):
        return "sources"
    return key


def record_step(
    conn: psycopg.Connection,
    *,
    run_id: str,
    step: str,
    job: str | None,
    ok: bool,
    message: str | None = None,
    started_at: datetime | None = None,
) -> None:
    """Record one step's outcome (a retried step keeps its latest outcome)."""
    ensure_tables(conn)
    conn.execute(
        """insert into ops.stage_runs (run_id, step, stage, job, started_at, finished_at, status,
               message)
           values (%s, %s, %s, %s, %s, now(), %s, %s)
           on conflict (run_id, step) do update set finished_at = excluded.finished_at,
               status = excluded.status, message = excluded.message,
               started_at = coalesce(excluded.started_at, ops.stage_runs.started_at)""",
        (run_id, step, stage_of(step), job, started_at,
         "succeeded" if ok else "failed", message),
    )  # fmt: skip
    conn.commit()


def record_build(conn: psycopg.Connection, results: dict | None, run_id: str | None) -> int:
    """Record the models a dbt build refreshed, from its ``run_results.json`` (as a dict)."""
    from orchestration.warehouse.run_results import model_refreshes

    return record_model_refreshes(conn, model_refreshes(results or {}), run_id)


def record_model_refreshes(
    conn: psycopg.Connection, refreshes: Iterable[ModelRefresh], run_id: str | None
) -> int:
    """Remember when each model was last built (``ops.model_refreshes``, one row per model)."""
    rows = [(r.model, r.relation, r.refreshed_at, run_id, r.rows) for r in refreshes]
    if not rows:
        return 0
    ensure_tables(conn)
    with conn.cursor() as cur:
        cur.executemany(
            """insert into ops.model_refreshes (model, relation, refreshed_at, run_id, rows)
               values (%s, %s, %s, %s, %s)
               on conflict (model) do update set relation = excluded.relation,
                   refreshed_at = excluded.refreshed_at, run_id = excluded.run_id,
                   rows = excluded.rows
               where ops.model_refreshes.refreshed_at <= excluded.refreshed_at""",
            rows,
        )
    conn.commit()
    return len(rows)


# ------------------------------------------------------------------------------------- reading


@dataclass
class Outcome:
    at: datetime
    ok: bool
    run_id: str | None = None
    message: str | None = None  # a failure's reason, or what a success did

    def as_dict(self, now: datetime) -> dict:
        return {
            "at": self.at.isoformat(),
            "age_seconds": age_seconds(self.at, now),
            "run_id": self.run_id,
            "message": self.message,
        }


@dataclass
class StageStatus:
    name: str
    last_success: Outcome | None = None
    last_failure: Outcome | None = None
    detail: str = ""  # what the stage holds now, e.g. "442 customers scored"
    failing_parts: list[str] = field(default_factory=list)  # e.g. a source whose last load failed

    def add(self, outcome: Outcome | None) -> None:
        if outcome is None:
            return
        if outcome.ok:
            if self.last_success is None or outcome.at > self.last_success.at:
                self.last_success = outcome
        elif self.last_failure is None or outcome.at > self.last_failure.at:
            self.last_failure = outcome

    @property
    def failing(self) -> bool:
        if self.failing_parts:
            return True
        if self.last_failure is None:
            return False
        return self.last_success is None or self.last_failure.at >= self.last_success.at

    @property
    def state(self) -> str:
        if self.last_success is None and self.last_failure is None:
            return "never"
        return "failing" if self.failing else "ok"

    def as_dict(self, now: datetime) -> dict:
        return {
            "state": self.state,
            "last_success": self.last_success.as_dict(now) if self.last_success else None,
            "last_failure": self.last_failure.as_dict(now) if self.last_failure else None,
            "detail": self.detail,
            "failing_parts": self.failing_parts,
        }


@dataclass
class SourceStatus:
    source: str
    last_load: datetime | None = None  # newest batch loaded
    rows_last_day: int = 0  # rows loaded in the 24 hours up to the last load
    data_through: datetime | None = None  # newest event / update timestamp landed
    last_failure: Outcome | None = None

    @property
    def failing(self) -> bool:
        return self.last_failure is not None and (
            self.last_load is None or self.last_failure.at >= self.last_load
        )

    def as_dict(self, now: datetime) -> dict:
        return {
            "source": self.source,
            "last_load": self.last_load.isoformat() if self.last_load else None,
            "last_load_age_seconds": age_seconds(self.last_load, now),
            "rows_last_day": self.rows_last_day,
            "data_through": self.data_through.isoformat() if self.data_through else None,
            "behind_seconds": age_seconds(self.data_through, now),
            "last_failure": self.last_failure.as_dict(now) if self.last_failure else None,
            "failing": self.failing,
        }


@dataclass
class MartRefresh:
    model: str
    relation: str | None
    refreshed_at: datetime
    run_id: str | None
    rows: int | None

    def as_dict(self, now: datetime) -> dict:
        return {
            "model": self.model,
            "relation": self.relation,
            "refreshed_at": self.refreshed_at.isoformat(),
            "age_seconds": age_seconds(self.refreshed_at, now),
            "run_id": self.run_id,
            "rows": self.rows,
        }


@dataclass
class PipelineRun:
    run_id: str
    job: str | None
    finished_at: datetime
    ok: bool
    failed_steps: list[str]


@dataclass
class Status:
    checked_at: datetime
    warehouse: str
    stages: list[StageStatus]
    sources: list[SourceStatus]
    marts: list[MartRefresh]
    last_run: PipelineRun | None = None
    demo_loaded_through: date | None = None

    @property
    def ok(self) -> bool:
        """False when the last pipeline run failed or the latest outcome of any stage did."""
        if self.last_run is not None and not self.last_run.ok:
            return False
        return not any(s.failing for s in self.stages)

    def stage(self, name: str) -> StageStatus:
        return next(s for s in self.stages if s.name == name)

    def as_dict(self) -> dict:
        now = self.checked_at
        run = self.last_run
        return {
            "ok": self.ok,
            "checked_at": now.isoformat(),
            "warehouse": self.warehouse,
            "last_run": None
            if run is None
            else {
                "run_id": run.run_id,
                "job": run.job,
                "finished_at": run.finished_at.isoformat(),
                "age_seconds": age_seconds(run.finished_at, now),
                "status": "succeeded" if run.ok else "failed",
                "failed_steps": run.failed_steps,
            },
            "stages": {s.name: s.as_dict(now) for s in self.stages},
            "sources": [s.as_dict(now) for s in self.sources],
            "demo_loaded_through": self.demo_loaded_through.isoformat()
            if self.demo_loaded_through
            else None,
            "marts": [m.as_dict(now) for m in self.marts],
        }


def collect(url: str | None = None, *, now: datetime | None = None) -> Status:
    """Read the status of every stage from the warehouse (creates nothing; a warehouse that
    never ran reports every stage as never run)."""
    url = url or db.warehouse_url()
    with db.connect(url) as conn:
        # one snapshot for every query below, read-only
        conn.execute("set transaction isolation level repeatable read read only")
        now = now or conn.execute("select now()").fetchone()[0]
        stages = {name: StageStatus(name) for name in STAGES}
        last_run = _stage_runs(conn, stages)
        sources = _sources(conn, stages["sources"])
        demo = _demo_loaded_through(conn, stages["sources"])
        marts = _dbt(conn, stages["dbt"])
        _churn(conn, stages["churn"])
        _segments(conn, stages["segments"])
        _exports(conn, stages["exports"])
        conn.rollback()
    return Status(
        checked_at=now,
        warehouse=db.describe(url),
        stages=list(stages.values()),
        sources=sources,
        marts=marts,
        last_run=last_run,
        demo_loaded_through=demo,
    )


def _exists(conn, *tables: str) -> bool:
    return all(db.table_exists(conn, t) for t in tables)


def _stage_runs(conn, stages: dict[str, StageStatus]) -> PipelineRun | None:
    if not _exists(conn, "ops.stage_runs"):
        return None
    rows = conn.execute(
        """with runs as (
               select stage, run_id, max(finished_at) as finished_at,
                      bool_or(status = 'failed') as failed,
                      (array_agg(step || ': ' || coalesce(message, 'failed')
                                 order by finished_at) filter (where status = 'failed'))[1]
                          as message
               from ops.stage_runs
               group by stage, run_id
           )
           select distinct on (stage, failed) stage, failed, run_id, finished_at, message
           from runs
           order by stage, failed, finished_at desc"""
    ).fetchall()
    for stage, failed, run_id, finished_at, message in rows:
        target = stages.setdefault(stage, StageStatus(stage))
        target.add(Outcome(finished_at, not failed, run_id, message if failed else None))
    last = conn.execute(
        """select run_id, max(job), max(finished_at),
                  coalesce(array_agg(step order by finished_at)
                           filter (where status = 'failed'), '{}')
           from ops.stage_runs
           group by run_id
           order by max(finished_at) desc
           limit 1"""
    ).fetchone()
    if last is None:
        return None
    run_id, job, finished_at, failed_steps = last
    return PipelineRun(run_id, job, finished_at, not failed_steps, list(failed_steps))


def _sources(conn, stage: StageStatus) -> list[SourceStatus]:
    by_source: dict[str, SourceStatus] = {}
    if _exists(conn, "ops.load_batches"):
        rows = conn.execute(
            """with b as (
                   select source, entity, status, error, rows_loaded,
                          coalesce(finished_at, started_at) as at
                   from ops.load_batches
               ),
               last as (
                   select source, max(at) filter (where status = 'loaded') as last_load
                   from b group by source
               )
               select b.source, l.last_load,
                      coalesce(sum(b.rows_loaded) filter (
                          where b.status = 'loaded' and b.at > l.last_load - interval '1 day'
                      ), 0),
                      max(b.at) filter (where b.status = 'failed'),
                      (array_agg(b.entity || ': ' || coalesce(b.error, 'failed')
                                 order by b.at desc) filter (where b.status = 'failed'))[1]
               from b join last l using (source)
               group by b.source, l.last_load
               order by b.source"""
        ).fetchall()
        for source, last_load, rows_day, failed_at, error in rows:
            s = by_source[source] = SourceStatus(source, last_load, int(rows_day))
            if failed_at is not None:
                s.last_failure = Outcome(failed_at, False, None, f"{source}.{error}")
            stage.add(Outcome(last_load, True) if last_load else None)
            stage.add(s.last_failure)
            if s.failing:
                stage.failing_parts.append(f"{source}: last load failed")
    for source, through in _data_through(conn).items():
        by_source.setdefault(source, SourceStatus(source)).data_through = through
    sources = sorted(by_source.values(), key=lambda s: s.source)
    if sources:
        newest = max((s.data_through for s in sources if s.data_through), default=None)
        stage.detail = f"{len(sources)} source(s)" + (
            f", data through {_fmt(newest)}" if newest else ""
        )
    return sources


def _data_through(conn) -> dict[str, datetime]:
    """Newest record landed per source: the maximum of each raw table's version column (the
    event or update time the source reported). A scan of each raw table: well under a second at
    scale 1."""
    parts = []
    for t in TABLES:
        if not t.updated_at or not db.table_exists(conn, t.qualified):
            continue
        col = f'"{t.updated_at}"'
        expr = f"to_timestamp(max({col}) / 1e6)" if t.updated_at == "event_timestamp" else (
            f"max({col})::timestamptz"
        )  # fmt: skip
        parts.append(f"select '{t.source}' as source, {expr} as through from {t.qualified}")
    if not parts:
        return {}
    rows = conn.execute(
        "select source, max(through) from (" + " union all ".join(parts) + ") t "
        "where through is not null group by source"
    ).fetchall()
    return dict(rows)


def _demo_loaded_through(conn, stage: StageStatus) -> date | None:
    if not _exists(conn, "ops.demo_state"):
        return None
    row = conn.execute("select loaded_through from ops.demo_state").fetchone()
    if row is None:
        return None
    stage.detail = (stage.detail + "; " if stage.detail else "") + (
        f"demo loaded through {row[0].isoformat()}"
    )
    return row[0]


def _dbt(conn, stage: StageStatus) -> list[MartRefresh]:
    if not _exists(conn, "ops.model_refreshes"):
        return []
    rows = conn.execute(
        "select model, relation, refreshed_at, run_id, rows from ops.model_refreshes "
        "order by relation, model"
    ).fetchall()
    if not rows:
        return []
    if stage.last_success is None and stage.last_failure is None:
        # no pipeline run recorded (models built by hand, `cdp dbt build`): the newest build is
        # the last success. Otherwise the pipeline's dbt steps say, since a failed build still
        # refreshes the models it got to.
        latest = max(rows, key=lambda r: r[2])
        stage.add(Outcome(latest[2], True, latest[3]))
    marts = [MartRefresh(*r) for r in rows if (r[1] or "").startswith("marts.")]
    stage.detail = f"{len(rows)} models"
    if marts:
        oldest = min(m.refreshed_at for m in marts)
        stage.detail += f"; marts refreshed at {_fmt(oldest)} or later"
    return marts


def _churn(conn, stage: StageStatus) -> None:
    details = []
    if _exists(conn, "ml.model_runs"):
        # to_jsonb: warehouses from before champions lack the champion and warnings columns
        row = conn.execute(
            "select trained_at, to_jsonb(r) from ml.model_runs as r "
            "order by trained_at desc limit 1"
        ).fetchone()
        if row:
            trained_at, run = row
            champion = run.get("champion") or "model"
            auc = (run["metrics"].get(champion) or {}).get("roc_auc")
            auc_text = f"holdout ROC-AUC {float(auc):.3f}" if auc is not None else "no ROC-AUC"
            # a weak model is a warning, not a failure: the champion scored all the same
            stage.add(
                Outcome(trained_at, True, run["run_id"], f"model {run['model_version']} trained")
            )
            details.append(f"model {run['model_version']}, champion {champion} ({auc_text})")
            details += [f"warning: {w}" for w in run.get("warnings") or []]
    if _exists(conn, "ml.scoring_runs"):
        row = conn.execute(
            "select run_id, scored_at, model_version, customers from ml.scoring_runs "
            "order by scored_at desc limit 1"
        ).fetchone()
        if row:
            run_id, scored_at, version, customers = row
            stage.add(Outcome(scored_at, True, run_id, f"{customers:,} customers scored"))
            details.insert(0, f"{customers:,} customers scored at {_fmt(scored_at)}")
    if details:  # which action rules and pre-built segments apply (orchestration.warehouse.shop)
        from orchestration.warehouse.shop import UNKNOWN, shop_profile

        shop = shop_profile(conn)
        if shop.kind != UNKNOWN:
            details.append(shop.reason)
    stage.detail = "; ".join(details)


def _segments(conn, stage: StageStatus) -> None:
    if not _exists(conn, "segments.definitions"):
        return
    row = conn.execute(
        """select count(*), count(last_refreshed_at), min(last_refreshed_at),
                  max(last_refreshed_at), coalesce(sum(members), 0),
                  (array_agg(last_run_id order by last_refreshed_at desc nulls last))[1]
           from segments.definitions"""
    ).fetchone()
    count, refreshed, oldest, newest, members, run_id = row
    if not count:
        return
    if newest is not None:
        stage.add(Outcome(newest, True, run_id, f"{refreshed} segment(s) refreshed"))
    stage.detail = f"{count} segment(s), {members:,} members"
    if oldest is not None:
        stage.detail += f"; oldest refresh {_fmt(oldest)}"
    if refreshed < count:
        stage.detail += f"; {count - refreshed} never refreshed"


def _exports(conn, stage: StageStatus) -> None:
    if not _exists(conn, "activation.exports"):
        return
    rows = conn.execute(
        """select distinct on (segment) segment, status, error
           from activation.exports where status <> 'running'
           order by segment, coalesce(finished_at, started_at) desc"""
    ).fetchall()
    for segment, status, error in rows:
        if status == "failed":
            stage.failing_parts.append(f"{segment}: {error or 'failed'}")
    for status in ("succeeded", "failed"):
        row = conn.execute(
            """select segment, coalesce(finished_at, started_at), run_id, error
               from activation.exports where status = %s
               order by coalesce(finished_at, started_at) desc limit 1""",
            (status,),
        ).fetchone()
        if row:
            segment, at, run_id, error = row
            ok = status == "succeeded"
            stage.add(Outcome(at, ok, run_id, f"{segment}" if ok else f"{segment}: {error}"))
    if rows:
        stage.detail = f"{len(rows)} segment(s) exported"
    if _exists(conn, "activation.deliveries"):
        failed = conn.execute(
            "select count(*) from activation.deliveries where status = 'failed'"
        ).fetchone()[0]
        if failed:
            stage.detail += f"; {failed} webhook batch(es) undelivered, re-sent next export"


# ------------------------------------------------------------------------------------ formatting


def age_seconds(at: datetime | None, now: datetime) -> int | None:
    return None if at is None else int((now - at).total_seconds())


def ago(at: datetime | None, now: datetime) -> str:
    """'3h 12m ago', 'in 2d 4h' (demo data can run ahead of the clock), 'never'."""
    if at is None:
        return "never"
    seconds = int((now - at).total_seconds())
    text = _span(abs(seconds))
    return f"{text} ago" if seconds >= 0 else f"{text} ahead"


def _span(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds}s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


def _fmt(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
