"""Churn alerts: customers worth more than a threshold who newly enter the high-risk bands.

``ml.churn_alert_state`` remembers who is in the high bands (high, critical). A customer is
alerted when they enter it with value at stake above the threshold; they are not alerted again
until they leave the bands and re-enter. Each alert is recorded in ``ml.churn_alerts`` and POSTed
as plain JSON to the configured webhook, retried like any webhook (``activation.alerting``); an
alert still failing is re-sent, under the same ``alert_id`` / ``Idempotency-Key``, by the next run
before anything new. Without a URL it is only logged."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pandas as pd
import psycopg

from orchestration.activation.alerting import ALERT_POLICY, post_alert
from orchestration.activation.delivery import RetryPolicy
from orchestration.churn import store
from orchestration.churn.actions import HIGH_BANDS

NEW_ENTRANTS_SQL = """
select s.customer_id, s.churn_risk_score, s.risk_band, s.value_at_stake::float8,
       s.top_drivers, s.early_warnings, s.recommended_action, s.model_version
from ml.churn_scores as s
left join ml.churn_alert_state as st on st.customer_id = s.customer_id
where s.risk_band = any(%(bands)s) and st.customer_id is null
order by s.value_at_stake desc, s.customer_id
"""


@dataclass
class AlertResult:
    alert_id: str | None
    customers: list[dict]
    delivery: str  # "posted 200", "failed: ...", "logged (no webhook URL)", "none"
    resent: int = 0  # earlier failed alerts delivered by this run


def _payload(alert_id: str, rows: list[dict], min_value: float) -> dict:
    return {
        "type": "churn.high_risk_entered",
        "alert_id": alert_id,
        "raised_at": datetime.now(UTC).isoformat(),
        "threshold_value_at_stake": min_value,
        "customers": rows,
    }


def raise_alerts(
    conn: psycopg.Connection,
    *,
    min_value: float,
    webhook_url: str | None,
    log: Callable[[str], None] = lambda m: None,
    client: httpx.Client | None = None,
    policy: RetryPolicy = ALERT_POLICY,
) -> AlertResult:
    """Update band membership from ml.churn_scores and alert on valuable new entrants."""
    store.ensure_tables(conn)
    resent = _resend_failed(conn, webhook_url, log, client, policy) if webhook_url else 0
    cur = conn.execute(NEW_ENTRANTS_SQL, {"bands": list(HIGH_BANDS)})
    entrants = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
    # who left the bands may be alerted again when they come back
    conn.execute(
        """delete from ml.churn_alert_state st where not exists (
               select 1 from ml.churn_scores s
               where s.customer_id = st.customer_id and s.risk_band = any(%s))""",
        (list(HIGH_BANDS),),
    )
    worth = entrants[entrants["value_at_stake"] > min_value]
    now = datetime.now(UTC)
    conn.execute(
        """insert into ml.churn_alert_state (customer_id, entered_at, alerted)
           select s.customer_id, %(now)s, coalesce(s.value_at_stake > %(min)s, false)
           from ml.churn_scores as s
           where s.risk_band = any(%(bands)s)
           on conflict (customer_id) do nothing""",
        {"now": now, "min": min_value, "bands": list(HIGH_BANDS)},
    )
    if worth.empty:
        conn.commit()
        return AlertResult(None, [], "none", resent)
    alert_id = uuid.uuid4().hex
    rows = [
        {
            "customer_id": r.customer_id,
            "churn_risk_score": int(r.churn_risk_score),
            "risk_band": r.risk_band,
            "value_at_stake": round(float(r.value_at_stake), 2),
            "why": list(r.top_drivers or []) + list(r.early_warnings or []),
            "recommended_action": r.recommended_action,
            "model_version": r.model_version,
        }
        for r in worth.itertuples(index=False)
    ]  # one alert's customers: bounded by who newly entered the band, not by the customer base
    delivery = _deliver(_payload(alert_id, rows, min_value), webhook_url, log, client, policy)
    with conn.cursor() as c:
        c.executemany(
            """insert into ml.churn_alerts (alert_id, raised_at, customer_id, churn_risk_score,
                   risk_band, value_at_stake, reasons, recommended_action, model_version, delivery)
               values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            [
                (alert_id, now, r["customer_id"], r["churn_risk_score"], r["risk_band"],
                 r["value_at_stake"], json.dumps(r["why"]), r["recommended_action"],
                 r["model_version"], delivery)
                for r in rows
            ],
        )  # fmt: skip
    conn.commit()
    log(f"churn alert {alert_id}: {len(rows)} customer(s) entered the high-risk bands ({delivery})")
    return AlertResult(alert_id, rows, delivery, resent)


