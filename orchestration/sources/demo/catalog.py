"""The product catalog (``seeds/products.csv``, also a dbt seed) as numpy arrays."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

CATALOG_PATH = Path(__file__).resolve().parents[3] / "seeds" / "products.csv"
CATALOG_COLUMNS = (
    "product_id",
    "variant_id",
    "sku",
    "title",
    "category",
    "price",
    "is_replenishable",
    "replenish_days",
    "is_subscribable",
)
SUBSCRIPTION_DISCOUNT = 0.10  # subscribe & save price = 90% of list


@dataclass(frozen=True)
class Catalog:
    frame: pd.DataFrame
    product_id: np.ndarray
    variant_id: np.ndarray
    sku: np.ndarray
    title: np.ndarray
    category: np.ndarray
    handle: np.ndarray  # URL slug
    price: np.ndarray
    replenishable: np.ndarray
    replenish_days: np.ndarray  # 0 when not replenishable
    subscribable: np.ndarray

    @property
    def n(self) -> int:
        return len(self.price)

    def idx(self, mask: np.ndarray) -> np.ndarray:
        return np.flatnonzero(mask)

    @property
    def sub_price(self) -> np.ndarray:
        return np.round(self.price * (1 - SUBSCRIPTION_DISCOUNT), 2)


@lru_cache(maxsize=2)
def load_catalog(path: str | None = None) -> Catalog:
    p = Path(path) if path else CATALOG_PATH
    if not p.exists():
        raise FileNotFoundError(f"product catalog not found: {p} (the dbt seed seeds/products.csv)")
    df = pd.read_csv(p, dtype={"sku": str, "title": str, "category": str})
    missing = [c for c in CATALOG_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{p}: missing columns {missing}")
    df = df.sort_values("product_id", kind="stable").reset_index(drop=True)
    rep = df["is_replenishable"].astype(str).str.lower().eq("true").to_numpy()
    sub = df["is_subscribable"].astype(str).str.lower().eq("true").to_numpy()
    handle = np.array(
        [re.sub(r"[^a-z0-9]+", "-", t.lower()).strip("-") for t in df["title"]], dtype=object
    )
    return Catalog(
        frame=df,
        product_id=df["product_id"].to_numpy(np.int64),
        variant_id=df["variant_id"].to_numpy(np.int64),
        sku=df["sku"].to_numpy(object),
        title=df["title"].to_numpy(object),
        category=df["category"].to_numpy(object),
        handle=handle,
        price=df["price"].to_numpy(np.float64),
        replenishable=rep,
        replenish_days=df["replenish_days"].fillna(0).to_numpy(np.int64),
        subscribable=sub,
    )
