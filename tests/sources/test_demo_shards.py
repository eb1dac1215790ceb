"""The demo generator's shards: a large demo is generated (and landed) one part of the population
at a time. Small scales with a small ``chunk`` stand in for scale 30 with chunk 1."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pandas as pd
import pytest

from orchestration.sources.demo import PERSONA_COUNTS, DemoConfig, generate_demo, iter_demo
from orchestration.sources.demo.config import CHUNK_SCALE
from orchestration.sources.schemas import BY_NAME
from tests.sources.test_demo_generator import JUNK_PHONES, assert_resolvable

AS_OF = date(2026, 11, 25)
CHUNK = 0.03
SHARDED = DemoConfig(seed=5, scale=3 * CHUNK, as_of=AS_OF, chunk=CHUNK)


@pytest.fixture(scope="module")
def parts():
    return list(iter_demo(SHARDED))


@pytest.fixture(scope="module")
def whole():
    return generate_demo(SHARDED)


def _frames_equal(a, b) -> None:
    assert a.tables.keys() == b.tables.keys() and a.truth.keys() == b.truth.keys()
    for name in a.tables:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name], obj=name)
    for name in a.truth:
        pd.testing.assert_frame_equal(a.truth[name], b.truth[name], obj=name)


def test_shards_cover_the_scale():
    assert [s.scale for s in DemoConfig(scale=CHUNK_SCALE).shards()] == [CHUNK_SCALE]
    assert len(DemoConfig(scale=30).shards()) == 30
    assert len(DemoConfig(scale=2.5).shards()) == 3
    shards = SHARDED.shards()
    assert [s.index for s in shards] == [0, 1, 2]
    assert sum(s.scale for s in shards) == pytest.approx(SHARDED.scale)
    with pytest.raises(ValueError):
        DemoConfig(chunk=0)


def test_the_first_shard_is_the_smaller_demo_and_whole_is_the_shards_concatenated(parts, whole):
    """A scale up to the chunk is one shard, generated exactly as before sharding existed; a
    larger scale starts with that same demo, and generating it whole gives the same rows as
    generating it shard by shard."""
    assert len(parts) == 3
    _frames_equal(
        parts[0], generate_demo(DemoConfig(seed=5, scale=CHUNK, as_of=AS_OF, chunk=CHUNK))
    )
    for name, frame in whole.tables.items():
        pd.testing.assert_frame_equal(
            frame, pd.concat([p.tables[name] for p in parts], ignore_index=True), obj=name
        )
    # and again: deterministic
    _frames_equal(whole, generate_demo(SHARDED))


def test_shards_share_no_record_id_person_email_or_phone(whole):
    for name, frame in whole.tables.items():
        assert not frame.duplicated(list(BY_NAME[name].record_id)).any(), name
    persons = whole.truth["demo_truth.persons"]
    assert persons["person_id"].is_unique
    counts = persons["persona"].value_counts()
    for persona in ("vip_subscriber", "one_time_buyer", "churned_high_value"):
        assert counts[persona] == 3 * round(PERSONA_COUNTS[persona] * CHUNK), persona
    ids = whole.truth["demo_truth.identities"]
    assert not ids.duplicated(["source", "identity_type", "source_id"]).any()
    # every email and phone of a Shopify account belongs to one person, whatever its shard
    shop = ids[ids["source"] == "shopify"]
    person = dict(zip(shop["source_id"].astype("int64"), shop["person_id"], strict=True))
    c = whole.tables["raw_shopify.customers"].drop_duplicates("id")
    c = c.assign(person=c["id"].map(person))
    email = c["email"].str.strip().str.lower()
    real = c.assign(email=email)[email.notna() & (email != "test@example.com")]
    assert real.groupby("email")["person"].nunique().max() == 1
    digits = c["phone"].fillna("").map(lambda p: re.sub(r"\D", "", p)[-10:])
    real = c.assign(digits=digits)[~digits.isin(JUNK_PHONES) & (digits.str.len() == 10)]
    assert real.groupby("digits")["person"].nunique().max() == 1
    assert whole.tables["raw_shopify.orders"].drop_duplicates("id")["name"].is_unique


def test_shards_share_one_klaviyo_account(parts):
    """Campaigns, flows and metrics are the account's: the same ids in every shard."""
    events = [p.tables["raw_klaviyo.events"] for p in parts]
    metrics = [
        ev.groupby("metric_name")["metric_id"].unique().map(tuple).to_dict() for ev in events
    ]
    assert all(m == metrics[0] for m in metrics) and len(metrics[0]) >= 5
    campaigns = [set(ev["campaign_id"].dropna()) for ev in events]
    for other in campaigns[1:]:
        assert len(other & campaigns[0]) >= 0.8 * len(other)


def test_a_sharded_demo_resolves_to_its_persons(whole):
    assert_resolvable(whole)


def test_next_days_cut_from_cached_shards(tmp_path):
    """Each shard's simulation is cached on its own; a next day cut from the cache is the
    day cut from fresh simulations, and another demo's cached shards are removed."""
    day = DemoConfig(
        seed=5, scale=2 * CHUNK, as_of=AS_OF, since=AS_OF, through=AS_OF + timedelta(1), chunk=CHUNK
    )
    fresh = generate_demo(day)
    _frames_equal(generate_demo(day, tmp_path), fresh)  # simulates, keeps both shards
    assert len(list(tmp_path.glob("simulation-*.pickle"))) == 2
    _frames_equal(generate_demo(day, tmp_path), fresh)  # loads them
    generate_demo(DemoConfig(seed=6, scale=CHUNK, as_of=AS_OF, chunk=CHUNK), tmp_path)
    assert len(list(tmp_path.glob("simulation-*.pickle"))) == 1
