"""Every operator, both logics, nesting, composition, events and hostile values, against a real
PostgreSQL with the hand-written warehouse of conftest.py (expected members read off its rows)."""

from __future__ import annotations

import pytest

from orchestration.segments.compiler import compile_segment
from orchestration.segments.spec import SegmentError, parse_segment

from .conftest import HOSTILE_CHANNEL

ALL = {"c01", "c02", "c03", "c04", "c05", "c06", "c07", "c08"}


def seg(*conditions, logic="AND", name="t", slug=None):
    data = {"name": name, "rules": {"logic": logic, "conditions": list(conditions)}}
    if slug:
        data["slug"] = slug
    return parse_segment(data, f"{name}.yml")


def c(field, operator, value=None, **extra):
    out = {"field": field, "operator": operator, **extra}
    if value is not None:
        out["value"] = value
    return out


def members(conn, catalog, spec, registry=None) -> set[str]:
    compiled = compile_segment(spec, catalog, registry)
    return {row[0] for row in conn.execute(compiled.query).fetchall()}


def problems(catalog, spec, registry=None) -> list[str]:
    with pytest.raises(SegmentError) as info:
        compile_segment(spec, catalog, registry)
    return [str(e) for e in info.value.errors]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        # numbers
        (c("lifetime_value", "equals", 800), {"c02"}),
        (c("lifetime_value", "equals", "45.5"), {"c04"}),
        (c("churn_risk_score", "not_equals", 85), ALL - {"c02"}),  # unset included
        (c("lifetime_value", "greater_than", 500), {"c01", "c02", "c03", "c08"}),
        (c("orders_count", "greater_than_or_equal", 12), {"c01", "c08"}),
        (c("lifetime_value", "less_than", 250), {"c04", "c05"}),
        (c("lifetime_value", "less_than_or_equal", 250), {"c04", "c05", "c06"}),
        (c("lifetime_value", "between", [300, 800]), {"c02", "c03", "c07"}),
        (c("lifetime_value", "greater_than", -1.5), ALL),
        # text
        (c("subscription_status", "equals", "active"), {"c01", "c02", "c08"}),
        (c("subscription_status", "not_equals", "active"), ALL - {"c01", "c02", "c08"}),
        (c("acquisition_channel", "not_equals", "email"), ALL - {"c02"}),  # null included
        (c("subscription_status", "in", ["paused", "cancelled"]), {"c03", "c07"}),
        (c("subscription_status", "not_in", ["active", "never"]), {"c03", "c07"}),
        (c("acquisition_channel", "not_in", ["email", "unknown"]), ALL - {"c02", "c05"}),
        (c("acquisition_channel", "contains", "EMAIL"), {"c02", "c08"}),
        (c("acquisition_channel", "starts_with", "Paid"), {"c01", "c06"}),
        (c("acquisition_channel", "contains", "%"), set()),  # no LIKE wildcards
        # booleans (null is neither)
        (c("is_vip", "is_true"), {"c01", "c08"}),
        (c("is_vip", "is_false"), {"c02", "c03", "c04", "c05", "c06"}),
        # dates, relative to as_of_date
        (c("last_order_at", "within_last_days", 30), {"c01", "c04", "c08"}),
        (c("last_order_at", "more_than_days_ago", 150), {"c03", "c06"}),
        (c("first_order_date", "before", "2024-02-01"), {"c01", "c03"}),
        (c("first_order_date", "after", "2025-06-01"), {"c04"}),
        (c("first_order_date", "after", "2024-02-28"), {"c02", "c04", "c06", "c07", "c08"}),
        (c("last_order_at", "before", "2026-06-01"), {"c03", "c06"}),
        # any type
        (c("churn_risk_score", "is_set"), {"c01", "c02", "c03", "c06", "c08"}),
        (c("churn_risk_score", "is_not_set"), {"c04", "c05", "c07"}),
        (c("churn_top_drivers", "is_set"), {"c01", "c02", "c03", "c06", "c08"}),
        (c("acquisition_channel", "is_not_set"), {"c04"}),
    ],
    ids=lambda v: v["operator"] + ":" + v["field"] if isinstance(v, dict) else "",
)
def test_operator(conn, catalog, condition, expected):
    assert members(conn, catalog, seg(condition)) == expected


