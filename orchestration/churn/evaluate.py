"""Honest evaluation: ranking (ROC-AUC, PR-AUC, top-decile lift) and calibration (Brier score,
a calibration table) of the model and the baselines on the same held-out cutoff."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

METRIC_KEYS = ("roc_auc", "pr_auc", "brier", "top_decile_lift")
CALIBRATION_BINS = np.linspace(0.0, 1.0, 11)


def top_decile_lift(y: np.ndarray, p: np.ndarray) -> float:
    """Churn rate among the 10% highest scores over the overall churn rate (stable ties)."""
    y = np.asarray(y, dtype=float)
    if not len(y) or y.mean() == 0:
        return float("nan")
    k = max(1, int(np.ceil(0.1 * len(y))))
    top = np.argsort(-np.asarray(p), kind="stable")[:k]
    return float(y[top].mean() / y.mean())


def metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    both = len(np.unique(y)) == 2
    return {
        "roc_auc": round(float(roc_auc_score(y, p)), 4) if both else float("nan"),
        "pr_auc": round(float(average_precision_score(y, p)), 4) if both else float("nan"),
        "brier": round(float(brier_score_loss(y, p)), 4),
        "top_decile_lift": round(top_decile_lift(y, p), 3),
    }


def calibration_table(y: np.ndarray, p: np.ndarray) -> pd.DataFrame:
    """Per predicted-probability tenth: customers, mean predicted, observed churn rate."""
    p = np.asarray(p, dtype=float)
    b = np.clip(np.digitize(p, CALIBRATION_BINS[1:-1]), 0, 9)
    frame = pd.DataFrame({"bin": b, "p": p, "y": np.asarray(y, dtype=float)})
    out = frame.groupby("bin").agg(
        customers=("y", "size"), predicted=("p", "mean"), observed=("y", "mean")
    )
    out = out.reindex(range(10))
    out.insert(
        0,
        "range",
        [
            f"{lo:.1f}-{hi:.1f}"
            for lo, hi in zip(CALIBRATION_BINS[:-1], CALIBRATION_BINS[1:], strict=True)
        ],
    )
    out["customers"] = out["customers"].fillna(0).astype(int)
    return out.round({"predicted": 3, "observed": 3}).reset_index(drop=True)


def evaluate_all(y: np.ndarray, scores: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """({name: metrics}, {name: calibration table}) for every scorer on the same rows."""
    return (
        {name: metrics(y, p) for name, p in scores.items()},
        {name: calibration_table(y, p) for name, p in scores.items()},
    )


def _rank(m: dict) -> tuple[float, float]:
    """Higher is better: holdout ROC-AUC, then the lower Brier score (NaN ranks last)."""
    auc, brier = m["roc_auc"], m["brier"]
    return (auc if auc == auc else -1.0, -brier if brier == brier else -2.0)


def best_baseline(all_metrics: dict[str, dict]) -> tuple[str, float]:
    name = max((n for n in all_metrics if n != "model"), key=lambda n: _rank(all_metrics[n]))
    return name, all_metrics[name]["roc_auc"]


def choose_champion(all_metrics: dict[str, dict], model_margin: float = 0.0) -> str:
    """The scorer with the best holdout ROC-AUC (then Brier); on a full tie the earliest listed
    (the model first). The model competes with its ROC-AUC minus ``model_margin``
    (CDP_CHURN_MIN_AUC_GAIN): it must beat the simple baselines by that much to score."""
    names = list(all_metrics)

    def key(n: str):
        auc, brier = _rank(all_metrics[n])
        return (auc - model_margin if n == "model" else auc, brier, -names.index(n))

    return max(names, key=key)


def metrics_markdown(all_metrics: dict[str, dict], base_rate: float | None = None) -> str:
    head = (
        "| scorer | ROC-AUC | PR-AUC | Brier | top-decile lift |\n| --- | --- | --- | --- | --- |"
    )
    rows = [
        f"| {name} | {m['roc_auc']:.4f} | {m['pr_auc']:.4f} | {m['brier']:.4f} | "
        f"{m['top_decile_lift']:.2f} |"
        for name, m in all_metrics.items()
    ]
    note = []
    if base_rate:
        note = [
            "",
            f"Holdout churn rate {base_rate:.1%}: the highest possible top-decile lift is "
            f"{1 / base_rate:.2f}.",
        ]
    return "\n".join([head, *rows, *note])


def calibration_markdown(tables: dict[str, pd.DataFrame]) -> str:
    names = list(tables)
    head = "| predicted | " + " | ".join(f"{n}: n / pred / obs" for n in names) + " |"
    sep = "| --- |" + " --- |" * len(names)
    rows = []
    for i in range(10):
        cells = []
        for n in names:
            r = tables[n].iloc[i]
            cells.append(
                "—"
                if r["customers"] == 0
                else f"{r['customers']} / {r['predicted']:.3f} / {r['observed']:.3f}"
            )
        rows.append(f"| {tables[names[0]].iloc[i]['range']} | " + " | ".join(cells) + " |")
    return "\n".join([head, sep, *rows])
