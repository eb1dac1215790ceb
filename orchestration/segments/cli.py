"""``cdp segment test | list | fields | refresh``.

Imports stay inside the commands so ``cdp`` starts fast (``cdp segment test`` is meant to be run
over and over while writing rules)."""

from __future__ import annotations

import json
import sys
from functools import wraps
from pathlib import Path
from typing import Any

import typer

from orchestration.errors import CdpError

segment_app = typer.Typer(
    help="Segments: test rules instantly, list segments, show the field catalog, refresh views.",
    no_args_is_help=True,
)


def _console():
    from rich.console import Console

    return Console(stderr=True)


def _friendly(fn):
    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CdpError as exc:
            _console().print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


def _connect():
    from orchestration.runtime import db

    return db.connect(db.warehouse_url(), autocommit=True)


def _dump(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _money(value: float | None) -> str:
    return "—" if value is None else f"${value:,.2f}"


@segment_app.command("test")
@_friendly
def test_cmd(
    file: Path = typer.Argument(None, help="A segment file, e.g. segments/vip_customers.yml."),
    rules: str = typer.Option(
        None,
        "--rules",
        help='Rules as JSON: {"logic": "AND", "conditions": [...]} or the whole request body.',
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (for scripts)."),
) -> None:
    """Who a segment would contain (count, share, LTV, churn, sample, SQL); creates nothing.

    Invalid rules exit 1 listing every problem with its rule path."""
    from orchestration.segments import spec as specs
    from orchestration.segments.catalog import load_catalog
    from orchestration.segments.tester import SegmentTestResult, errors_of, evaluate_segment
    from orchestration.segments.views import SEGMENTS_DIR

    if (file is None) == (rules is None):
        raise CdpError("give a segment file or --rules '<json>' (one of them)")
    try:
        if rules is not None:
            try:
                data = json.loads(rules)
            except json.JSONDecodeError as exc:
                raise specs.SegmentError(
                    "--rules", [specs.RuleError("", f"not valid JSON: {exc}")]
                ) from None
            segment = specs.parse_segment(data, "--rules")
        else:
            segment = specs.load_file(file)
    except specs.SegmentError as exc:
        result = SegmentTestResult(segment=None, errors=errors_of(exc))
    else:
        registry = {}
        if segment.referenced_segments():  # parse the other files only when composing
            registry, _ = specs.load_directory(SEGMENTS_DIR)
        registry[segment.slug] = segment
        with _connect() as conn:
            catalog = load_catalog(conn, descriptions=False)
            result = evaluate_segment(conn, segment, catalog, registry)
    if as_json:
        _dump(result.to_dict())
    else:
        _print_test(result)
    if not result.ok:
        raise typer.Exit(1)


def _print_test(result) -> None:
    from rich.console import Console
    from rich.table import Table

    if result.errors:
        err = _console()
        err.print(f"[red]{len(result.errors)} problem(s):[/red]")
        for e in result.errors:
            where = f"{e['source']}: {e['path']}: " if e["path"] else f"{e['source']}: "
            err.print(f"  {where}{e['message']}", highlight=False, markup=False, soft_wrap=True)
        return
    out = Console()
    out.print(
        f"[bold]{result.count:,}[/bold] members of {result.base:,} "
        f"({result.share:.1%})   LTV total {_money(result.ltv_total)}, "
        f"average {_money(result.ltv_avg)}   churn risk average "
        f"{'—' if result.churn_risk_score_avg is None else result.churn_risk_score_avg}"
        f"   ({result.milliseconds:.0f} ms)"
    )
    if result.sample:
        table = Table(title=f"sample ({len(result.sample)})", title_justify="left")
        for name in result.sample[0]:
            table.add_column(name, justify="right" if name != "customer_id" else "left")
        for row in result.sample:
            table.add_row(*("" if v is None else str(v) for v in row.values()))
        out.print(table)
    out.print("[dim]sql:[/dim]")
    out.print(result.sql, highlight=False, markup=False, soft_wrap=True)


@segment_app.command("list")
@_friendly
def list_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every segment: file, owner, size and last refresh."""
    from rich.console import Console
    from rich.table import Table

    from orchestration.segments.views import list_segments

    with _connect() as conn:
        rows = list_segments(conn)
    if as_json:
        _dump(rows)
        return
    table = Table(title="segments")
    for col in ("slug", "name", "owner", "members", "last refresh", "rule hash", "status"):
        table.add_column(col, justify="right" if col == "members" else "left")
    for r in rows:
        members = r.get("members")
        status = r["status"]
        if status == "ok" and not r.get("view_exists"):
            status = "not built" if members is None else "view missing (refresh)"
        table.add_row(
            r.get("slug") or "",
            r.get("name") or r.get("file") or "",
            r.get("owner") or "",
            "—" if members is None else f"{members:,}",
            (r.get("last_refreshed_at") or "never")[:19].replace("T", " "),
            r.get("rule_hash") or "",
            status,
        )
    out = Console()
    out.print(table)
    for r in rows:
        if r.get("note"):
            out.print(f"{r['slug']}: {r['note']}", highlight=False, markup=False, soft_wrap=True)
        for e in r.get("errors", []):
            _console().print(f"[red]invalid[/red] {r['file']}: {e}", highlight=False)


@segment_app.command("fields")
@_friendly
def fields_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The fields rules may use (from marts.customer_profiles), their operators, and events."""
    from rich.console import Console
    from rich.table import Table

    from orchestration.segments.catalog import EVENTS, load_catalog, operators_for

    with _connect() as conn:
        catalog = load_catalog(conn)
    fields = [
        {
            "field": f.name,
            "type": f.kind,
            "operators": list(operators_for(f.kind)),
            "description": f.description,
        }
        for f in catalog.fields.values()
    ]
    events = [
        {"event": name, "properties": {k: p.kind for k, p in src.properties.items()}}
        for name, src in EVENTS.items()
    ]
    if as_json:
        _dump({"fields": fields, "events": events})
        return
    table = Table(title="fields of marts.customer_profiles")
    for col in ("field", "type", "description"):
        table.add_column(col)
    for f in fields:
        table.add_row(f["field"], f["type"], f["description"])
    out = Console()
    out.print(table)
    kinds = ("number", "text", "boolean", "date", "other")
    for kind in kinds:
        out.print(f"[bold]{kind}[/bold] operators: {', '.join(operators_for(kind))}")
    out.print("segment composition: in_segment, not_in_segment  (value: another segment's slug)")
    out.print("[bold]events[/bold] ({event, where, count, within_last_days}):")
    for e in events:
        props = ", ".join(f"{k} ({v})" for k, v in e["properties"].items())
        out.print(f"  {e['event']}: {props}", highlight=False)


@segment_app.command("refresh")
@_friendly
def refresh_cmd(
    slugs: list[str] = typer.Argument(None, help="Segments to refresh (default: all)."),
    directory: Path = typer.Option(None, "--dir", help="Segment files (default: ./segments)."),
) -> None:
    """Build or refresh segment views and record who entered and exited.

    The same work the Dagster segment assets do, without Dagster."""
    from rich.console import Console

    from orchestration.segments.spec import load_directory
    from orchestration.segments.views import SEGMENTS_DIR, refresh_all, skipped_segments

    with _connect() as conn:
        results, errors = refresh_all(conn, directory or SEGMENTS_DIR, only=slugs or None)
        specs, _ = load_directory(directory or SEGMENTS_DIR)
        skipped = skipped_segments(conn, specs)
    out = Console()
    for slug, note in skipped.items():
        if not slugs or slug in slugs:
            out.print(f"{slug}: {note}", highlight=False, markup=False)
    for r in results:
        out.print(
            f"{r.slug}: {r.members:,} members ({r.share:.1%}), +{r.entered:,} entered, "
            f"-{r.exited:,} exited{' (rebuilt)' if r.rebuilt else ''} in {r.seconds:.2f}s"
        )
    for exc in errors:
        _console().print(f"[red]error:[/red] {exc}", highlight=False, markup=False)
    if errors:
        raise typer.Exit(1)
