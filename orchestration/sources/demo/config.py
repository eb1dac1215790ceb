"""Configuration, random streams, the simulation clock and seasonality of the demo generator.

Time inside the generator is integer seconds since the Unix epoch (UTC) or float day offsets
relative to the start of ``as_of`` (day 0 = ``as_of`` 00:00 UTC). Everything is simulated over a
fixed horizon (``HISTORY_DAYS`` before ``as_of`` to ``FUTURE_DAYS`` after it) that depends only on
``(seed, scale, as_of)``; ``since``/``through`` only cut the result. That is what keeps the history
identical whatever ``through`` is.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd

HISTORY_DAYS = 730  # history spans day -729 .. day 0 (as_of) inclusive
FUTURE_DAYS = 365  # behaviour is simulated this far past as_of ("next day" mode)
DAY = 86_400
NAT = np.iinfo(np.int64).min  # "no timestamp" sentinel in int64 second arrays

# persona -> exact count at scale 1 (truth `persona` values)
PERSONA_COUNTS: dict[str, int] = {
    "vip_subscriber": 500,
    "regular_subscriber": 2000,
    "at_risk_subscriber": 800,
    "one_time_buyer": 4000,
    "churned_high_value": 200,
    "prospect": 2600,
    "anonymous_visitor": 300,
}
PERSONAS: tuple[str, ...] = tuple(PERSONA_COUNTS)
BUYER_PERSONAS: tuple[str, ...] = PERSONAS[:5]
# people who first appear after as_of (new sign-ups / first orders), per day at scale 1
FUTURE_ARRIVALS_PER_DAY: dict[str, float] = {"one_time_buyer": 3.0, "prospect": 4.0}

# net lifetime value bands (sum of total_price of non-test, non-cancelled orders minus refunds)
LTV_BANDS: dict[str, tuple[float, float]] = {
    "vip_subscriber": (1000.0, 5000.0),
    "regular_subscriber": (300.0, 1000.0),
    "at_risk_subscriber": (200.0, 1500.0),
    "one_time_buyer": (50.0, 300.0),
    "churned_high_value": (500.0, 2000.0),
}

# the population is simulated in shards of this scale at most (``DemoConfig.shards``); a shard's
# persons, ids and memory are those of a scale-1 demo whatever the scale. Changing it changes the
# data of every scale above it (it is part of the simulation cache's key).
CHUNK_SCALE = 1.0
MAX_CHUNK_SCALE = 2.0  # per-shard id and phone ranges are sized for this (ids.SHARD_ID_STRIDE)

P_VIP, P_REG, P_RISK, P_ONE, P_CHURN, P_PROSPECT, P_ANON = range(7)
SUBSCRIBER_CODES = (P_VIP, P_REG, P_RISK, P_CHURN)


def today_utc() -> date:
    """Today's date in UTC (the default ``as_of``)."""
    return datetime.now(UTC).date()


@dataclass(frozen=True)
class DemoConfig:
    """What to generate. Same config => byte-identical frames."""

    seed: int = 42
    scale: float = 1.0
    as_of: date = field(default_factory=today_utc)
    since: date | None = None  # only rows whose activity falls in (since, through]
    through: date | None = None  # simulate through the end of this day; default as_of
    # the population is simulated in shards of at most this scale (see ``shards``): memory
    # follows the shard, not the scale. Part of what is generated, like the seed.
    chunk: float = CHUNK_SCALE

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise ValueError(f"DemoConfig.scale must be > 0, got {self.scale!r}")
        if not 0 < self.chunk <= MAX_CHUNK_SCALE:
            raise ValueError(
                f"DemoConfig.chunk must be in (0, {MAX_CHUNK_SCALE}], got {self.chunk!r}"
            )
        if self.through is not None:
            ahead = (self.through - self.as_of).days
            if ahead > FUTURE_DAYS:
                raise ValueError(
                    f"DemoConfig.through={self.through} is {ahead} days after as_of="
                    f"{self.as_of}; the generator simulates at most {FUTURE_DAYS} days ahead"
                )
            if ahead < -HISTORY_DAYS:
                raise ValueError(f"DemoConfig.through={self.through} is before the history")
        if self.since is not None and self.since >= self.end_date:
            raise ValueError(
                f"DemoConfig.since={self.since} must be before through={self.end_date}"
            )

    @property
    def end_date(self) -> date:
        return self.through if self.through is not None else self.as_of

    def count(self, persona: str) -> int:
        return int(round(PERSONA_COUNTS[persona] * self.scale))

    def shards(self) -> list[Shard]:
        """The shards the population is simulated in: ``ceil(scale / chunk)`` equal parts.

        Each shard is a population of its own (own random streams, id ranges, persons), so a
        shard's memory does not depend on the scale. A scale up to ``chunk`` is one shard, shard
        0, which is exactly the unsharded simulation; shard 0 of a larger scale is the same
        simulation as that scale's first part. Persona counts are rounded per shard."""
        n = max(1, math.ceil(self.scale / self.chunk - 1e-9))
        part = self.scale / n
        out, base = [], 0
        for k in range(n):
            out.append(Shard(k, n, part, base))
            base += population_size(part)
        return out


@dataclass(frozen=True)
class Shard:
    """One part of a sharded population: its index, how many there are, its scale, and the
    number of persons before it (its persons' truth ids start after them)."""

    index: int = 0
    count: int = 1
    scale: float = 1.0
    person_base: int = 0


