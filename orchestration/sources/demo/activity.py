"""Per-person engagement curves: a base level per persona times a decline (at-risk, churned,
fading one-time buyers) and transient dips (noise for healthy subscribers). Web sessions, email
opens/clicks and sends are all thinned by the same curve so the signals move together."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config import DAY, NAT, P_ANON, P_CHURN, P_ONE, P_PROSPECT, P_REG, P_RISK, P_VIP, Clock
from .people import Population

FAR = np.int64(4_000_000_000)  # a time beyond any horizon

# persona -> web sessions/day, campaign send prob, open prob, click-given-open prob
BASE = {
    P_VIP: (0.085, 0.85, 0.50, 0.28),
    P_REG: (0.040, 0.60, 0.34, 0.20),
    P_RISK: (0.055, 0.65, 0.38, 0.22),
    P_ONE: (0.010, 0.28, 0.17, 0.14),
    P_CHURN: (0.055, 0.60, 0.36, 0.22),
    P_PROSPECT: (0.018, 0.30, 0.20, 0.12),
    P_ANON: (0.020, 0.0, 0.0, 0.0),
}


@dataclass
class Activity:
    web: np.ndarray
    send: np.ndarray
    open: np.ndarray
    click: np.ndarray
    d0: np.ndarray  # decline start (sec)
    d1: np.ndarray  # decline end
    floor: np.ndarray
    s0: np.ndarray  # transient dip
    s1: np.ndarray
    depth: np.ndarray
    unsub: np.ndarray  # email unsubscribe time (FAR: never)

    def factor(self, p: np.ndarray, t: np.ndarray) -> np.ndarray:
        d0, d1 = self.d0[p], self.d1[p]
        frac = np.clip((t - d0) / np.maximum(d1 - d0, 1), 0.0, 1.0)
        f = 1.0 - (1.0 - self.floor[p]) * frac
        dip = (t >= self.s0[p]) & (t < self.s1[p])
        return np.where(dip, f * (1.0 - self.depth[p]), f)


def build_activity(
    rng,
    clock: Clock,
    pop: Population,
    order_info: pd.DataFrame,
    sub_info: pd.DataFrame,
    first_seen: np.ndarray,
) -> Activity:
    n = pop.n
    code = pop.persona
    base = np.array([BASE[int(c)] for c in range(7)])[code]
    web, send, opn, click = (base[:, j] * rng.uniform(0.7, 1.3, n) for j in range(4))
    d0 = np.full(n, FAR)
    d1 = np.full(n, FAR + DAY)
    floor = np.ones(n)
    hist_end = clock.t0 + DAY
    oi = order_info[order_info["counted"] & (order_info["person"] >= 0)]
    h = oi[oi["t"] < hist_end]
    last = np.full(n, NAT)
    np.maximum.at(last, h["person"].to_numpy(), h["t"].to_numpy())
    cancel = np.full(n, NAT)
    cancel[sub_info["person"].to_numpy()] = sub_info["cancel_t"].to_numpy()
    # at risk: decline starts 20-45 days before the last order (and at least ~95 days ago)
    m = code == P_RISK
    k = m.sum()
    d0[m] = np.minimum(last[m] - rng.integers(20, 45, k) * DAY, clock.t0 - 95 * DAY)
    d1[m] = d0[m] + rng.integers(45, 70, k) * DAY
    floor[m] = rng.uniform(0.08, 0.25, k)
    # churned: decline 2-4 months before cancelling
    m = code == P_CHURN
    k = m.sum()
    d0[m] = cancel[m] - rng.integers(60, 120, k) * DAY
    d1[m] = cancel[m] - rng.integers(0, 20, k) * DAY
    floor[m] = rng.uniform(0.1, 0.3, k)
    # half the one-time buyers drift away after their last order; the rest stay unremarkable
    m = (code == P_ONE) & (last != NAT) & (rng.random(n) < 0.5)
    k = m.sum()
    d0[m] = last[m] + rng.integers(20, 60, k) * DAY
    d1[m] = d0[m] + rng.integers(60, 150, k) * DAY
    floor[m] = rng.uniform(0.3, 0.6, k)
    # transient dips that recover: ~5% of VIPs, ~10% of regulars, some others
    p_dip = np.select([code == P_VIP, code == P_REG], [0.05, 0.10], 0.04)
    dip = rng.random(n) < p_dip
    span = np.maximum(clock.t0 - first_seen - 120 * DAY, DAY)
    s0 = np.where(dip, first_seen + (rng.random(n) * span).astype(np.int64), FAR)
    s1 = s0 + rng.integers(30, 75, n) * DAY
    depth = rng.uniform(0.6, 0.85, n)
    # unsubscribes: fading people unsubscribe during their decline, others rarely, any time
    p_uns = np.select(
        [
            code == P_VIP,
            code == P_REG,
            code == P_RISK,
            code == P_CHURN,
            code == P_ONE,
            code == P_PROSPECT,
        ],
        [0.03, 0.06, 0.2, 0.3, 0.12, 0.15],
        0,
    )
    uns = rng.random(n) < p_uns
    declining = np.isin(code, [P_RISK, P_CHURN])
    t_uns = np.where(
        declining,
        d0 + (rng.random(n) * (d1 - d0 + 30 * DAY)).astype(np.int64),
        first_seen
        + 7 * DAY
        + (rng.random(n) * np.maximum(clock.horizon - first_seen - 7 * DAY, DAY)).astype(np.int64),
    )
    unsub = np.where(uns & (t_uns < clock.horizon), t_uns, FAR)
    return Activity(web, send, opn, click, d0, d1, floor, s0, s1, depth, unsub)
