"""Churn alerts against a real local HTTP receiver: retried through 503s, final on a 400, and an
alert that could not be delivered is re-sent (same alert id) by the next run."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from orchestration.activation.alerting import post_alert
from orchestration.activation.delivery import RetryPolicy
from orchestration.churn import alerts, store
from orchestration.runtime import db

FAST = RetryPolicy(max_attempts=3, timeout_s=2, concurrency=1, base_s=0.01, max_wait_s=2)


class ScriptedReceiver:
    """Answers each POST with the next status of ``script`` (then 200), keeps what it saw."""

    def __init__(self, script=(), retry_after: str = "0", port: int = 0):
        self.script = list(script)
        self.retry_after = retry_after
        self.requests: list[tuple[str, dict]] = []  # (Idempotency-Key, body)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.requests.append((self.headers.get("Idempotency-Key"), body))
                status = receiver.script.pop(0) if receiver.script else 200
                self.send_response(status)
                if status in (429, 503):
                    self.send_header("Retry-After", receiver.retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alerts"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def score(conn, customer_id: str, band: str, value: float) -> None:
    conn.execute(
        "insert into ml.churn_scores (customer_id, scored_at, churn_probability, "
        "churn_risk_score, risk_band, top_drivers, early_warnings, recommended_action, "
        "value_at_stake, model_version) values (%s, now(), 0.8, 80, %s, "
        "'[\"no order in 95 days\"]', '[]', 'call them', %s, 'v1') "
        "on conflict (customer_id) do update set risk_band = excluded.risk_band",
        (customer_id, band, value),
    )


def deliveries(conn) -> dict[str, str]:
    return dict(conn.execute("select customer_id, delivery from ml.churn_alerts").fetchall())


def test_alerts_are_retried_and_a_failed_alert_is_resent_by_the_next_run(warehouse_url):
    with db.connect(warehouse_url) as conn:
        store.ensure_tables(conn)
        score(conn, "cus_a", "critical", 900)
        score(conn, "cus_low", "low", 900)
        conn.commit()
        # two 503s with Retry-After, then accepted: one alert, three attempts, one key
        with ScriptedReceiver([503, 503]) as hook:
            first = alerts.raise_alerts(conn, min_value=100, webhook_url=hook.url, policy=FAST)
        assert first.delivery == "posted 200"
        assert [c["customer_id"] for c in first.customers] == ["cus_a"]
        assert len(hook.requests) == 3 and {k for k, _ in hook.requests} == {first.alert_id}

        # the receiver is down for a whole run: recorded as failed, nothing lost
        port = free_port()
        score(conn, "cus_b", "high", 500)
        conn.commit()
        down = alerts.raise_alerts(
            conn, min_value=100, webhook_url=f"http://127.0.0.1:{port}/alerts", policy=FAST
        )
        assert down.delivery.startswith("failed: ConnectError after 3 attempts")
        assert deliveries(conn)["cus_b"] == down.delivery

        # back up: the next run (nothing new) re-sends the failed alert under its own id
        with ScriptedReceiver(port=port) as hook:
            again = alerts.raise_alerts(conn, min_value=100, webhook_url=hook.url, policy=FAST)
        assert again.customers == [] and again.resent == 1
        [(key, body)] = hook.requests
        assert key == body["alert_id"] == down.alert_id and body["resent"] is True
        assert [c["customer_id"] for c in body["customers"]] == ["cus_b"]
        assert body["customers"][0]["why"] == ["no order in 95 days"]
        assert deliveries(conn) == {"cus_a": "posted 200", "cus_b": "posted 200 (resent)"}


@pytest.mark.parametrize(
    ("script", "retry_after", "status", "attempts"),
    [
        ([400], "0", "failed: HTTP 400", 1),  # the receiver rejects it: retrying cannot help
        ([429, 500], "0", "posted 200", 3),
        ([503, 503, 503], "0", "failed: HTTP 503 after 3 attempts", 3),
        ([503], "3600", "failed: HTTP 503 (Retry-After 3600s)", 1),  # beyond the wait cap
    ],
)
def test_post_alert_retries_only_what_is_retryable(script, retry_after, status, attempts):
    with ScriptedReceiver(script, retry_after=retry_after) as hook:
        result = post_alert(hook.url, {"text": "x"}, idempotency_key="k1", policy=FAST)
    assert (result.status, result.attempts) == (status, attempts)
    assert len(hook.requests) == attempts and result.ok == status.startswith("posted")


def test_a_weak_model_is_alerted_once_per_training_run_and_retried():
    metrics = {
        "model": {"roc_auc": 0.70},
        "rfm_baseline": {"roc_auc": 0.72},
        "recency_baseline": {"roc_auc": 0.64},
        "bgnbd_baseline": {"roc_auc": 0.71},
    }
    warnings = ["the model (holdout ROC-AUC 0.7000) does not beat rfm_baseline (0.7200)"]
    with ScriptedReceiver([503]) as hook:
        delivery = alerts.alert_model_quality(
            run_id="run-1", model_version="churn-x", champion="rfm_baseline", metrics=metrics,
            warnings=warnings, webhook_url=hook.url, policy=FAST,
        )  # fmt: skip
    assert delivery == "posted 200"
    assert [k for k, _ in hook.requests] == ["churn-model-run-1", "churn-model-run-1"]
    body = hook.requests[-1][1]
    assert body["type"] == "churn.model_quality" and body["champion"] == "rfm_baseline"
    assert body["warnings"] == warnings and body["holdout_roc_auc"]["model"] == 0.70
    logged = []
    assert (
        alerts.alert_model_quality(
            run_id="run-2",
            model_version="churn-x",
            champion="rfm_baseline",
            metrics=metrics,
            warnings=warnings,
            webhook_url=None,
            log=logged.append,
        )  # fmt: skip
        == "logged (no webhook URL)"
    )
    assert any("does not beat rfm_baseline" in m for m in logged)
