"""The cdp command line, run as a user would run it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def cdp(*args, env_extra=None, timeout=120):
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run(
        [str(BIN / "cdp"), *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def test_db_url_prints_only_the_url_and_psql_can_use_it(fresh_db):
    proc = cdp("db", "url", env_extra={"CDP_DATABASE_URL": fresh_db})
    assert proc.returncode == 0
    assert proc.stdout.strip() == fresh_db
    query = cdp("db", "psql", "-tAc", "select 40 + 2", env_extra={"CDP_DATABASE_URL": fresh_db})
    assert query.stdout.strip() == "42", query.stderr


def test_wrong_database_url_is_a_clear_error_without_traceback():
    proc = cdp("db", "status", env_extra={"CDP_DATABASE_URL": "postgresql://u@127.0.0.1:1/x"})
    assert proc.returncode == 1
    assert "127.0.0.1:1/x" in proc.stderr and "Traceback" not in proc.stderr


def test_demo_rejects_a_bad_date():
    proc = cdp("demo", "--as-of", "25/11/2026")
    assert proc.returncode == 1 and "YYYY-MM-DD" in proc.stderr


def test_demo_takes_full_refresh():
    # parsed as an option (an unknown one exits 2 before the date is even looked at)
    proc = cdp("demo", "--full-refresh", "--as-of", "25/11/2026")
    assert proc.returncode == 1 and "YYYY-MM-DD" in proc.stderr


# ------------------------------------------------------------------------------------- cdp dbt


def test_dbt_runs_against_the_warehouse_without_any_setup(fresh_db, tmp_path):
    # from another directory, with no CDP_PG_* in the environment: cdp sets both
    proc = subprocess.run(
        [str(BIN / "cdp"), "dbt", "debug"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("CDP_PG_")},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    out = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout)  # dbt's colours
    database = fresh_db.split("?")[0].rsplit("/", 1)[-1]
    assert f"database: {database}" in out  # the fresh warehouse, not a default
    assert "Connection test: [OK connection ok]" in out


def test_dbt_passes_arguments_and_exit_code_through(fresh_db):
    listed = cdp(
        "dbt", "ls", "--select", "customers", "--resource-type", "model", "--output", "name",
        env_extra={"CDP_DATABASE_URL": fresh_db}, timeout=300,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stdout[-3000:] + listed.stderr[-2000:]
    assert "customers" in listed.stdout.split()
    assert "customer_profiles" not in listed.stdout.split()  # --select reached dbt
    bad = cdp("dbt", "ls", "--no-such-option", env_extra={"CDP_DATABASE_URL": fresh_db})
    assert bad.returncode == 2  # dbt's usage error, not typer's or a generic 1
    assert "no-such-option" in bad.stderr + bad.stdout


def test_dbt_version_and_help_are_dbts():
    version = cdp("dbt", "--version")
    assert version.returncode == 0
    assert "installed:" in version.stdout and "postgres" in version.stdout
    helped = cdp("dbt", "--help")
    assert helped.returncode == 0 and "An ELT tool" in helped.stdout


# ---------------------------------------------------------------------------------- cdp status


def test_status_of_a_warehouse_that_never_ran(fresh_db):
    import json

    env = {"CDP_DATABASE_URL": fresh_db, "COLUMNS": "200"}
    proc = cdp("status", "--json", env_extra=env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is True and report["last_run"] is None
    assert {name: s["state"] for name, s in report["stages"].items()} == {
        "sources": "never", "dbt": "never", "churn": "never", "segments": "never",
        "exports": "never",
    }  # fmt: skip
    text = cdp("status", env_extra=env)
    assert text.returncode == 0, text.stderr
    assert "Last pipeline run: never" in text.stdout
    assert "Sources: nothing landed yet" in text.stdout
    assert "Marts: never refreshed" in text.stdout


def test_status_after_a_landing(demo_warehouse):
    import json

    from tests.conftest import TEST_AS_OF

    url, _ = demo_warehouse
    proc = cdp("status", "--json", env_extra={"CDP_DATABASE_URL": url})
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    sources = {s["source"]: s for s in report["sources"]}
    assert set(sources) == {"shopify", "klaviyo", "ga4", "helpdesk", "subscriptions"}
    for s in sources.values():
        assert s["last_load"] and s["last_load_age_seconds"] >= 0 and not s["failing"]
        # the demo's history ends on its as-of day (UTC): that is how far the data reaches
        assert s["data_through"][:10] <= TEST_AS_OF, s
        assert s["behind_seconds"] > 0
    assert max(s["data_through"] for s in sources.values())[:10] == TEST_AS_OF
    assert report["demo_loaded_through"] == TEST_AS_OF
    assert report["stages"]["sources"]["state"] == "ok"
    assert report["stages"]["dbt"]["state"] == "never"
    text = cdp("status", env_extra={"CDP_DATABASE_URL": url, "COLUMNS": "200"})
    assert text.returncode == 0
    assert f"Demo data loaded through {TEST_AS_OF}" in text.stdout
    assert "shopify" in text.stdout and "Marts: never refreshed" in text.stdout