def test_negations_partition_the_base(conn, catalog):
    for field, op, neg, value in [
        ("acquisition_channel", "equals", "not_equals", "email"),
        ("churn_risk_score", "equals", "not_equals", 85),
        ("subscription_status", "in", "not_in", ["active", "paused"]),
    ]:
        yes = members(conn, catalog, seg(c(field, op, value)))
        no = members(conn, catalog, seg(c(field, neg, value)))
        assert yes.isdisjoint(no) and yes | no == ALL


def test_and_or_and_nested_groups(conn, catalog):
    high, risky = (
        c("lifetime_value", "greater_than", 1000),
        c("churn_risk_score", "greater_than", 80),
    )
    assert members(conn, catalog, seg(high, risky)) == set()
    assert members(conn, catalog, seg(high, risky, logic="OR")) == {"c01", "c08", "c02", "c03"}
    nested = seg(
        c("subscription_status", "equals", "active"),
        {
            "logic": "OR",
            "conditions": [
                high,
                {"logic": "AND", "conditions": [risky, c("orders_count", "less_than", 10)]},
            ],
        },
    )
    assert members(conn, catalog, nested) == {"c01", "c08", "c02"}


def test_segment_composition(conn, catalog):
    vip = seg(c("is_vip", "is_true"), name="VIP")
    registry = {"vip": vip}
    inside = seg({"operator": "in_segment", "value": "vip"}, c("orders_count", "greater_than", 20))
    outside = seg({"operator": "not_in_segment", "value": "VIP"})  # by name works too
    assert members(conn, catalog, inside, registry) == {"c08"}
    assert members(conn, catalog, outside, registry) == ALL - {"c01", "c08"}
    # a change in the referenced segment changes the composed segment's rule hash
    h1 = compile_segment(inside, catalog, registry).rule_hash
    registry2 = {"vip": seg(c("is_vip", "is_false"), name="VIP")}
    assert compile_segment(inside, catalog, registry2).rule_hash != h1
    assert compile_segment(inside, catalog, registry).rule_hash == h1