def population_size(scale: float) -> int:
    """Persons simulated at ``scale`` (``people.build_population``): personas + future arrivals."""
    now = sum(int(round(c * scale)) for c in PERSONA_COUNTS.values())
    later = sum(int(round(d * FUTURE_DAYS * scale)) for d in FUTURE_ARRIVALS_PER_DAY.values())
    return now + later


@dataclass
class DemoData:
    """Generated frames: ``tables`` keyed by qualified raw table name, ``truth`` by demo_truth.*"""

    tables: dict[str, pd.DataFrame]
    truth: dict[str, pd.DataFrame]


def stream(seed: int, name: str, shard: int = 0) -> np.random.Generator:
    """An independent random stream per (seed, purpose, shard): stable across Python runs.
    Shard 0's streams are the unsharded generator's."""
    key = [int(seed) & 0xFFFFFFFF, zlib.crc32(name.encode())]
    return np.random.default_rng(key + [int(shard)] if shard else key)


@dataclass(frozen=True)
class Clock:
    """Maps day offsets (relative to as_of 00:00 UTC) to epoch seconds and back."""

    as_of: date

    @property
    def t0(self) -> int:
        return int(
            datetime(self.as_of.year, self.as_of.month, self.as_of.day, tzinfo=UTC).timestamp()
        )

    @property
    def start(self) -> int:  # first second of the history
        return self.t0 - (HISTORY_DAYS - 1) * DAY

    @property
    def horizon(self) -> int:  # first second after the simulated future
        return self.t0 + (FUTURE_DAYS + 1) * DAY

    def sec(self, day_offset) -> np.ndarray:
        return (self.t0 + np.asarray(day_offset, dtype=np.float64) * DAY).astype(np.int64)

    def day_end(self, d: date) -> int:
        """First second after day ``d``."""
        return self.t0 + ((d - self.as_of).days + 1) * DAY

    def day_index(self) -> np.ndarray:
        """Day offsets of every simulated day, -729 .. FUTURE_DAYS."""
        return np.arange(-(HISTORY_DAYS - 1), FUTURE_DAYS + 1)

    def dates(self) -> list[date]:
        return [self.as_of + timedelta(days=int(d)) for d in self.day_index()]


def _thanksgiving(year: int) -> date:
    nov1 = date(year, 11, 1)
    first_thu = nov1 + timedelta(days=(3 - nov1.weekday()) % 7)
    return first_thu + timedelta(days=21)


def season_weights(clock: Clock) -> np.ndarray:
    """Relative activity per simulated day: weekly rhythm x BFCM/December peak x January lull."""
    out = []
    for d in clock.dates():
        w = {4: 1.1, 5: 1.3, 6: 1.25}.get(d.weekday(), 1.0)
        tg = _thanksgiving(d.year)
        if tg <= d <= tg + timedelta(days=4):  # Thanksgiving .. Cyber Monday
            w *= 2.8
        elif tg - timedelta(days=7) <= d < tg:
            w *= 1.4
        elif d.month == 12 and d.day <= 20:
            w *= 1.9
        elif d.month == 12:
            w *= 1.2
        elif d.month == 1:
            w *= 0.7
        elif d.month in (5, 6):
            w *= 1.1  # sunscreen season
        out.append(w)
    return np.asarray(out)


def is_bfcm(clock: Clock, secs: np.ndarray) -> np.ndarray:
    """True for timestamps in a Thanksgiving..Cyber Monday window."""
    days = (np.asarray(secs) - clock.t0) // DAY
    dates = clock.dates()
    flags = np.array(
        [_thanksgiving(d.year) <= d <= _thanksgiving(d.year) + timedelta(days=4) for d in dates]
    )
    idx = np.clip(days + HISTORY_DAYS - 1, 0, len(dates) - 1)
    return flags[idx]


# local-evening-heavy hour-of-day profile for web activity (hours in UTC, US audience)
WEB_HOUR_WEIGHTS = np.array(
    [6, 5, 4, 3, 2, 1, 1, 1, 1, 1, 2, 3, 4, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 7], dtype=float
)


def web_seconds_of_day(rng: np.random.Generator, n: int) -> np.ndarray:
    hours = rng.choice(24, size=n, p=WEB_HOUR_WEIGHTS / WEB_HOUR_WEIGHTS.sum())
    return hours * 3600 + rng.integers(0, 3600, size=n)


def seasonal_days(
    rng: np.random.Generator, clock: Clock, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """For each (lo, hi] day-offset interval draw a day weighted by seasonality (vectorised)."""
    w = season_weights(clock)
    cdf = np.cumsum(w)
    base = HISTORY_DAYS - 1
    lo_i = np.clip(np.floor(lo).astype(np.int64) + base, -1, len(w) - 1)
    hi_i = np.clip(np.floor(hi).astype(np.int64) + base, 0, len(w) - 1)
    c_lo = np.where(lo_i >= 0, cdf[np.maximum(lo_i, 0)], 0.0)
    c_hi = cdf[hi_i]
    u = c_lo + rng.random(len(lo_i)) * np.maximum(c_hi - c_lo, 1e-9)
    idx = np.searchsorted(cdf, u, side="left")
    idx = np.minimum(np.maximum(idx, lo_i + 1), np.maximum(hi_i, lo_i + 1))
    return idx - base


def to_ts(secs: np.ndarray) -> pd.Series:
    """int64 epoch seconds (NAT sentinel = missing) -> tz-aware UTC timestamps."""
    arr = np.asarray(secs, dtype=np.int64)
    out = pd.to_datetime(np.where(arr == NAT, 0, arr), unit="s", utc=True)
    return pd.Series(out).where(arr != NAT)
