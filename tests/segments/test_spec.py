"""Segment files: structure, rule paths, did-you-mean, the exports shape, rule hashes (no DB)."""

from __future__ import annotations

import pytest

from orchestration.segments.spec import (
    EventCondition,
    FieldCondition,
    Group,
    SegmentCondition,
    SegmentError,
    load_directory,
    load_file,
    load_text,
    parse_segment,
    slugify,
)
from orchestration.segments.views import SEGMENTS_DIR

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


def errors(data) -> list[str]:
    with pytest.raises(SegmentError) as info:
        parse_segment(data, "seg.yml")
    return [str(e) for e in info.value.errors]


def test_design_doc_example_parses_with_nested_group():
    spec = load_text(
        """
name: High Value At Risk
description: Customers worth saving
rules:
  logic: AND
  conditions:
    - { field: lifetime_value, operator: greater_than, value: 500 }
    - { field: churn_risk_score, operator: greater_than, value: 70 }
    - logic: OR
      conditions:
        - { field: subscription_status, operator: equals, value: active }
        - { field: orders_count, operator: greater_than_or_equal, value: 3 }
""",
        "x.yml",
    )
    assert spec.slug == "high_value_at_risk"
    nested = spec.rules.conditions[2]
    assert isinstance(nested, Group) and nested.logic == "OR"
    assert nested.conditions[1].path == "rules.conditions[2].conditions[1]"
    assert spec.rule_fields() == [
        "lifetime_value",
        "churn_risk_score",
        "subscription_status",
        "orders_count",
    ]


def test_brief_json_body_and_bare_rules_are_accepted_unchanged():
    import json

    body = load_text(json.dumps(BRIEF_BODY), "--rules")
    bare = parse_segment(BRIEF_BODY["rules"], "--rules")
    assert body.name == "High Value At Risk" and body.description == "Customers worth saving"
    assert body.own_hash == bare.own_hash
    assert [c.field for c in bare.rules.conditions] == ["lifetime_value", "churn_risk_score"]


def test_rule_hash_is_stable_and_tracks_only_rules():
    a = parse_segment(BRIEF_BODY, "a")
    b = parse_segment(
        {**BRIEF_BODY, "description": "other", "exports": [{"destination": "csv"}]}, "b"
    )
    reordered_keys = {
        "rules": {
            "logic": "and",
            "conditions": [
                {"value": 500, "operator": "greater_than", "field": "lifetime_value"},
                {"value": 70, "field": "churn_risk_score", "operator": "greater_than"},
            ],
        },
        "name": "x",
    }
    assert a.own_hash == b.own_hash == parse_segment(reordered_keys, "c").own_hash
    changed = {**BRIEF_BODY, "rules": {**BRIEF_BODY["rules"], "logic": "OR"}}
    assert parse_segment(changed, "d").own_hash != a.own_hash


def test_unknown_operator_suggests_and_names_nested_path():
    msgs = errors(
        {
            "name": "x",
            "rules": {
                "logic": "AND",
                "conditions": [
                    {"field": "a", "operator": "equals", "value": 1},
                    {
                        "logic": "OR",
                        "conditions": [{"field": "b", "operator": "greter_than", "value": 1}],
                    },
                ],
            },
        }
    )
    assert msgs == [
        "rules.conditions[1].conditions[0].operator: unknown operator `greter_than` — did you "
        "mean `greater_than`?"
    ]


def test_every_problem_is_reported_at_once():
    msgs = errors(
        {
            "nam": "x",
            "rules": {
                "logic": "XOR",
                "conditions": [
                    {"field": "a", "operator": "is_set", "value": 3},
                    {"field": "b", "operator": "equals"},
                    "oops",
                    {"logic": "AND", "conditions": []},
                ],
            },
        }
    )
    text = "\n".join(msgs)
    assert "unknown key `nam` in a segment — did you mean `name`?" in text
    assert "name: every segment needs a `name`" in text
    assert "rules.logic: logic must be AND or OR, got `XOR`" in text
    assert "rules.conditions[0].value: operator `is_set` takes no value" in text
    assert "rules.conditions[1].value: operator `equals` needs a `value`" in text
    assert "rules.conditions[2]: expected a condition or a group, got a string" in text
    assert "rules.conditions[3].conditions: a group needs a non-empty list" in text