def test_composition_cycles_and_unknown_segments(catalog):
    a = seg({"operator": "in_segment", "value": "b"}, name="a")
    b = seg({"operator": "in_segment", "value": "c"}, name="b")
    cc = seg({"operator": "not_in_segment", "value": "a"}, name="c")
    registry = {"a": a, "b": b, "c": cc}
    msg = problems(catalog, a, registry)[0]
    assert "segment composition cycle: a → b → c → a" in msg
    assert msg.startswith("rules.conditions[0].value")
    self_ref = seg({"operator": "in_segment", "value": "me"}, name="me")
    assert "cycle: me → me" in problems(catalog, self_ref, {})[0]
    unknown = seg({"operator": "in_segment", "value": "vip_custmers"})
    assert (
        "unknown segment `vip_custmers` — did you mean `vip_customers`?"
        in problems(catalog, unknown, {"vip_customers": a})[0]
    )


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        # Klaviyo's mirrored "Placed Order" events must not double count
        (
            {
                "event": "order_placed",
                "count": {"greater_than_or_equal": 3},
                "within_last_days": 90,
            },
            {"c01", "c08"},
        ),
        ({"event": "order_placed", "count": {"greater_than_or_equal": 2}}, {"c01", "c08"}),
        ({"event": "order_placed"}, {"c01", "c02", "c03", "c08"}),
        ({"event": "order_placed", "where": {"product_category": "serum"}}, {"c01", "c03", "c08"}),
        ({"event": "order_placed", "where": {"product_category": "Eye Cream"}}, {"c02"}),
        (
            {"event": "order_placed", "where": {"product_category": ["mask", "eye cream"]}},
            {"c02", "c08"},
        ),
        (
            {
                "event": "order_placed",
                "where": {"product_category": "serum"},
                "count": {"greater_than_or_equal": 2},
                "within_last_days": 90,
            },
            {"c08"},
        ),
        ({"event": "order_placed", "where": {"is_subscription_order": True}}, {"c01", "c02"}),
        ({"event": "order_placed", "where": {"discount_code": "welcome10"}}, {"c01"}),
        ({"event": "order_placed", "where": {"amount": {"greater_than": 100}}}, {"c03", "c08"}),
        (
            {
                "event": "order_placed",
                "where": {
                    "amount": {"between": [100, 160]},
                    "product_category": {"not_equals": "serum"},
                },
            },
            {"c08"},
        ),
        # counts that zero satisfies include customers with no events at all
        (
            {"event": "order_placed", "count": {"less_than": 1}, "within_last_days": 90},
            ALL - {"c01", "c08"},
        ),
        (
            {"event": "order_placed", "count": {"equals": 0}, "within_last_days": 90},
            ALL - {"c01", "c08"},
        ),
        ({"event": "order_placed", "count": {"between": [1, 3]}}, {"c01", "c02", "c03"}),
        ({"event": "order_placed", "count": {"between": [0, 1]}}, ALL - {"c01", "c08"}),
        (
            {"event": "order_placed", "count": {"less_than_or_equal": 3}, "within_last_days": 90},
            ALL - {"c08"},
        ),
        ({"event": "email_opened", "within_last_days": 30}, {"c01"}),
        ({"event": "email_clicked"}, {"c08"}),
        ({"event": "site_visit", "within_last_days": 30}, {"c01"}),
        ({"event": "site_visit"}, {"c01", "c08"}),
        (
            {
                "event": "ticket_opened",
                "count": {"greater_than_or_equal": 2},
                "within_last_days": 30,
            },
            {"c02"},
        ),
        ({"event": "ticket_opened", "count": {"greater_than": 2}}, set()),
        (
            {
                "event": "subscription_skipped",
                "count": {"greater_than_or_equal": 2},
                "within_last_days": 30,
            },
            set(),
        ),
        (
            {
                "event": "subscription_skipped",
                "count": {"greater_than_or_equal": 2},
                "within_last_days": 90,
            },
            {"c02"},
        ),
    ],
    ids=lambda v: "-".join(str(x) for x in v.values())[:60] if isinstance(v, dict) else "",
)
def test_behavioural(conn, catalog, event, expected):
    assert members(conn, catalog, seg(event)) == expected


def test_behavioural_combines_with_fields(conn, catalog):
    spec = seg(
        c("subscription_status", "equals", "active"),
        {"event": "order_placed", "count": {"less_than": 1}, "within_last_days": 60},
        logic="AND",
    )
    assert members(conn, catalog, spec) == {"c02"}


def test_type_errors_name_path_problem_and_suggestion(catalog):
    spec = seg(
        c("orders_count", "greater_than", 1),
        {
            "logic": "OR",
            "conditions": [
                c("lifetime_valu", "greater_than", 5),
                c("orders_count", "contains", "3"),
                c("lifetime_value", "greater_than", "abc"),
                c("subscription_status", "equals", ["a"]),
                c("first_order_date", "before", "last tuesday"),
                c("last_order_at", "within_last_days", 0),
                c("lifetime_value", "between", [500, 100]),
                c("subscription_status", "in", "active"),
                c("churn_top_drivers", "equals", "x"),
                c("is_vip", "equals", True),
            ],
        },
    )
    msgs = problems(catalog, spec)
    p = "rules.conditions[1].conditions"
    assert msgs == [
        f"{p}[0].field: unknown field `lifetime_valu` — did you mean `lifetime_value`?",
        f"{p}[1].operator: operator `contains` does not apply to number field `orders_count` "
        "(use equals, not_equals, greater_than, greater_than_or_equal, less_than, "
        "less_than_or_equal, between, is_set, is_not_set)",
        f"{p}[2].value: value `abc` is not a number",
        f"{p}[3].value: value `['a']` is not text",
        f"{p}[4].value: value `last tuesday` is not a date (use YYYY-MM-DD)",
        f"{p}[5].value: `0` is not a whole number of days > 0",
        f"{p}[6].value: `between` low 500 is greater than high 100",
        f"{p}[7].value: `in` needs a non-empty list of values, e.g. [a, b]",
        f"{p}[8].operator: operator `equals` does not apply to other field `churn_top_drivers` "
        "(use is_set, is_not_set)",
        f"{p}[9].operator: operator `equals` does not apply to boolean field `is_vip` "
        "(use is_true, is_false, is_set, is_not_set)",
    ]


