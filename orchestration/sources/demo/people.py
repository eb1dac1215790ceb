"""Persons: persona, name, canonical email/phone, address. One row per simulated human."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import (
    FUTURE_ARRIVALS_PER_DAY,
    FUTURE_DAYS,
    PERSONAS,
    Clock,
    DemoConfig,
    stream,
)
from .names import CITIES, EMAIL_DOMAINS, FIRST_NAMES, LAST_NAMES, STREETS


@dataclass
class Population:
    persona: np.ndarray  # int8 code into PERSONAS
    future: np.ndarray  # bool: first appears after as_of
    first_name: np.ndarray  # object
    last_name: np.ndarray
    email: np.ndarray  # canonical lowercase email
    phone: np.ndarray  # canonical 10 digits, '' when the person never gives one
    city: np.ndarray  # int index into CITIES
    address1: np.ndarray
    zip: np.ndarray
    shard: int = 0  # see config.Shard: which id ranges this population's records use

    @property
    def n(self) -> int:
        return len(self.persona)

    def where(self, code: int, future: bool | None = None) -> np.ndarray:
        m = self.persona == code
        if future is not None:
            m &= self.future == future
        return np.flatnonzero(m)


# phones of shards after the first: a block of local numbers of their own under area codes no
# city uses, so no two persons of different shards share a number (shard 0 draws its numbers
# from every city's whole range, as the unsharded generator does)
SHARD_AREA_CODES = ("332", "347", "424", "628", "646", "737", "786", "872", "917", "929")
SHARD_PHONE_BLOCK = 30_000  # > persons of a shard of MAX_CHUNK_SCALE (~25,900)
_BLOCKS_PER_AREA = 7_900_000 // SHARD_PHONE_BLOCK


def _unique_emails(
    rng: np.random.Generator, first: np.ndarray, last: np.ndarray, shard: int = 0
) -> np.ndarray:
    """Unique within the population; a shard after the first marks every local part with
    ``_<shard>`` (no pattern of shard 0 has an underscore before digits), so across shards too."""
    n = len(first)
    pattern = rng.choice(5, size=n, p=[0.4, 0.2, 0.15, 0.15, 0.1])
    num = rng.integers(1, 99, size=n)
    dom = np.asarray(EMAIL_DOMAINS, dtype=object)[rng.integers(0, len(EMAIL_DOMAINS), size=n)]
    locals_ = []
    for f, la, p, k in zip(
        first.tolist(), last.tolist(), pattern.tolist(), num.tolist(), strict=True
    ):
        f, la = f.lower(), la.lower()
        if p == 0:
            locals_.append(f"{f}.{la}")
        elif p == 1:
            locals_.append(f"{f}{la}{k}")
        elif p == 2:
            locals_.append(f"{f}_{la}")
        elif p == 3:
            locals_.append(f"{f[0]}{la}{k}")
        else:
            locals_.append(f"{f}.{la}{1960 + k % 45}")
    if shard:
        locals_ = [f"{a}_{shard}" for a in locals_]
    emails = np.array(
        [f"{a}@{d}" for a, d in zip(locals_, dom.tolist(), strict=True)], dtype=object
    )
    # make unique deterministically: the 2nd, 3rd ... holder of an address gets a numeric suffix
    order = np.argsort(emails, kind="stable")
    sorted_e = emails[order]
    dup = np.zeros(n, dtype=bool)
    dup[1:] = sorted_e[1:] == sorted_e[:-1]
    for j in np.flatnonzero(dup).tolist():
        i = order[j]
        a, d = emails[i].split("@")
        emails[i] = f"{a}.{100 + i % 9000 + j}@{d}"
    return emails


def build_population(cfg: DemoConfig, clock: Clock, shard: int = 0) -> Population:
    """``cfg.scale`` persons of shard ``shard`` (0: the unsharded population)."""
    rng = stream(cfg.seed, "people", shard)
    codes = [np.full(cfg.count(p), i, dtype=np.int8) for i, p in enumerate(PERSONAS)]
    future = [np.zeros(len(c), dtype=bool) for c in codes]
    for p, per_day in FUTURE_ARRIVALS_PER_DAY.items():
        k = int(round(per_day * FUTURE_DAYS * cfg.scale))
        codes.append(np.full(k, PERSONAS.index(p), dtype=np.int8))
        future.append(np.ones(k, dtype=bool))
    persona = np.concatenate(codes)
    fut = np.concatenate(future)
    n = len(persona)

    first = np.asarray(FIRST_NAMES, dtype=object)[rng.integers(0, len(FIRST_NAMES), size=n)]
    last = np.asarray(LAST_NAMES, dtype=object)[rng.integers(0, len(LAST_NAMES), size=n)]
    email = _unique_emails(rng, first, last, shard)

    city = rng.integers(0, len(CITIES), size=n)
    if shard == 0:
        area = np.array([int(c[3]) for c in CITIES])[city]
        local = 2_000_000 + rng.choice(7_900_000, size=n, replace=False)
    else:
        if n > SHARD_PHONE_BLOCK or shard > len(SHARD_AREA_CODES) * _BLOCKS_PER_AREA:
            raise ValueError(f"demo shard {shard} of {n} persons is past the phone ranges")
        area_i, block = divmod(shard - 1, _BLOCKS_PER_AREA)
        area = np.full(n, int(SHARD_AREA_CODES[area_i]))
        local = 2_000_000 + block * SHARD_PHONE_BLOCK + rng.choice(SHARD_PHONE_BLOCK, n, False)
    digits = (area * 10_000_000 + local).astype(np.int64).astype(str).astype(object)
    has_phone = rng.random(n) < 0.72
    phone = np.where(has_phone, digits, "").astype(object)

    house = rng.integers(1, 9999, size=n)
    street = np.asarray(STREETS, dtype=object)[rng.integers(0, len(STREETS), size=n)]
    address = np.array(
        [f"{h} {s}" for h, s in zip(house.tolist(), street.tolist(), strict=True)], dtype=object
    )
    zprefix = np.array([c[2] for c in CITIES], dtype=object)[city]
    zsuffix = rng.integers(0, 100, size=n)
    zips = np.array(
        [f"{p}{s:02d}" for p, s in zip(zprefix.tolist(), zsuffix.tolist(), strict=True)],
        dtype=object,
    )
    # anonymous visitors have no PII at all
    anon = persona == PERSONAS.index("anonymous_visitor")
    email[anon] = ""
    phone[anon] = ""
    return Population(persona, fut, first, last, email, phone, city, address, zips, shard)


def tax_rate(pop: Population) -> np.ndarray:
    return np.array([c[4] for c in CITIES])[pop.city]