def test_event_conditions_parse_and_validate():
    spec = parse_segment(
        {
            "name": "x",
            "rules": {
                "logic": "AND",
                "conditions": [
                    {
                        "event": "order_placed",
                        "where": {"product_category": "serum"},
                        "count": {"greater_than_or_equal": 2},
                        "within_last_days": 90,
                    },
                    {"event": "email_opened"},
                ],
            },
        },
        "x",
    )
    first, second = spec.rules.conditions
    assert isinstance(first, EventCondition) and first.count_value == 2
    assert (second.count_operator, second.count_value, second.within_last_days) == (
        "greater_than_or_equal",
        1,
        None,
    )
    assert spec.uses_events()
    msgs = errors(
        {
            "name": "x",
            "rules": {
                "conditions": [
                    {"event": "order_plced"},
                    {
                        "event": "order_placed",
                        "where": {"categry": "x"},
                        "count": {"more": 1},
                        "within_last_days": -3,
                    },
                    {"event": "site_visit", "count": {"between": [3, 1]}},
                ]
            },
        }
    )
    text = "\n".join(msgs)
    assert (
        "rules.conditions[0].event: unknown event `order_plced` — did you mean `order_placed`?"
        in text
    )
    assert (
        "rules.conditions[1].where.categry: event `order_placed` has no property `categry`" in text
    )
    assert "rules.conditions[1].count: unknown count operator `more`" in text
    assert "rules.conditions[1].within_last_days: `-3` is not a whole number of days > 0" in text
    assert "rules.conditions[2].count.between" in text


def test_segment_conditions():
    spec = parse_segment(
        {
            "name": "x",
            "rules": {
                "conditions": [
                    {"operator": "in_segment", "value": "vip_customers"},
                    {
                        "field": "segment",
                        "operator": "not_in_segment",
                        "value": "churned_high_value",
                    },
                ]
            },
        },
        "x",
    )
    assert [type(c) for c in spec.rules.conditions] == [SegmentCondition, SegmentCondition]
    assert spec.referenced_segments() == ["vip_customers", "churned_high_value"]


def test_exports_shape_of_the_activation_issue():
    spec = parse_segment(
        {
            **BRIEF_BODY,
            "exports": [
                {"destination": "csv", "columns": ["customer_id", "email", "lifetime_value"]},
                {"destination": "parquet"},
                {
                    "destination": "webhook",
                    "url": "https://hooks.example.com/cdp",
                    "secret_env": "CDP_WEBHOOK_SECRET",
                    "batch_size": 500,
                },
            ],
        },
        "x",
    )
    assert [e.destination for e in spec.exports] == ["csv", "parquet", "webhook"]
    assert spec.exports[0].columns == ("customer_id", "email", "lifetime_value")
    assert spec.exports[2].batch_size == 500 and spec.exports[2].secret_env == "CDP_WEBHOOK_SECRET"
    msgs = errors(
        {
            **BRIEF_BODY,
            "exports": [
                {"destination": "csvv"},
                {"destination": "csv", "url": "https://x"},
                {
                    "destination": "webhook",
                    "url": "ftp://x",
                    "secret_env": "lower-case",
                    "batch_size": 0,
                    "retries": 3,
                },
                {"destination": "csv", "columns": "email"},
            ],
        }
    )
    text = "\n".join(msgs)
    assert "exports[0].destination: unknown destination `csvv` — did you mean `csv`?" in text
    assert "exports[1]: unknown key `url` in a csv export" in text
    assert "exports[2]: unknown key `retries` in a webhook export" in text
    assert "exports[2].url: url must be an http(s) URL" in text
    assert "exports[2].secret_env" in text and "exports[2].batch_size" in text
    assert "exports[3].columns: columns must be a non-empty list" in text
    assert "exports must be a list" in errors({**BRIEF_BODY, "exports": {"destination": "csv"}})[0]


