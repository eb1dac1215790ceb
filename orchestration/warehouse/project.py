"""The dbt project at the repository root: paths, the manifest, and the environment dbt needs.

Plain Python (no Dagster): the Dagster wiring, the benchmark and the tests share it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from orchestration.errors import CdpError
from orchestration.runtime.db import dbt_env
from orchestration.runtime.settings import PROJECT_ROOT

DBT_PROJECT_DIR = PROJECT_ROOT
MANIFEST_PATH = DBT_PROJECT_DIR / "target" / "manifest.json"
# the connection (see _profile_key) target/partial_parse.msgpack was last written for
PARSED_FOR_PATH = DBT_PROJECT_DIR / "target" / "partial_parse.profile"
_SOURCES = ("dbt_project.yml", "profiles.yml", "models", "macros", "seeds", "tests/dbt")


def dbt_executable() -> str:
    """The dbt installed next to this Python (the project's virtualenv)."""
    exe = Path(sys.executable).parent / "dbt"
    return str(exe) if exe.exists() else "dbt"


def _newest_source_mtime() -> float:
    newest = 0.0
    for name in _SOURCES:
        path = DBT_PROJECT_DIR / name
        if path.is_file():
            newest = max(newest, path.stat().st_mtime)
        elif path.is_dir():
            for f in path.rglob("*"):
                if f.suffix in (".sql", ".yml", ".yaml", ".csv"):
                    newest = max(newest, f.stat().st_mtime)
    return newest


def _profile_key(env: Mapping[str, str]) -> str:
    """What dbt hashes of the connection to decide whether ``partial_parse.msgpack`` is reusable
    (host, port, user, database, sslmode: ``credentials.connection_info()``), with the defaults
    profiles.yml falls back to."""
    fields = ("localhost", "5432", "postgres", "cdp", "prefer")
    names = ("CDP_PG_HOST", "CDP_PG_PORT", "CDP_PG_USER", "CDP_PG_DBNAME", "CDP_PG_SSLMODE")
    return "\n".join(env.get(n, d) for n, d in zip(names, fields, strict=True))


def ensure_manifest(url: str | None = None) -> Path:
    """``target/manifest.json``, parsed again when missing or older than any project file, or
    (``url`` given) when the last parse was for another warehouse connection.

    dbt re-parses the whole project (~10 s) at the start of any command whose connection differs
    from the one ``target/partial_parse.msgpack`` was written for, and dagster-dbt seeds every
    invocation with that file: parsing for the warehouse the builds run against keeps each build
    on partial parsing. Parsing needs no database (profiles.yml reads the connection from env vars
    with defaults)."""
    env = {**os.environ, **(dbt_env(url) if url else {})}
    wanted = _profile_key(env)
    fresh = MANIFEST_PATH.exists() and MANIFEST_PATH.stat().st_mtime >= _newest_source_mtime()
    parsed_for = PARSED_FOR_PATH.read_text() if PARSED_FOR_PATH.exists() else None
    if fresh and (url is None or parsed_for == wanted):
        return MANIFEST_PATH
    proc = subprocess.run(
        [dbt_executable(), "parse", "--project-dir", str(DBT_PROJECT_DIR),
         "--profiles-dir", str(DBT_PROJECT_DIR), "--quiet"],
        cwd=DBT_PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    if proc.returncode != 0 or not MANIFEST_PATH.exists():
        raise CdpError(
            f"`dbt parse` of {DBT_PROJECT_DIR} failed:\n{(proc.stdout + proc.stderr)[-2000:]}"
        )
    PARSED_FOR_PATH.write_text(wanted)
    return MANIFEST_PATH


# dagster-dbt gives every dbt invocation a target/<step>-<run>-<hash>/ directory of its own (its
# manifest, logs and run_results.json, ~8 MB): two per nightly run, thousands in a few years
KEEP_INVOCATION_DIRS = 40


def prune_invocation_dirs(keep: int = KEEP_INVOCATION_DIRS, target: Path | None = None) -> int:
    """Delete all but the ``keep`` newest dagster-dbt invocation directories under ``target/``;
    returns how many were deleted. The newest (the current run's) are always kept."""
    import shutil

    target = target or DBT_PROJECT_DIR / "target"
    dirs = [p for p in target.glob("cdp_dbt_*-*") if p.is_dir()]
    dirs.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for old in dirs[keep:]:
        shutil.rmtree(old, ignore_errors=True)
    return max(0, len(dirs) - keep)


def apply_dbt_env(url: str) -> dict[str, str]:
    """Point dbt (profiles.yml) at the warehouse ``url`` for this process and its children."""
    env = dbt_env(url)
    os.environ.update(env)
    return env


def parse_stamp() -> int | None:
    """When ``target/partial_parse.msgpack`` was last written (None: never)."""
    msgpack = DBT_PROJECT_DIR / "target" / "partial_parse.msgpack"
    return msgpack.stat().st_mtime_ns if msgpack.exists() else None


def note_parse(env: Mapping[str, str], before: int | None) -> None:
    """After a dbt command run with ``env``: when it re-parsed the project (the stamp moved since
    ``before``), remember which connection the parse is for (see ``ensure_manifest``)."""
    now = parse_stamp()
    if now is not None and now != before:
        PARSED_FOR_PATH.write_text(_profile_key(env))


def run_dbt(args: list[str], url: str, *, check: bool = True) -> subprocess.CompletedProcess:
    """Run a dbt command against ``url`` (outside Dagster: benchmarks, tests, the CLI)."""
    env = {**os.environ, **dbt_env(url)}
    before = parse_stamp()
    proc = subprocess.run(
        [dbt_executable(), *args, "--project-dir", str(DBT_PROJECT_DIR),
         "--profiles-dir", str(DBT_PROJECT_DIR)],
        cwd=DBT_PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    note_parse(env, before)
    if check and proc.returncode != 0:
        raise CdpError(f"dbt {' '.join(args)} failed:\n{proc.stdout[-4000:]}{proc.stderr[-2000:]}")
    return proc
