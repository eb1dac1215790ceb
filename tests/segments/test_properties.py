"""Property tests: random rule trees compile to SQL that runs, never executes a value, and
selects exactly the customers a plain-Python reading of the same rules selects."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestration.segments.compiler import compile_segment
from orchestration.segments.spec import SegmentError, parse_segment

NUMBER_FIELDS = ("lifetime_value", "orders_count", "churn_risk_score", "days_since_last_order")
TEXT_FIELDS = ("subscription_status", "lifecycle_stage", "acquisition_channel")
TEXT_WORDS = ("active", "never", "email", "paid", "x' or '1'='1", "Email Newsletter", "ac", "")
HYPO = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

numbers = st.one_of(
    st.integers(-10, 6000),
    st.decimals(-10, 6000, places=2, allow_nan=False, allow_infinity=False),
)
words = st.one_of(st.sampled_from(TEXT_WORDS), st.text("abcdeilmnopstvx' ;-%_", max_size=8))


@st.composite
def conditions(draw):
    kind = draw(st.sampled_from(["number", "between", "text", "list", "bool", "set"]))
    if kind == "number":
        op = draw(
            st.sampled_from(
                [
                    "equals",
                    "not_equals",
                    "greater_than",
                    "greater_than_or_equal",
                    "less_than",
                    "less_than_or_equal",
                ]
            )
        )
        return {
            "field": draw(st.sampled_from(NUMBER_FIELDS)),
            "operator": op,
            "value": draw(numbers),
        }
    if kind == "between":
        lo, hi = sorted([draw(numbers), draw(numbers)])
        return {
            "field": draw(st.sampled_from(NUMBER_FIELDS)),
            "operator": "between",
            "value": [lo, hi],
        }
    if kind == "text":
        op = draw(st.sampled_from(["equals", "not_equals", "contains", "starts_with"]))
        return {"field": draw(st.sampled_from(TEXT_FIELDS)), "operator": op, "value": draw(words)}
    if kind == "list":
        return {
            "field": draw(st.sampled_from(TEXT_FIELDS)),
            "operator": draw(st.sampled_from(["in", "not_in"])),
            "value": draw(st.lists(words, min_size=1, max_size=3)),
        }
    if kind == "bool":
        return {"field": "is_vip", "operator": draw(st.sampled_from(["is_true", "is_false"]))}
    return {
        "field": draw(st.sampled_from(NUMBER_FIELDS + TEXT_FIELDS)),
        "operator": draw(st.sampled_from(["is_set", "is_not_set"])),
    }


groups = st.recursive(
    conditions(),
    lambda inner: st.fixed_dictionaries(
        {
            "logic": st.sampled_from(["AND", "OR"]),
            "conditions": st.lists(inner, min_size=1, max_size=3),
        }
    ),
    max_leaves=8,
)


def evaluate(node: dict, row: dict) -> bool:
    """The rule language's meaning, in plain Python."""
    if "conditions" in node:
        results = [evaluate(c, row) for c in node["conditions"]]
        return all(results) if node["logic"] == "AND" else any(results)
    v, op, want = row[node["field"]], node["operator"], node.get("value")
    if op == "is_set":
        return v is not None
    if op == "is_not_set":
        return v is None
    if op in ("is_true", "is_false"):
        return v is (op == "is_true")
    if op == "not_equals":
        return v is None or v != _coerce(v, want)
    if op == "not_in":
        return v is None or v not in want
    if v is None:
        return False
    if op == "in":
        return v in want
    if op == "contains":
        return want.lower() in v.lower()
    if op == "starts_with":
        return v.lower().startswith(want.lower())
    if op == "between":
        return Decimal(want[0]) <= v <= Decimal(want[1])
    w = _coerce(v, want)
    return {
        "equals": v == w,
        "greater_than": v > w,
        "greater_than_or_equal": v >= w,
        "less_than": v < w,
        "less_than_or_equal": v <= w,
    }[op]


def _coerce(v, want):
    return Decimal(str(want)) if isinstance(v, int | Decimal) else want


@pytest.fixture
def rows(conn):
    cur = conn.execute("select * from marts.customer_profiles")
    names = [d.name for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


@HYPO
@given(rules=groups)
def test_compiled_sql_selects_what_the_rules_mean(conn, catalog, rows, rules):
    if "conditions" not in rules:
        rules = {"logic": "AND", "conditions": [rules]}
    spec = parse_segment({"name": "prop", "rules": rules}, "prop")
    compiled = compile_segment(spec, catalog)
    got = {r[0] for r in conn.execute(compiled.query).fetchall()}
    assert got == {r["customer_id"] for r in rows if evaluate(rules, r)}


@HYPO
@given(
    value=st.text(max_size=40).filter(lambda s: "\x00" not in s),
    field=st.sampled_from(NUMBER_FIELDS + TEXT_FIELDS),
    op=st.sampled_from(["equals", "not_equals", "contains", "starts_with", "greater_than"]),
)
def test_any_string_value_is_rejected_by_type_or_compared_literally(
    conn, catalog, value, field, op
):
    before = conn.execute("select count(*) from marts.customer_profiles").fetchone()[0]
    spec = parse_segment(
        {"name": "s", "rules": {"conditions": [{"field": field, "operator": op, "value": value}]}},
        "s",
    )
    try:
        compiled = compile_segment(spec, catalog)
    except SegmentError as exc:
        # only type errors: operator not applicable or value not a number
        assert all(
            "is not a number" in e.message or "does not apply" in e.message for e in exc.errors
        )
        return
    members = conn.execute(compiled.query).fetchall()
    assert len(members) <= before
    if op == "equals" and field in TEXT_FIELDS:
        assert all(
            m[0]
            in {
                r[0]
                for r in conn.execute(
                    "select customer_id from marts.customer_profiles where " + field + " = %s",
                    (value,),
                )
            }
            for m in members
        )
    assert conn.execute("select count(*) from marts.customer_profiles").fetchone()[0] == before


@HYPO
@given(rules=groups)
def test_rule_hash_is_deterministic(catalog, rules):
    if "conditions" not in rules:
        rules = {"logic": "AND", "conditions": [rules]}
    a = compile_segment(parse_segment({"name": "a", "rules": rules}, "a"), catalog)
    b = compile_segment(parse_segment({"name": "a", "rules": rules}, "b"), catalog)
    assert a.rule_hash == b.rule_hash and a.query.as_string(None) == b.query.as_string(None)