def test_slugs():
    assert slugify("High Value At Risk") == "high_value_at_risk"
    assert slugify("  VIP — 2025! ") == "vip_2025"
    assert slugify("2025 VIPs") == "s_2025_vips"
    assert "reserved" in errors({**BRIEF_BODY, "slug": "definitions"})[0]
    assert "slug `Bad-Slug`" in errors({**BRIEF_BODY, "slug": "Bad-Slug"})[0]


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text("name: x\nrules:\n  logic: AND\n  conditions: [\n")
    with pytest.raises(SegmentError) as info:
        load_file(path)
    assert str(path) in str(info.value) and "not valid YAML/JSON at line" in str(info.value)


def test_directory_loading_isolates_bad_files_and_duplicate_slugs(tmp_path):
    (tmp_path / "a.yml").write_text(
        "name: Alpha\nrules: {conditions: [{field: x, operator: is_set}]}\n"
    )
    (tmp_path / "b.yml").write_text(
        "name: alpha\nrules: {conditions: [{field: x, operator: is_set}]}\n"
    )
    (tmp_path / "c.yml").write_text("name: Gamma\nrules: {conditions: []}\n")
    specs, errs = load_directory(tmp_path)
    assert list(specs) == ["alpha"]
    assert len(errs) == 2
    assert any("also used by" in str(e) for e in errs)


def test_prebuilt_segments_are_valid_and_documented():
    specs, errs = load_directory(SEGMENTS_DIR)
    assert not errs
    for spec in specs.values():
        assert spec.description and spec.owner
    # what matters is not the exact files but that every kind of shop gets segments that make
    # sense for it: the subscription segments are not built where there are none
    by_kind = {
        kind: {slug for slug, s in specs.items() if s.skip_note(kind) is None}
        for kind in ("subscription", "one_off")
    }
    assert {"vip_customers", "at_risk_subscribers", "prime_for_subscription",
            "churned_high_value", "high_value_at_risk"} <= by_kind["subscription"]  # fmt: skip
    assert {"lapsing_repeat_buyers", "one_and_done", "top_spenders",
            "high_value_at_risk"} <= by_kind["one_off"]  # fmt: skip
    subscription_fields = {"subscription_status", "is_subscriber", "is_prime_for_subscription"}
    for slug in by_kind["one_off"]:
        assert not subscription_fields & set(specs[slug].rule_fields()), slug
    for slug in by_kind["subscription"] - by_kind["one_off"]:
        assert specs[slug].applies_to == "subscription"


def test_applies_to_is_validated_and_explains_a_skip():
    rules = {"conditions": [{"field": "orders_count", "operator": "equals", "value": 1}]}
    spec = parse_segment({"name": "S", "applies_to": "subscription", "rules": rules}, "s.yml")
    assert spec.skip_note("subscription") is None
    note = spec.skip_note("one_off")
    assert note and "needs a shop with subscriptions" in note and "one_off shop" in note
    assert spec.skip_note("unknown") is None  # staging not built: nothing is skipped
    assert parse_segment({"name": "A", "rules": rules}, "a.yml").applies_to == "any"
    with pytest.raises(SegmentError) as exc:
        parse_segment({"name": "B", "applies_to": "subscriptions", "rules": {}}, "b.yml")
    assert "applies_to" in str(exc.value) and "did you mean `subscription`" in str(exc.value)


def test_high_value_at_risk_is_the_briefs_rule():
    specs, _ = load_directory(SEGMENTS_DIR)
    hvar = specs["high_value_at_risk"].rules.conditions
    assert [(c.field, c.operator, c.value) for c in hvar if isinstance(c, FieldCondition)] == [
        ("lifetime_value", "greater_than", 500),
        ("churn_risk_score", "greater_than", 70),
    ]