def test_blind_indexes_are_not_fields(catalog):
    assert "email_hash" not in catalog.fields
    assert "did you mean" not in problems(catalog, seg(c("email_hash", "is_set")))[0] or True


def test_export_columns_are_checked_against_the_catalog(catalog):
    spec = parse_segment(
        {
            "name": "x",
            "rules": {"conditions": [c("is_vip", "is_true")]},
            "exports": [
                {"destination": "csv", "columns": ["customer_id", "email", "lifetime_valeu"]}
            ],
        },
        "x",
    )
    assert problems(catalog, spec) == [
        "exports[0].columns[2]: unknown column `lifetime_valeu` — did you mean `lifetime_value`?"
    ]


HOSTILE = [
    "0; drop table marts.customers",
    "x' or '1'='1",
    "'); drop table marts.customers; --",
    'a" or "1"="1',
    "\\'; select pg_sleep(10); --",
]


def _state(conn) -> tuple:
    tables = conn.execute("select count(*) from pg_tables where schemaname = 'marts'").fetchone()[0]
    counts = tuple(
        conn.execute(f"select count(*) from marts.{t}").fetchone()[0]
        for t in ("customers", "customer_profiles", "customer_timeline", "orders")
    )
    return tables, counts


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_are_rejected_by_type_or_match_literally(conn, catalog, value):
    before = _state(conn)
    # number fields: rejected by type, never reach SQL
    msgs = problems(catalog, seg(c("lifetime_value", "greater_than", value)))
    assert msgs == [f"rules.conditions[0].value: value `{value}` is not a number"]
    # text fields: compared literally; only an exactly equal value matches
    expected = {"c07"} if value == HOSTILE_CHANNEL else set()
    for op, val in [
        ("equals", value),
        ("in", [value]),
        ("contains", value),
        ("starts_with", value),
    ]:
        assert members(conn, catalog, seg(c("acquisition_channel", op, val))) == expected
    assert (
        members(conn, catalog, seg(c("acquisition_channel", "not_equals", value))) == ALL - expected
    )
    # event properties and segment references too
    assert (
        members(conn, catalog, seg({"event": "order_placed", "where": {"product_category": value}}))
        == set()
    )
    assert (
        "unknown segment" in problems(catalog, seg({"operator": "in_segment", "value": value}))[0]
    )
    assert _state(conn) == before


def test_a_fixed_reference_date_selects_the_same_as_the_live_one(conn, catalog):
    from datetime import date

    from .conftest import AS_OF

    for rules in [
        {"event": "order_placed", "count": {"greater_than_or_equal": 3}, "within_last_days": 90},
        {"event": "order_placed", "where": {"product_category": "serum"}, "within_last_days": 30},
        c("last_order_at", "within_last_days", 30),
    ]:
        spec = seg(rules)
        live = compile_segment(spec, catalog)
        fixed = compile_segment(spec, catalog, reference=date.fromisoformat(AS_OF))
        assert AS_OF in fixed.as_string(conn) and AS_OF not in live.as_string(conn)
        assert live.rule_hash == fixed.rule_hash
        got = {r[0] for r in conn.execute(fixed.query).fetchall()}
        assert got == {r[0] for r in conn.execute(live.query).fetchall()}
