"""``cdp import shopify-orders | shopify-customers | orders FILE…``: land a shop's CSV exports,
then print what landed and every reason a row was rejected."""

from __future__ import annotations

from functools import wraps
from pathlib import Path

import typer

from orchestration.errors import CdpError

import_app = typer.Typer(
    help="Import a shop's history from CSV exports (Shopify's own, or the generic orders CSV).",
    no_args_is_help=True,
)

TIMEZONE = typer.Option(
    None,
    "--timezone",
    help="IANA zone of times written without an offset (e.g. America/New_York, UTC). "
    "Required when the file has such times; offsets in the file always win.",
)
DATE_FORMAT = typer.Option(
    None,
    "--date-format",
    help="strptime format of dates that are not ISO 8601, e.g. %m/%d/%Y (US) or %d/%m/%Y. "
    "Needed when DD/MM vs MM/DD cannot be told from the values.",
)
FILES = typer.Argument(..., help="CSV files (.csv or .csv.gz).", exists=False)


def _friendly(fn):
    @wraps(fn)
    def wrapper(*args, **kwargs):
        from rich.console import Console

        try:
            return fn(*args, **kwargs)
        except CdpError as exc:
            Console(stderr=True).print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


def run_import(fmt: str, files: list[Path], timezone: str | None, date_format: str | None):
    from orchestration.privacy.blocklist import load_blocklist
    from orchestration.privacy.vault import load_keys
    from orchestration.runtime import db
    from orchestration.runtime.schema import ensure_warehouse
    from orchestration.runtime.settings import settings
    from orchestration.sources.imports.importer import import_files
    from orchestration.sources.imports.values import DateRules

    rules = DateRules(timezone, date_format)
    cfg = settings()
    url = db.warehouse_url(cfg)
    with db.connect(url) as conn:
        ensure_warehouse(conn)
    reports = import_files(
        url,
        files,
        fmt,
        rules,
        keys=load_keys(cfg.pii_key, cfg.keys_dir),
        blocklist=load_blocklist(cfg.identity_blocklist),
        log=print_report,
    )
    if len(reports) > 1:
        print_total(reports)
    return reports


def print_report(r) -> None:
    from rich.console import Console
    from rich.markup import escape

    out = Console()
    out.print(f"[bold]{escape(str(r.path))}[/bold] ({r.format})", highlight=False)
    if r.skipped:
        out.print(f"  {escape(r.notes[0])}", highlight=False)
        return
    out.print(f"  rows read          {r.rows:>10,}")
    if r.format == "shopify-customers":
        out.print(f"  customers landed   {r.customers:>10,}")
    else:
        out.print(f"  orders landed      {r.orders:>10,}   ({r.cancelled:,} cancelled)")
        out.print(f"  lines landed       {r.lines:>10,}")
        out.print(f"  refunds landed     {r.refunds:>10,}")
        out.print(f"  customers          {r.customers:>10,}")
        if r.without_customer:
            out.print(f"  orders without email or phone (no customer): {r.without_customer:,}")
    color = "red" if r.rejected or r.loader_rejected else "green"
    out.print(f"  rows rejected      [{color}]{r.rejected + r.loader_rejected:>10,}[/{color}]")
    for reason, count in r.by_reason.most_common():
        out.print(f"    {count:>8,}  {escape(reason)}", highlight=False)
    if r.examples:
        out.print("  first rejected rows (the header is row 1):")
        for row, reason in r.examples:
            out.print(f"    row {row}: {escape(reason)}", highlight=False)
    for note in r.notes:
        out.print(f"  note: {escape(note)}", highlight=False)
    out.print(f"  {r.seconds:.1f}s, {r.rows_per_second:,.0f} rows/s")


def print_total(reports) -> None:
    from rich.console import Console

    rows = sum(r.rows for r in reports)
    rejected = sum(r.rejected + r.loader_rejected for r in reports)
    skipped = sum(r.skipped for r in reports)
    Console().print(
        f"[bold]{len(reports)} files[/bold]: {rows:,} rows read, "
        f"{sum(r.orders for r in reports):,} orders and "
        f"{sum(r.customers for r in reports if r.format == 'shopify-customers'):,} customer "
        f"records landed, {rejected:,} rows rejected, {skipped} imported before"
    )


@import_app.command("shopify-orders")
@_friendly
def shopify_orders(
    files: list[Path] = FILES, timezone: str = TIMEZONE, date_format: str = DATE_FORMAT
) -> None:
    """Shopify's orders export (Orders > Export): one row per line item."""
    run_import("shopify-orders", files, timezone, date_format)


@import_app.command("shopify-customers")
@_friendly
def shopify_customers(
    files: list[Path] = FILES, timezone: str = TIMEZONE, date_format: str = DATE_FORMAT
) -> None:
    """Shopify's customers export (Customers > Export)."""
    run_import("shopify-customers", files, timezone, date_format)


@import_app.command("orders")
@_friendly
def generic_orders(
    files: list[Path] = FILES, timezone: str = TIMEZONE, date_format: str = DATE_FORMAT
) -> None:
    """Orders from any other platform: order_id, customer_email and/or customer_id, ordered_at,
    total; optional columns in the README."""
    run_import("orders", files, timezone, date_format)
