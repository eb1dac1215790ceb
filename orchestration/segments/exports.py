"""The ``exports`` key of a segment file, exactly as the activation issue specifies it:

    exports:
      - destination: csv            # or parquet
        columns: [customer_id, email, first_name, lifetime_value, churn_risk_score]
      - destination: webhook
        url: https://hooks.example.com/cdp
        secret_env: CDP_WEBHOOK_SECRET
        batch_size: 500             # optional
      - destination: klaviyo_list   # activation/klaviyo_list.py
        list_id: Xy12Ab
        api_key_env: KLAVIYO_API_KEY

Other keys are errors. Whether ``columns`` name catalog fields is checked by the compiler
(``check_exports``) against the live catalog; PII columns come from the vault at export time.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PII_EXPORT_COLUMNS = ("email", "phone", "first_name", "last_name")
FILE_EXPORT_DESTINATIONS = ("csv", "parquet")
EXPORT_KEYS = {
    "csv": ("destination", "columns"),
    "parquet": ("destination", "columns"),
    "webhook": ("destination", "url", "secret_env", "batch_size"),
    "klaviyo_list": ("destination", "list_id", "api_key_env"),
}
ENV_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
URL_RE = re.compile(r"^https?://[^\s/]+")
LIST_ID_RE = re.compile(r"^[A-Za-z0-9]{1,64}$")
MAX_BATCH = 100_000


@dataclass(frozen=True)
class Export:
    destination: str  # csv | parquet | webhook | klaviyo_list
    columns: tuple[str, ...] | None = None  # None: activation's default columns
    url: str | None = None
    secret_env: str | None = None
    batch_size: int | None = None
    list_id: str | None = None  # klaviyo_list
    api_key_env: str | None = None  # klaviyo_list


def _hint(word: Any, choices: tuple[str, ...]) -> str:
    match = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" — did you mean `{match[0]}`?" if match else f" (one of: {', '.join(choices)})"


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_exports(data: Any, err: Callable[[str, str], None]) -> list[Export]:
    """Validated exports; every problem is reported through ``err(path, message)``."""
    if data is None:
        return []
    if not isinstance(data, list):
        err("exports", f"exports must be a list of destinations, got {type(data).__name__}")
        return []
    out = []
    for i, item in enumerate(data):
        path = f"exports[{i}]"
        if not isinstance(item, dict):
            err(path, f"expected a mapping with `destination`, got {type(item).__name__}")
            continue
        dest = item.get("destination")
        if dest not in EXPORT_KEYS:
            err(
                f"{path}.destination",
                f"unknown destination `{dest}`{_hint(dest, tuple(EXPORT_KEYS))}",
            )
            continue
        problems: list[tuple[str, str]] = []
        allowed = EXPORT_KEYS[dest]
        for key in item:
            if key not in allowed:
                problems.append(
                    (path, f"unknown key `{key}` in a {dest} export{_hint(key, allowed)}")
                )
        columns = item.get("columns")
        if columns is not None and (
            not isinstance(columns, list)
            or not columns
            or not all(isinstance(c, str) and c for c in columns)
        ):
            problems.append((f"{path}.columns", "columns must be a non-empty list of field names"))
        url, secret, batch = item.get("url"), item.get("secret_env"), item.get("batch_size")
        if dest == "webhook":
            if not isinstance(url, str) or not URL_RE.match(url):
                problems.append((f"{path}.url", f"url must be an http(s) URL, got `{url}`"))
            if not isinstance(secret, str) or not ENV_NAME_RE.match(secret):
                problems.append(
                    (
                        f"{path}.secret_env",
                        "secret_env must name the environment variable holding the signing secret "
                        f"(e.g. CDP_WEBHOOK_SECRET), got `{secret}`",
                    )
                )
            if batch is not None and (not _whole(batch) or not 1 <= batch <= MAX_BATCH):
                problems.append(
                    (f"{path}.batch_size", f"`{batch}` is not a whole number 1-{MAX_BATCH}")
                )
        if dest == "klaviyo_list":
            list_id, key_env = item.get("list_id"), item.get("api_key_env")
            if not isinstance(list_id, str) or not LIST_ID_RE.match(list_id):
                problems.append(
                    (
                        f"{path}.list_id",
                        f"list_id must be a Klaviyo list id (e.g. Xy12Ab), got `{list_id}`",
                    )
                )
            if not isinstance(key_env, str) or not ENV_NAME_RE.match(key_env):
                problems.append(
                    (
                        f"{path}.api_key_env",
                        "api_key_env must name the environment variable holding the Klaviyo "
                        f"private API key (e.g. KLAVIYO_API_KEY), got `{key_env}`",
                    )
                )
        for where, message in problems:
            err(where, message)
        if not problems:
            out.append(
                Export(
                    dest,
                    tuple(columns) if columns else None,
                    url,
                    secret,
                    batch,
                    item.get("list_id"),
                    item.get("api_key_env"),
                )
            )
    return out
