"""BG/NBD on data simulated from BG/NBD itself: the fit recovers the parameters, and the
probability of no purchase in the horizon matches what the simulated customers then do."""

from __future__ import annotations

import numpy as np
import pytest

from orchestration.churn import bgnbd

TRUE = {"r": 0.8, "alpha": 40.0, "a": 0.6, "b": 2.5}  # alpha in days


def simulate(n: int, horizon: float, seed: int = 0):
    """Customers born at day 0 with T in [60, 540) days of history, then ``horizon`` more days."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(TRUE["r"], 1 / TRUE["alpha"], n)
    p = rng.beta(TRUE["a"], TRUE["b"], n)
    T = rng.uniform(60, 540, n).round()
    x = np.zeros(n)
    t_x = np.zeros(n)
    bought_later = np.zeros(n, bool)
    now = np.zeros(n)
    alive = np.ones(n, bool)
    while alive.any():
        now = now + rng.exponential(1 / lam)
        buys = alive & (now < T + horizon)
        before = buys & (now < T)
        x[before] += 1
        t_x[before] = now[before]
        bought_later |= buys & (now >= T)
        # after each purchase the customer may drop out; past the horizon nothing matters
        alive = buys & (rng.random(n) >= p)
    return x, t_x.round(), T, bought_later


def test_fit_recovers_the_parameters_and_predicts_no_purchase():
    x, t_x, T, bought_later = simulate(20_000, horizon=90)
    model = bgnbd.fit(x, t_x, T)
    for name, value in TRUE.items():
        assert getattr(model, name) == pytest.approx(value, rel=0.2), name
    p = model.p_no_purchase(x, t_x, T, 90)
    assert ((p >= 0) & (p <= 1)).all()
    observed = 1 - bought_later.mean()
    assert p.mean() == pytest.approx(observed, abs=0.02)
    # ranked: the top-scored fifth really buys far less often than the bottom fifth
    order = np.argsort(p)
    k = len(p) // 5
    assert bought_later[order[:k]].mean() > 3 * bought_later[order[-k:]].mean()


def test_alive_and_no_purchase_probabilities_behave():
    m = bgnbd.BgNbd(r=0.5, alpha=30.0, a=0.7, b=2.0)
    # one-time buyers have had no chance to drop out
    assert m.p_alive([0.0], [0.0], [200.0])[0] == 1.0
    # the same purchases, longer silence: less likely alive, more likely quiet
    a = m.p_alive([3.0, 3.0], [100.0, 100.0], [120.0, 300.0])
    q = m.p_no_purchase([3.0, 3.0], [100.0, 100.0], [120.0, 300.0], 90)
    assert a[0] > a[1] and q[0] < q[1]
    # a longer horizon can only make a purchase more likely
    assert (
        m.p_no_purchase([2.0], [50.0], [80.0], 180)[0]
        < m.p_no_purchase([2.0], [50.0], [80.0], 30)[0]
    )
