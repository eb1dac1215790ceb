"""Webhook delivery against a local HTTP receiver: signatures, retries honouring Retry-After,
a dropped connection, deduplication on webhook-id, the ledger, and the backlog after an outage."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from orchestration.activation.delivery import RetryPolicy, parse_retry_after
from orchestration.activation.webhooks import SignatureError, sign, verify
from orchestration.runtime import db


def export(url, kit, segments_dir, tmp_path, run_id, policy=None, **kw):
    env = {"CDP_TEST_SECRET": kit.SECRET}
    return kit.export(url, segments_dir, tmp_path, run_id, policy=policy, env=env, **kw)


def webhook(url, batch_size=4, **extra):
    return {
        "destination": "webhook",
        "url": url,
        "secret_env": "CDP_TEST_SECRET",
        "batch_size": batch_size,
        **extra,
    }


def ledger(url):
    with db.connect(url) as conn:
        return conn.execute(
            "select delivery_id, batch, status, attempt_count, http_status, last_error, attempts, "
            "body_ciphertext is null from activation.deliveries order by export_id, batch"
        ).fetchall()


def test_signature_is_standard_webhooks_hmac_over_id_timestamp_body(kit):
    body, ts = b'{"a":1}', int(time.time())
    key = base64.b64decode(kit.SECRET.removeprefix("whsec_"))
    expected = base64.b64encode(
        hmac.new(key, f"msg_1.{ts}.".encode() + body, hashlib.sha256).digest()
    ).decode()
    assert sign(kit.SECRET, "msg_1", ts, body) == f"v1,{expected}"
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(ts),
        "webhook-signature": f"v1,bogus v1,{expected}",
    }
    assert verify(kit.SECRET, headers, body) == "msg_1"
    with pytest.raises(SignatureError):
        verify(kit.SECRET, headers, b'{"a":2}')  # tampered body
    with pytest.raises(SignatureError):
        verify(kit.SECRET, headers, body, now=ts + 3600)  # replayed an hour later
    assert (
        sign("plain-secret", "m", 1, b"x")
        == "v1,"
        + base64.b64encode(hmac.new(b"plain-secret", b"m.1.x", hashlib.sha256).digest()).decode()
    )


def test_retry_after_parses_seconds_and_http_dates():
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    policy = RetryPolicy(base_s=1, max_wait_s=60)
    rng = __import__("random").Random(1)
    waits = [policy.backoff(n, rng) for n in range(1, 9)]
    caps = [min(60, 2 ** (n - 1)) for n in range(1, 9)]  # doubling, capped; half is jitter
    assert all(cap / 2 <= w <= cap for cap, w in zip(caps, waits, strict=True))


def test_every_member_arrives_once_through_503s_and_a_dropped_connection(
    act_db, kit, segments_dir, tmp_path, receiver
):
    hook = receiver(status_first_attempts=3, retry_after="1", drop_once=True).start()
    kit.write_segment_file(segments_dir, kit.SLUG, [webhook(hook.url)])
    started = time.monotonic()
    result = export(act_db, kit, segments_dir, tmp_path, "run-hook0001")
    elapsed = time.monotonic() - started
    with db.connect(act_db) as conn:
        members = kit.view_members(conn)
    report = result.deliveries[0]
    assert report.batches == 5 and report.delivered == 5 and report.failed == 0
    got = hook.members()
    assert sorted(got["entered"]) == sorted(members) and got["exited"] == []  # all, once each
    assert hook.bad_signatures == 0
    assert hook.unavailable == 3 and hook.dropped == 1
    assert hook.duplicates == 1  # the dropped batch was re-sent under the same id and deduped
    assert len(hook.processed) == 5
    assert elapsed >= 1.0  # Retry-After: 1 was honoured
    rows = ledger(act_db)
    assert all(r[2] == "delivered" and r[4] == 200 and r[7] for r in rows)  # bodies dropped
    retried = [r for r in rows if r[3] > 1]
    # three 503s and one dropped connection, each followed by one retry
    assert sum(r[3] - 1 for r in rows) == 4 == report.retries
    waits = [a["wait_s"] for r in retried for a in r[6] if a["http_status"] == 503]
    assert len(waits) == 3 and all(w >= 1.0 for w in waits)
    errors = [a["error"] for r in retried for a in r[6] if a["http_status"] is None]
    assert len(errors) == 1 and errors[0].startswith("connection error")
    assert {r[0] for r in rows} == set(hook.processed)  # the webhook-id is the delivery id
    with db.connect(act_db) as conn:
        audit = conn.execute(
            "select rows, details from audit.events where action = 'segment.delivered'"
        ).fetchall()
    assert audit[0][0] == len(members) and audit[0][1]["retries"] == 4


def test_receiver_down_for_a_whole_run_gets_the_backlog_next_run(
    act_db, kit, segments_dir, tmp_path, receiver
):
    port = kit.free_port()
    url = f"http://127.0.0.1:{port}/hooks/cdp"
    kit.write_segment_file(segments_dir, kit.SLUG, [webhook(url, batch_size=8)])
    policy = RetryPolicy(max_attempts=2, timeout_s=2, concurrency=2, base_s=0.01)
    down = export(act_db, kit, segments_dir, tmp_path, "run-down0001", policy=policy)
    assert down.deliveries[0].failed == 3 and down.failed_batches == 3
    rows = ledger(act_db)
    assert [(r[2], r[3]) for r in rows] == [("failed", 2)] * 3
    assert all(r[5].startswith("connection error") for r in rows)
    backlog_ids = [r[0] for r in rows]

    with db.connect(act_db, autocommit=True) as conn:  # meanwhile, one member leaves
        conn.execute(
            "update marts.customer_profiles set lifetime_value = 0 where customer_id = 'cus_00060'"
        )
        kit.refresh(conn)
        members = kit.view_members(conn)
    hook = receiver().start(port)
    after = export(act_db, kit, segments_dir, tmp_path, "run-back0002")
    report = after.deliveries[0]
    assert report.backlog_resent == 3 and report.delivered == 4 and report.failed == 0
    got = hook.members()
    # the first run's 20 entered (cus_00060 among them) then the second run's exit
    assert sorted(got["entered"]) == sorted(members | {"cus_00060"})
    assert got["exited"] == ["cus_00060"]
    assert set(backlog_ids) <= set(hook.processed)  # same ids as in the failed run
    assert all(r[2] == "delivered" for r in ledger(act_db))
    assert [r[3] for r in ledger(act_db)][:3] == [3, 3, 3]  # 2 failed attempts + 1 delivered


def test_client_errors_are_not_retried(act_db, kit, segments_dir, tmp_path, receiver):
    hook = receiver(always_status=400).start()
    kit.write_segment_file(segments_dir, kit.SLUG, [webhook(hook.url, batch_size=100)])
    result = export(act_db, kit, segments_dir, tmp_path, "run-4000aaaa")
    assert result.failed_batches == 1 and sum(hook.attempts.values()) == 1
    (row,) = ledger(act_db)
    assert row[2:5] == ("failed", 1, 400) and not row[7]  # body kept for the next export


def test_retry_after_beyond_the_cap_leaves_the_batch_for_later(
    act_db, kit, segments_dir, tmp_path, receiver
):
    hook = receiver(status_first_attempts=99, retry_after="3600").start()
    kit.write_segment_file(segments_dir, kit.SLUG, [webhook(hook.url, batch_size=100)])
    started = time.monotonic()
    result = export(act_db, kit, segments_dir, tmp_path, "run-later001")
    assert time.monotonic() - started < 5 and result.failed_batches == 1
    (row,) = ledger(act_db)
    assert row[2] == "failed" and "Retry-After 3600s exceeds" in row[5]


def test_two_webhooks_of_one_segment_each_get_every_member(
    act_db, kit, segments_dir, tmp_path, receiver
):
    # the ledger keys on the delivery id: two endpoints must not share one, or the second
    # endpoint's batches would be taken for the first's and never sent
    first, second = receiver().start(), receiver().start()
    kit.write_segment_file(segments_dir, kit.SLUG, [webhook(first.url), webhook(second.url)])
    result = export(act_db, kit, segments_dir, tmp_path, "run-twohooks1")
    with db.connect(act_db) as conn:
        members = kit.view_members(conn)
    assert [r.delivered for r in result.deliveries] == [5, 5]
    for hook in (first, second):
        assert sorted(hook.members()["entered"]) == sorted(members)
    assert not set(first.processed) & set(second.processed)
    assert len(ledger(act_db)) == 10