def _deliver(payload: dict, url: str | None, log, client, policy: RetryPolicy) -> str:
    if not url:
        log(f"no CDP_ALERT_WEBHOOK_URL set: alert {payload['alert_id']} logged only")
        return "logged (no webhook URL)"
    result = post_alert(
        url, payload, idempotency_key=payload["alert_id"], policy=policy, client=client, log=log
    )
    if not result.ok:
        log(f"churn alert webhook {url}: {result.status}; re-sent by the next run")
    return result.status


def _resend_failed(conn: psycopg.Connection, url: str, log, client, policy: RetryPolicy) -> int:
    """Re-send alerts whose delivery failed, oldest first; returns how many got through."""
    cur = conn.execute(
        """select alert_id, raised_at, customer_id, churn_risk_score, risk_band,
                  value_at_stake::float8, reasons, recommended_action, model_version
           from ml.churn_alerts where delivery like 'failed%'
           order by raised_at, alert_id, value_at_stake desc, customer_id"""
    )
    alerts: dict[str, dict] = {}
    for aid, raised, cid, score, band, value, why, action, version in cur.fetchall():
        alert = alerts.setdefault(
            aid,
            {"type": "churn.high_risk_entered", "alert_id": aid,
             "raised_at": raised.isoformat(), "resent": True, "customers": []},
        )  # fmt: skip
        alert["customers"].append(
            {"customer_id": cid, "churn_risk_score": score, "risk_band": band,
             "value_at_stake": round(value, 2), "why": list(why or []),
             "recommended_action": action, "model_version": version}
        )  # fmt: skip
    delivered = 0
    for aid, payload in alerts.items():
        status = _deliver(payload, url, log, client, policy)
        ok = status.startswith("posted")
        conn.execute(
            "update ml.churn_alerts set delivery = %s where alert_id = %s",
            (f"{status} (resent)" if ok else status, aid),
        )
        conn.commit()
        delivered += ok
        if not ok:
            break  # the receiver is still down: keep the rest for the next run
    if alerts:
        log(f"churn alerts: re-sent {delivered} of {len(alerts)} earlier failed alert(s)")
    return delivered


def alert_model_quality(
    *,
    run_id: str,
    model_version: str,
    champion: str,
    metrics: dict[str, dict],
    warnings: list[str],
    webhook_url: str | None,
    log: Callable[[str], None] = lambda m: None,
    client: httpx.Client | None = None,
    policy: RetryPolicy = ALERT_POLICY,
) -> str:
    """Tell the operator that a training run's model lost to a baseline or that the champion is
    below the ROC-AUC floor (scores were produced with the champion anyway). One alert per
    training run: its id, and so the webhook's ``Idempotency-Key``, is derived from the run."""
    payload = {
        "type": "churn.model_quality",
        "alert_id": f"churn-model-{run_id}",
        "raised_at": datetime.now(UTC).isoformat(),
        "model_version": model_version,
        "champion": champion,
        "holdout_roc_auc": {name: m["roc_auc"] for name, m in metrics.items()},
        "warnings": warnings,
    }
    log(f"churn model {model_version}: " + "; ".join(warnings))
    return _deliver(payload, webhook_url, log, client, policy)
