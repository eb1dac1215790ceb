"""`cdp segment test | list | fields | refresh` end to end through the typer app."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from orchestration.cli import app

BRIEF_BODY = {
    "name": "High Value At Risk",
    "description": "Customers worth saving",
    "rules": {
        "conditions": [
            {"field": "lifetime_value", "operator": "greater_than", "value": 500},
            {"field": "churn_risk_score", "operator": "greater_than", "value": 70},
        ],
        "logic": "AND",
    },
}


@pytest.fixture
def cdp(segment_db, monkeypatch):
    from orchestration.runtime.settings import settings

    monkeypatch.setenv("CDP_DATABASE_URL", segment_db)
    settings.cache_clear()
    runner = CliRunner()
    yield lambda *args: runner.invoke(app, ["segment", *args])
    settings.cache_clear()


def _objects(conn) -> tuple:
    return conn.execute(
        "select (select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = 'segments'),"
        " (select count(*) from information_schema.tables where table_schema = 'segments')"
    ).fetchone()


def test_test_prints_figures_and_creates_nothing(cdp, conn):
    before = _objects(conn)
    result = cdp("test", "--rules", json.dumps(BRIEF_BODY), "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out) >= {
        "count",
        "share",
        "ltv_total",
        "ltv_avg",
        "churn_risk_score_avg",
        "sample",
        "sql",
        "errors",
    }
    # lifetime_value > 500 and churn > 70: c02 (800, 85) and c03 (600, 90)
    assert out["count"] == 2 and out["share"] == 0.25 and out["ltv_total"] == 1400.0
    assert out["ltv_avg"] == 700.0 and out["churn_risk_score_avg"] == 87.5
    assert [r["customer_id"] for r in out["sample"]] == ["c02", "c03"]
    assert "email" not in json.dumps(out["sample"])
    assert out["errors"] == [] and out["sql"].startswith("select")
    assert _objects(conn) == before

    bare = cdp("test", "--rules", json.dumps(BRIEF_BODY["rules"]), "--json")
    assert json.loads(bare.stdout)["count"] == 2

    human = cdp("test", "--rules", json.dumps(BRIEF_BODY))
    assert human.exit_code == 0 and "2 members of 8 (25.0%)" in human.stdout
    assert "c02" in human.stdout and "sql:" in human.stdout


def test_test_a_file_and_invalid_rules_exit_nonzero(cdp, tmp_path):
    path = tmp_path / "seg.yml"
    path.write_text(
        "name: Seg\nrules:\n  logic: AND\n  conditions:\n"
        "    - {field: subscription_status, operator: equals, value: active}\n"
        "    - logic: OR\n      conditions:\n"
        "        - {field: lifetime_valu, operator: greater_than, value: 5}\n"
        "        - {field: orders_count, operator: contains, value: 3}\n"
    )
    result = cdp("test", str(path), "--json")
    assert result.exit_code == 1
    errors = json.loads(result.stdout)["errors"]
    assert [(e["path"], e["source"]) for e in errors] == [
        ("rules.conditions[1].conditions[0].field", str(path)),
        ("rules.conditions[1].conditions[1].operator", str(path)),
    ]
    assert "did you mean `lifetime_value`" in errors[0]["message"]
    human = cdp("test", str(path))
    assert human.exit_code == 1 and "2 problem(s)" in human.stderr
    assert "rules.conditions[1].conditions[0].field: unknown field `lifetime_valu`" in human.stderr

    path.write_text(
        path.read_text()
        .replace("lifetime_valu,", "lifetime_value,")
        .replace("contains, value: 3", "greater_than, value: 10")
    )
    ok = cdp("test", str(path), "--json")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["count"] == 3  # c01, c02, c08

    bad_json = cdp("test", "--rules", "{not json", "--json")
    assert bad_json.exit_code == 1 and "not valid JSON" in bad_json.stdout
    neither = cdp("test")
    assert neither.exit_code == 1 and "give a segment file or --rules" in neither.stderr
    missing = cdp("test", str(tmp_path / "nope.yml"))
    assert missing.exit_code == 1 and "does not exist" in missing.stderr


def test_fields_refresh_and_list(cdp, tmp_path):
    fields = json.loads(cdp("fields", "--json").stdout)
    by_name = {f["field"]: f for f in fields["fields"]}
    assert by_name["lifetime_value"]["type"] == "number"
    assert by_name["lifetime_value"]["description"] == "Net lifetime value."
    assert "contains" in by_name["acquisition_channel"]["operators"]
    assert by_name["last_order_at"]["type"] == "date" and "email_hash" not in by_name
    assert {e["event"] for e in fields["events"]} == {
        "order_placed",
        "email_opened",
        "email_clicked",
        "site_visit",
        "ticket_opened",
        "subscription_skipped",
    }
    assert "lifetime_value" in cdp("fields").stdout

    (tmp_path / "vip.yml").write_text(
        "name: VIP\nowner: crm@example.com\n"
        "rules: {conditions: [{field: is_vip, operator: is_true}]}\n"
    )
    result = cdp("refresh", "--dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "vip: 2 members (25.0%), +2 entered, -0 exited (rebuilt)" in result.stdout
    again = cdp("refresh", "--dir", str(tmp_path), "vip")
    assert "+0 entered, -0 exited" in again.stdout and "rebuilt" not in again.stdout
    unknown = cdp("refresh", "--dir", str(tmp_path), "vipp")
    assert unknown.exit_code == 1 and "no segment vipp" in unknown.stderr

    listed = json.loads(cdp("list", "--json").stdout)
    vip = next(r for r in listed if r["slug"] == "vip")
    assert vip["members"] == 2 and vip["view_exists"] and vip["last_refreshed_at"]
    assert cdp("list").exit_code == 0
