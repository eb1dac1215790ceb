"""Where churn results live: the versioned model artifact (``$CDP_HOME/models/churn/<version>/``)
and the ``ml`` tables (model_runs, churn_scores, scoring_runs, churn_alerts, churn_alert_state)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import psycopg
import sklearn

from orchestration.churn.train import SCORE_COLUMNS, TrainedChurnModel
from orchestration.errors import CdpError
from orchestration.runtime import db

DDL = """
create schema if not exists ml;
create table if not exists ml.model_runs (
    run_id          text primary key,
    trained_at      timestamptz not null,
    model_version   text not null,
    cutoffs         jsonb not null,
    metrics         jsonb not null,
    horizon_days    integer not null,
    data_hash       text not null,
    features        jsonb not null,
    rows            jsonb not null,
    artifact_path   text not null,
    gate_passed     boolean not null,
    champion        text,
    warnings        jsonb
);
create table if not exists ml.churn_scores (
    customer_id         text primary key,
    scored_at           timestamptz,
    churn_probability   double precision,
    churn_risk_score    integer,
    risk_band           text,
    top_drivers         jsonb,
    early_warnings      jsonb,
    recommended_action  text,
    value_at_stake      numeric(12,2),
    model_version       text
);
create table if not exists ml.scoring_runs (
    run_id          text primary key,
    scored_at       timestamptz not null,
    model_version   text not null,
    customers       integer not null,
    histogram       jsonb not null,
    bands           jsonb not null
);
create table if not exists ml.churn_alerts (
    alert_id            text not null,
    raised_at           timestamptz not null,
    customer_id         text not null,
    churn_risk_score    integer,
    risk_band           text,
    value_at_stake      numeric(12,2),
    reasons             jsonb,
    recommended_action  text,
    model_version       text,
    delivery            text not null,
    primary key (alert_id, customer_id)
);
create table if not exists ml.churn_alert_state (
    customer_id     text primary key,
    entered_at      timestamptz not null,
    alerted         boolean not null
);
"""
# ml.model_runs of warehouses from before champions: the candidate that scores and what was
# reported about the run; gate_passed now means "the model itself won and met
# CDP_CHURN_MIN_ROC_AUC" (it no longer blocks anything)
MIGRATE = """
alter table ml.model_runs add column if not exists champion text;
alter table ml.model_runs add column if not exists warnings jsonb;
"""
HIST_BINS = np.linspace(0.0, 1.0, 11)


def ensure_tables(conn: psycopg.Connection) -> None:
    conn.execute(DDL)
    old = conn.execute(
        "select not exists (select 1 from information_schema.columns where table_schema = 'ml' "
        "and table_name = 'model_runs' and column_name = 'warnings')"
    ).fetchone()[0]
    if old:
        conn.execute(MIGRATE)


# ---- artifact ---------------------------------------------------------------------------------


def model_version(trained: TrainedChurnModel, seed: int) -> str:
    """Same data, same recipe, same seed => same version (content addressed)."""
    params = {
        name: getattr(c, "estimator", c).get_params(deep=True)
        for name, c in trained.candidates.items()
    }
    folds = len(getattr(trained.candidates.get("model"), "calibrated_classifiers_", ()))
    recipe = json.dumps(
        {"data": trained.data_hash, "features": trained.features, "seed": seed,
         "sklearn": sklearn.__version__, "cutoffs": trained.cutoffs.as_dict(),
         "params": params, "calibration_folds": folds, "champion": trained.champion},
        sort_keys=True,
        default=str,
    )  # fmt: skip
    digest = hashlib.sha256(recipe.encode()).hexdigest()[:10]
    return f"churn-{trained.cutoffs.scoring:%Y%m%d}-{digest}"


def models_dir(home: Path) -> Path:
    return home / "models" / "churn"


def save_artifact(home: Path, version: str, trained: TrainedChurnModel, extra: dict) -> Path:
    """model.joblib + metadata.json, written to a temp dir and renamed into place."""
    target = models_dir(home) / version
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=target.parent))
    joblib.dump(
        {"model": trained.model, "champion": trained.champion,
         "candidates": trained.candidates, "reference": trained.reference},
        tmp / "model.joblib",
    )  # fmt: skip
    metadata = {
        "model_version": version,
        "champion": trained.champion,
        "features": list(trained.features),
        "cutoffs": trained.cutoffs.as_dict(),
        "data_hash": trained.data_hash,
        "metrics": trained.metrics,
        "calibration": {k: v.to_dict("records") for k, v in trained.calibration.items()},
        "holdout_base_rate": trained.holdout_base_rate,
        "rows": trained.rows,
        "sklearn_version": sklearn.__version__,
        "saved_at": datetime.now(UTC).isoformat(),
        **extra,
    }
    (tmp / "metadata.json").write_text(json.dumps(metadata, indent=2, default=str) + "\n")
    if target.exists():  # same version = same content: replace atomically enough
        old = target.with_name(f".{version}-old-{os.getpid()}")
        target.rename(old)
        tmp.rename(target)
        for f in old.iterdir():
            f.unlink()
        old.rmdir()
    else:
        tmp.rename(target)
    return target


def load_artifact(path: Path) -> tuple[object, dict, dict]:
    """(champion scorer, reference values, metadata) of a saved version."""
    if not (path / "model.joblib").exists():
        raise CdpError(f"no churn model at {path}: materialize the churn_model asset first")
    bundle = joblib.load(path / "model.joblib")
    metadata = json.loads((path / "metadata.json").read_text())
    return bundle["model"], bundle["reference"], metadata


# ---- ml.model_runs ----------------------------------------------------------------------------


def record_model_run(
    conn, *, run_id: str, version: str, trained: TrainedChurnModel, horizon_days: int,
    artifact: Path, model_ok: bool, warnings: list[str],
) -> None:  # fmt: skip
    """One row per training run: every candidate's holdout metrics, the champion, and the
    warnings (the model lost, the champion is below the floor); ``gate_passed`` = ``model_ok``."""
    ensure_tables(conn)
    conn.execute(
        """
        insert into ml.model_runs (run_id, trained_at, model_version, cutoffs, metrics,
            horizon_days, data_hash, features, rows, artifact_path, gate_passed, champion,
            warnings)
        values (%s, now(), %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        on conflict (run_id) do update set trained_at = excluded.trained_at,
            model_version = excluded.model_version, metrics = excluded.metrics,
            artifact_path = excluded.artifact_path, gate_passed = excluded.gate_passed,
            champion = excluded.champion, warnings = excluded.warnings
        """,
        (
            run_id, version, json.dumps(trained.cutoffs.as_dict()), json.dumps(trained.metrics),
            horizon_days, trained.data_hash, json.dumps(list(trained.features)),
            json.dumps(trained.rows), str(artifact), model_ok, trained.champion,
            json.dumps(warnings),
        ),
    )  # fmt: skip


_RUN_COLUMNS = (
    "run_id, model_version, artifact_path, metrics, gate_passed, "
    "coalesce(champion, 'model') as champion, coalesce(warnings, '[]'::jsonb) as warnings, "
    "(cutoffs ->> 'scoring')::date as scoring_cutoff, horizon_days, features"
)


def _run(cur) -> dict | None:
    row = cur.fetchone()
    return None if row is None else dict(zip([d.name for d in cur.description], row, strict=True))


def latest_model_run(conn) -> dict | None:
    """The newest training run, whatever its cutoff (what the quality check reports on)."""
    ensure_tables(conn)
    return _run(
        conn.execute(f"select {_RUN_COLUMNS} from ml.model_runs order by trained_at desc limit 1")
    )


def model_run_for(conn, cutoff) -> dict | None:
    """The run to score at ``cutoff`` with: the newest one trained on data before it (its own
    scoring cutoff on or before ``cutoff``: its features and labels end there), so a backtest
    at an older cutoff never uses a model that saw that cutoff's future."""
    ensure_tables(conn)
    return _run(
        conn.execute(
            f"""select {_RUN_COLUMNS} from ml.model_runs
                where (cutoffs ->> 'scoring')::date <= %s
                order by (cutoffs ->> 'scoring')::date desc, trained_at desc limit 1""",
            (cutoff,),
        )
    )


# ---- ml.churn_scores and the score distribution ------------------------------------------------


def write_scores(conn: psycopg.Connection, scores: pd.DataFrame) -> None:
    """Make ml.churn_scores equal ``scores`` in one transaction: customers no longer scored are
    removed, new ones added, and only rows whose score changed are rewritten, so ``scored_at``
    is when a customer's current score was computed and a nightly run that changes nothing
    writes nothing (marts.customer_profiles stays identical)."""
    ensure_tables(conn)
    columns = list(SCORE_COLUMNS)
    conn.execute("create temp table new_churn_scores (like ml.churn_scores)")
    db.copy_csv(conn, "new_churn_scores", columns, db.frame_chunks(scores[columns]))
    compared = [c for c in columns if c not in ("customer_id", "scored_at")]
    conn.execute(
        "delete from ml.churn_scores s where not exists "
        "(select 1 from new_churn_scores n where n.customer_id = s.customer_id)"
    )
    conn.execute(
        f"""
        insert into ml.churn_scores as s ({", ".join(columns)})
        select {", ".join(columns)} from new_churn_scores
        on conflict (customer_id) do update set
            {", ".join(f"{c} = excluded.{c}" for c in columns if c != "customer_id")}
        where ({", ".join(f"s.{c}" for c in compared)})
            is distinct from ({", ".join(f"excluded.{c}" for c in compared)})
        """
    )
    conn.execute("drop table new_churn_scores")


def histogram(probability: np.ndarray) -> list[float]:
    counts, _ = np.histogram(np.clip(probability, 0, 1), bins=HIST_BINS)
    return (counts / max(1, counts.sum())).round(6).tolist()


def psi(expected: list[float], actual: list[float], eps: float = 1e-4) -> float:
    """Population stability index between two binned distributions."""
    e = np.clip(np.asarray(expected, float), eps, None)
    a = np.clip(np.asarray(actual, float), eps, None)
    return float(np.sum((a - e) * np.log(a / e)))


def record_scoring_run(conn, run_id: str, version: str, scores: pd.DataFrame) -> None:
    ensure_tables(conn)
    bands = scores["risk_band"].value_counts().to_dict()
    conn.execute(
        """insert into ml.scoring_runs (run_id, scored_at, model_version, customers, histogram,
            bands) values (%s, now(), %s, %s, %s, %s)
           on conflict (run_id) do update set scored_at = excluded.scored_at,
            histogram = excluded.histogram, bands = excluded.bands""",
        (
            run_id, version, len(scores),
            json.dumps(histogram(scores["churn_probability"].to_numpy())),
            json.dumps({k: int(v) for k, v in bands.items()}),
        ),
    )  # fmt: skip


def last_two_histograms(conn) -> tuple[list[float] | None, list[float] | None]:
    """(previous, latest) score histograms from ml.scoring_runs."""
    ensure_tables(conn)
    rows = conn.execute(
        "select histogram from ml.scoring_runs order by scored_at desc limit 2"
    ).fetchall()
    latest = rows[0][0] if rows else None
    previous = rows[1][0] if len(rows) > 1 else None
    return previous, latest
