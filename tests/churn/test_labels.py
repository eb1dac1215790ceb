"""Churn labels on hand-built customers: the definition, case by case."""

from datetime import date

import pandas as pd

from orchestration.churn.labels import churn_labels

CUTOFF = date(2026, 5, 1)


def ts(s: str) -> pd.Timestamp:
    return pd.Timestamp(s, tz="UTC")


def customers(*rows):
    """(customer_id, is_buyer, is_subscriber[, days_since_last_order]) — default 30 days."""
    rows = [r if len(r) == 4 else (*r, 30 if r[1] else None) for r in rows]
    return pd.DataFrame(
        rows, columns=["customer_id", "is_buyer", "is_subscriber", "days_since_last_order"]
    )


def orders(*rows):
    frame = pd.DataFrame(rows, columns=["customer_id", "ordered_at", "is_cancelled"])
    frame["ordered_at"] = pd.to_datetime(frame["ordered_at"], utc=True)
    return frame


def events(*rows):
    frame = pd.DataFrame(
        rows, columns=["customer_id", "subscription_id", "event_type", "occurred_at"]
    )
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"], utc=True)
    return frame


NO_EVENTS = events()


def labels(cust, ords, evs=NO_EVENTS, horizon=90):
    out = churn_labels(cust, ords, evs, CUTOFF, horizon)
    return out.set_index("customer_id")["churned"].to_dict()


def test_buyer_who_orders_in_the_window_stays():
    got = labels(
        customers(("a", True, False), ("b", True, False)),
        orders(("a", "2026-03-01", False), ("a", "2026-06-15", False), ("b", "2026-03-01", False)),
    )
    assert got == {"a": False, "b": True}


def test_window_bounds_are_cutoff_inclusive_and_end_exclusive():
    got = labels(
        customers(("on_cutoff", True, False), ("last_day", True, False), ("after", True, False)),
        orders(
            ("on_cutoff", "2026-05-01T00:00:00", False),  # first instant of the window
            ("last_day", "2026-07-29T23:59:59", False),  # cutoff + 89 days
            ("after", "2026-07-30T00:00:00", False),  # cutoff + 90 days: outside
        ),
    )
    assert got == {"on_cutoff": False, "last_day": False, "after": True}


def test_cancelled_orders_do_not_count():
    got = labels(customers(("a", True, False)), orders(("a", "2026-05-10", True)))
    assert got == {"a": True}


def test_prospects_are_not_labelled():
    out = churn_labels(
        customers(("buyer", True, False), ("prospect", False, False)),
        orders(("buyer", "2026-01-01", False)),
        NO_EVENTS,
        CUTOFF,
        90,
    )
    assert list(out["customer_id"]) == ["buyer"]


def test_subscriber_who_cancels_in_the_window_churns_even_after_an_order():
    got = labels(
        customers(("a", True, True)),
        orders(("a", "2026-05-05", False)),
        events(("a", "s1", "created", "2026-01-01"), ("a", "s1", "cancelled", "2026-06-01")),
    )
    assert got == {"a": True}


def test_cancel_then_resume_in_the_window_is_not_churn():
    got = labels(
        customers(("a", True, True)),
        orders(("a", "2026-07-05", False)),
        events(
            ("a", "s1", "created", "2026-01-01"),
            ("a", "s1", "cancelled", "2026-06-01"),
            ("a", "s1", "resumed", "2026-06-20"),
        ),
    )
    assert got == {"a": False}


def test_cancelling_one_of_two_subscriptions_is_not_churn():
    got = labels(
        customers(("a", True, True)),
        orders(("a", "2026-05-20", False)),
        events(
            ("a", "s1", "created", "2026-01-01"),
            ("a", "s2", "created", "2026-02-01"),
            ("a", "s1", "cancelled", "2026-06-01"),
        ),
    )
    assert got == {"a": False}


def test_cancellation_after_the_window_does_not_count():
    got = labels(
        customers(("a", True, True)),
        orders(("a", "2026-05-20", False)),
        events(("a", "s1", "created", "2026-01-01"), ("a", "s1", "cancelled", "2026-08-15")),
    )
    assert got == {"a": False}


def test_horizon_is_configurable():
    cust = customers(("a", True, False))
    ords = orders(("a", "2026-01-01", False), ("a", "2026-06-20", False))
    assert labels(cust, ords, horizon=30) == {"a": True}
    assert labels(cust, ords, horizon=60) == {"a": False}


def test_customers_who_had_already_lapsed_are_not_labelled():
    got = labels(
        customers(
            ("recent", True, False, 120),
            ("lapsed", True, False, 400),
            ("lapsed_subscriber", True, True, 400),  # a live subscription keeps them eligible
        ),
        orders(("recent", "2026-01-01", False)),
    )
    assert got == {"recent": True, "lapsed_subscriber": True}
