"""dbt's ``run_results.json`` read for people: what failed and why, and which models a build
refreshed.

Plain Python (no Dagster): the pipeline's failure notes, the stage recorder, ``cdp dbt`` and the
dbt assets share it."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

RUN_RESULTS = "run_results.json"
# dagster-dbt's DagsterDbtCliRuntimeError names the invocation's log, in its own target dir:
# "... or view the dbt debug log: /repo/target/cdp_dbt_models-d376453-fabdc6a/dbt.log."
_DBT_LOG = re.compile(r"dbt debug log: (\S+?dbt\.log)")
_ERRORS_PARSED = "Errors parsed from dbt logs:"
# the header line of a dbt node error: "Database Error in model customers (models/x.sql)"
_ERROR_HEADER = re.compile(r"^[\w ]*Error in (model|test|seed|snapshot|unit_test|operation)\b")
# "dagster_dbt.errors.DagsterDbtCliRuntimeError: The dbt ..." -> "The dbt ..." (a module-qualified
# class only: "KeyError: 'x'" says more with its class)
_EXC_PREFIX = re.compile(r"^(?:[A-Za-z_]\w*\.)+[A-Z]\w*: ")
_LABELS = {"unit_test": "unit test", "operation": "hook"}
MAX_MESSAGE = 300


def load(path: str | Path) -> dict | None:
    """A run_results.json as a dict; None when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def node_label(unique_id: str) -> tuple[str, str]:
    """("test", "unique_customers_customer_id") from a dbt unique id."""
    parts = unique_id.split(".")
    kind = parts[0] if parts else "node"
    if kind == "unit_test" and len(parts) >= 4:
        name = f"{parts[2]}::{parts[3]}"
    else:
        name = parts[2] if len(parts) >= 3 else unique_id
    return _LABELS.get(kind, kind), name


def first_error_line(message: str | None) -> str:
    """The line of a dbt error message that says what went wrong: the database's own message
    rather than dbt's "Database Error in model x (path)" header."""
    lines = [line.strip() for line in (message or "").splitlines() if line.strip()]
    if not lines:
        return "no message"
    for line in lines:
        if not _ERROR_HEADER.match(line):
            return _clip(line)
    return _clip(lines[0])


def failures(run_results: Mapping[str, Any]) -> list[str]:
    """One line per node that failed or errored, in run order: tests with the rows that broke
    them, models with the first line of the database error; then how many nodes were skipped."""
    out = []
    skipped = 0
    for result in run_results.get("results") or []:
        status = result.get("status")
        label, name = node_label(str(result.get("unique_id", "")))
        if status == "fail":
            rows = result.get("failures")
            counted = f" ({rows:,} row{'' if rows == 1 else 's'})" if isinstance(rows, int) else ""
            out.append(f"dbt {label} {name} failed{'' if label == 'unit test' else counted}")
        elif status in ("error", "runtime error"):
            out.append(f"dbt {label} {name} errored: {first_error_line(result.get('message'))}")
        elif status == "skipped":
            skipped += 1
    if out and skipped:
        out.append(f"{skipped} dependent node{'' if skipped == 1 else 's'} skipped")
    return out


def run_results_for_error(message: str) -> Path | None:
    """The run_results.json of the dbt invocation a dagster-dbt error message is about."""
    match = _DBT_LOG.search(message or "")
    if not match:
        return None
    path = Path(match.group(1).rstrip(".")).with_name(RUN_RESULTS)
    return path if path.exists() else None


def describe_error(message: str | None, *, limit: int = 3) -> str:
    """A failed step's error in a line: for a dbt invocation what failed and why (from its
    run_results.json, else the errors dagster-dbt parsed from dbt's log), otherwise the first
    line of the error without the exception's class name."""
    message = (message or "").strip()
    if not message:
        return "unknown error"
    path = run_results_for_error(message)
    results = load(path) if path else None
    lines = failures(results) if results else []
    if lines:
        shown = lines[:limit]
        if len(lines) > limit:
            shown.append(f"and {len(lines) - limit} more")
        return "; ".join(shown)
    if _ERRORS_PARSED in message:
        parsed = message.split(_ERRORS_PARSED, 1)[1]
        first = next((line.strip() for line in parsed.splitlines() if line.strip()), "")
        if first:
            return _clip(first)
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    first = _EXC_PREFIX.sub("", lines[0])
    if first.endswith(":") and len(lines) > 1:  # "2 blocking asset checks failed …:\nasset: a,b"
        first = f"{first} {lines[1]}"
    return _clip(first)


def step_error_text(error) -> str | None:
    """The message of a Dagster step failure's error (``SerializableErrorInfo``), unwrapped from
    Dagster's "Error occurred while executing op" wrapper to the user code's own error."""
    while (
        error is not None
        and getattr(error, "cls_name", None) == "DagsterExecutionStepExecutionError"
        and getattr(error, "cause", None) is not None
    ):
        error = error.cause
    return getattr(error, "message", None)


CHECK_FAILED = "DagsterAssetCheckFailedError"


def failed_checks_text(evaluations) -> str | None:
    """The failed ones among Dagster ``AssetCheckEvaluation``s in a line, e.g. ``check churn_model
    holdout_quality_gate failed: holdout ROC-AUC 0.61 below 0.75``; None when none failed."""
    lines = []
    for ev in evaluations:
        if ev is None or getattr(ev, "passed", True):
            continue
        asset = ev.asset_key.to_user_string() if ev.asset_key else ""
        text = f"check {asset} {ev.check_name} failed".replace("  ", " ")
        lines.append(f"{text}: {ev.description}" if ev.description else text)
    return "; ".join(lines) or None


def step_failure_reason(message: str | None, error_class: str | None, evaluations) -> str:
    """Why a step failed, in a line: what its failed blocking checks said when that is what
    stopped it (``evaluations``: the step's check evaluations, an iterable read only then),
    else ``describe_error`` of its error message."""
    if error_class == CHECK_FAILED:
        checks = failed_checks_text(evaluations() if callable(evaluations) else evaluations)
        if checks:
            return checks
    return describe_error(message)


@dataclass(frozen=True)
class ModelRefresh:
    model: str  # dbt model name, e.g. customers
    relation: str | None  # schema.table, e.g. marts.customers
    refreshed_at: datetime
    rows: int | None  # rows the statement reported (tables: all rows; incremental: new ones)


def model_refreshes(run_results: Mapping[str, Any]) -> list[ModelRefresh]:
    """The models a dbt invocation built successfully, with when and how many rows."""
    out = []
    for result in run_results.get("results") or []:
        unique_id = str(result.get("unique_id", ""))
        if not unique_id.startswith("model.") or result.get("status") != "success":
            continue
        finished = None
        for timing in result.get("timing") or []:
            if timing.get("name") == "execute" and timing.get("completed_at"):
                finished = _parse_time(timing["completed_at"])
        if finished is None:
            continue
        rows = (result.get("adapter_response") or {}).get("rows_affected")
        relation = result.get("relation_name")
        out.append(
            ModelRefresh(
                model=node_label(unique_id)[1],
                relation=".".join(p.strip('"') for p in relation.split(".")[-2:])
                if relation
                else None,
                refreshed_at=finished,
                rows=rows if isinstance(rows, int) and rows >= 0 else None,
            )
        )
    return out


def _parse_time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _clip(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"
