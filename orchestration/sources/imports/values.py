"""Reading the values of a shop's CSV export: lenient where real files are messy, strict where a
guess would corrupt data.

Lenient: currency symbols and codes, thousands separators (``$1,234.50``, ``1.234,50 €``,
``(12.00)``), Shopify's ``2024-01-05 13:45:00 -0500``, ISO 8601, ``YYYYMMDD``, ``yes``/``no``.
Strict: a value that does not read as its type rejects its row, with the row number, the column
and the value; times without an offset need a time zone (``--timezone``); day/month order of
``01/05/2024``-style dates is deduced only when the file's own values prove it (a day above 12),
else ``--date-format`` must say it. Each problem is recorded in a :class:`Rejects`, never
dropped silently.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from orchestration.errors import CdpError

MAX_MONEY = 10**10  # numeric(12,2): anything at or above this cannot land


@dataclass(frozen=True)
class DateRules:
    """How to read the file's dates: ``timezone`` for times without an offset (IANA name),
    ``date_format`` (strptime, e.g. ``%m/%d/%Y``) for dates that are not ISO 8601."""

    timezone: str | None = None
    date_format: str | None = None

    def __post_init__(self) -> None:
        if self.timezone:
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise CdpError(
                    f"--timezone {self.timezone!r} is not a time zone; use an IANA name such as "
                    "UTC, America/New_York or Europe/Paris"
                ) from None


@dataclass
class Rejects:
    """Rejected rows of one file: row index (0-based, data rows) -> problems (column, kind,
    the value as written)."""

    problems: dict[int, list[tuple[str, str, str]]] = field(default_factory=dict)

    def add(self, rows, column: str, kind: str, values=None) -> None:
        rows = [int(r) for r in rows]
        shown = [""] * len(rows) if values is None else [str(v) for v in values]
        for row, value in zip(rows, shown, strict=True):
            self.problems.setdefault(row, []).append((column, kind, value))

    def mask(self, n: int) -> np.ndarray:
        out = np.zeros(n, dtype=bool)
        if self.problems:
            out[list(self.problems)] = True
        return out

    def reason(self, row: int) -> str:
        return "; ".join(
            f"column {c}: {k}" + (f" ('{v[:60]}')" if v else "") for c, k, v in self.problems[row]
        )

    def by_reason(self) -> Counter:
        """How many rows each (column: kind) rejected; a row with two problems counts in both."""
        return Counter(f"{c}: {k}" for probs in self.problems.values() for c, k, _ in probs)

    def __len__(self) -> int:
        return len(self.problems)


def text(values: pd.Series) -> pd.Series:
    """Trimmed strings, empty as missing."""
    s = values.astype("string[pyarrow]").str.strip()  # Arrow kernels, not a loop per value
    return s.mask(s == "")


def strip_excel_guard(values: pd.Series) -> pd.Series:
    """Shopify writes ``'+31612345678`` and ``'01234`` so spreadsheets keep them as text."""
    return values.str.removeprefix("'")


# ------------------------------------------------------------------------------------ numbers

_CURRENCY = r"(?:[A-Za-z]{3}|[$€£¥₹]|[A-Za-z]{1,2}\$)"
_MONEY = re.compile(
    rf"^(?P<neg1>-)?\s*{_CURRENCY}?\s*(?P<neg2>-)?\s*(?P<body>[\d.,' \u00a0\u202f]*\d)"
    rf"\s*{_CURRENCY}?$"
)
_PLAIN = re.compile(r"^\d+(\.\d+)?$")
_US = re.compile(r"^\d{1,3}(,\d{3})+(\.\d+)?$")
_EU = re.compile(r"^\d{1,3}(\.\d{3})+(,\d+)?$")
_DECIMAL_COMMA = re.compile(r"^\d+,\d{1,2}$")
_SPACED = re.compile(r"^\d{1,3}([ '\u00a0\u202f]\d{3})+([.,]\d{1,2})?$")


def _money_one(value: str) -> str | None:
    """A written amount as a plain decimal string, or None when it does not read as one."""
    v = value.strip()
    negative = False
    if v.startswith("(") and v.endswith(")"):
        negative, v = True, v[1:-1].strip()
    m = _MONEY.match(v)
    if not m:
        return None
    negative = negative or bool(m.group("neg1") or m.group("neg2"))
    body = m.group("body")
    if _PLAIN.match(body):
        number = body
    elif _US.match(body):  # 1,234.50: a comma followed by three digits groups thousands
        number = body.replace(",", "")
    elif _EU.match(body):  # 1.234,50
        number = body.replace(".", "").replace(",", ".")
    elif _DECIMAL_COMMA.match(body):  # 12,50: one or two digits after a comma are cents
        number = body.replace(",", ".")
    elif _SPACED.match(body):  # 1 234,50 / 1'234.50
        number = re.sub(r"[ '\u00a0\u202f]", "", body).replace(",", ".")
    else:
        return None
    return f"-{number}" if negative else number


def parse_money(raw: pd.Series, column: str, rejects: Rejects) -> pd.Series:
    """Amounts as float64 (missing stays NaN); unreadable or too large ones are rejected."""
    s = text(raw)
    present = s.notna()
    out = pd.Series(np.nan, index=s.index, dtype="float64")
    if not present.any():
        return out
    values = s[present]
    plain = values.str.fullmatch(r"-?\d+(\.\d+)?").fillna(False)
    fast = pd.to_numeric(values.where(plain).astype(object), errors="coerce").astype("float64")
    slow = fast.isna()
    if slow.any():
        fast[slow] = pd.to_numeric(
            values[slow].map(_money_one, na_action="ignore"), errors="coerce"
        )
    bad = fast.isna() | (fast.abs() >= MAX_MONEY)
    if bad.any():
        rejects.add(values.index[bad], column, "not an amount", values[bad])
    out[present] = fast.where(~bad).to_numpy(dtype="float64", na_value=np.nan)
    return out


def parse_int(raw: pd.Series, column: str, rejects: Rejects) -> pd.Series:
    """Whole numbers (``2``, ``2.0``) as Int64; anything else is rejected."""
    s = text(raw)
    num = pd.to_numeric(s.str.replace(",", "", regex=False), errors="coerce")
    bad = (s.notna() & (num.isna() | (num % 1 != 0) | (num.abs() > 2**31 - 1))).fillna(True)
    bad &= s.notna()
    if bad.any():
        rejects.add(s.index[bad], column, "not a whole number", s[bad])
    return num.where(~bad).round().astype("Int64")


def parse_id(raw: pd.Series, column: str, rejects: Rejects) -> pd.Series:
    """Positive 64-bit ids (``5101234035945``; Shopify's ``'5101234035945`` too) as Int64."""
    s = strip_excel_guard(text(raw))
    ok = s.str.fullmatch(r"\d{1,18}").fillna(False)
    bad = s.notna() & ~ok
    if bad.any():
        rejects.add(s.index[bad], column, "not a numeric id", s[bad])
    return pd.to_numeric(s.where(ok), errors="coerce").astype("Int64")


_TRUE = {"yes", "y", "true", "t", "1", "subscribed"}
_FALSE = {"no", "n", "false", "f", "0", "not_subscribed", "unsubscribed"}


def parse_bool(raw: pd.Series, column: str, rejects: Rejects) -> pd.Series:
    s = text(raw).str.lower()
    out = pd.Series(pd.NA, index=s.index, dtype="boolean")
    out[s.isin(_TRUE).fillna(False)] = True
    out[s.isin(_FALSE).fillna(False)] = False
    bad = s.notna() & out.isna()
    if bad.any():
        rejects.add(s.index[bad], column, "not yes/no", s[bad])
    return out


# -------------------------------------------------------------------------------------- dates

_ISO = re.compile(
    r"^(?P<date>\d{4}-\d{1,2}-\d{1,2})"
    r"(?:[T ](?P<time>\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?))?"
    r"\s*(?P<zone>Z|UTC|GMT|[+-]\d{2}:?\d{2})?$"
)
_COMPACT = re.compile(r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})$")
_SLASHED = re.compile(
    r"^(?P<a>\d{1,2})[/.-](?P<b>\d{1,2})[/.-](?P<y>\d{4})"
    r"(?:[T ,]+(?P<time>\d{1,2}:\d{2}(?::\d{2})?)\s*(?P<ampm>[AaPp][Mm])?)?"
    r"\s*(?P<zone>Z|UTC|GMT|[+-]\d{2}:?\d{2})?$"
)
ISO_HINT = "YYYY-MM-DD[ HH:MM[:SS]][ ±HHMM], YYYYMMDD or DD/MM/YYYY | MM/DD/YYYY"


@dataclass
class DateNotes:
    """What the file's dates needed, for the summary."""

    naive_columns: set[str] = field(default_factory=set)  # read in --timezone
    deduced: dict[str, str] = field(default_factory=dict)  # column -> day/month order deduced


def _zone(z: pd.Series) -> pd.Series:
    z = z.str.replace(r"^(Z|UTC|GMT)$", "+00:00", regex=True)
    return z.str.replace(r"^([+-]\d{2})(\d{2})$", r"\1:\2", regex=True)


def _slash_order(m: pd.DataFrame, column: str, date_rows: pd.Series, where: str) -> str:
    """``dmy`` or ``mdy`` from the values themselves, or an error asking for --date-format."""
    a, b = m["a"].astype(int), m["b"].astype(int)
    day_first = (a > 12).any()
    month_first = (b > 12).any()
    example = f"row {date_rows.index[0] + 2}: '{date_rows.iloc[0]}'"
    if day_first and month_first:
        raise CdpError(
            f"{where}: column {column} mixes DD/MM and MM/DD dates; fix the file or give "
            f"--date-format (e.g. --date-format %d/%m/%Y) and the other rows are rejected"
        )
    if not day_first and not month_first:
        raise CdpError(
            f"{where}: column {column} has dates like {example} that read either as "
            "DD/MM/YYYY or as MM/DD/YYYY; say which with --date-format %m/%d/%Y (US) or "
            "--date-format %d/%m/%Y"
        )
    return "dmy" if day_first else "mdy"


def parse_datetimes(
    raw: pd.Series, column: str, rules: DateRules, rejects: Rejects, notes: DateNotes, where: str
) -> pd.Series:
    """Timestamps as datetime64[ns, UTC]. The offset written in a value wins; a value without one
    is read in ``rules.timezone`` (an error naming the column when none was given)."""
    written = text(raw)
    # Shopify's own layout first, in one vectorized pass; the rest value by value below
    fast = pd.to_datetime(written, format="%Y-%m-%d %H:%M:%S %z", errors="coerce", utc=True)
    s = written.mask(fast.notna())
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns, UTC]")
    present = s.notna()
    if not present.any():
        return fast
    iso = s.str.extract(_ISO)
    # every value as (ISO date-time text, zone text or missing)
    stamp = (iso["date"] + " " + iso["time"].fillna("00:00")).astype("string")
    zone = iso["zone"].astype("string")
    rest = present & stamp.isna()
    if rest.any():
        compact = s[rest].str.extract(_COMPACT)
        built = compact["y"] + "-" + compact["m"] + "-" + compact["d"] + " 00:00"
        stamp = stamp.fillna(built.astype("string").reindex(stamp.index))
        rest &= stamp.isna()
    if rest.any() and rules.date_format:
        parsed = pd.to_datetime(s[rest], format=rules.date_format, errors="coerce")
        ok = parsed.notna()
        if ok.any():
            got = parsed[ok]
            if getattr(got.dt, "tz", None) is not None:
                zone = zone.mask(ok.reindex(zone.index, fill_value=False), "+00:00")
                got = got.dt.tz_convert("UTC").dt.tz_localize(None)
            built = got.dt.strftime("%Y-%m-%d %H:%M:%S").astype("string")
            stamp = stamp.fillna(built.reindex(stamp.index))
        rest &= stamp.isna()
    elif rest.any():
        slashed = s[rest].str.extract(_SLASHED)
        ok = slashed["a"].notna()
        if ok.any():
            m = slashed[ok]
            order = _slash_order(m, column, s[rest][ok], where)
            day, month = (m["a"], m["b"]) if order == "dmy" else (m["b"], m["a"])
            time = m["time"].fillna("00:00")
            pm = m["ampm"].str.lower() == "pm"
            am = m["ampm"].str.lower() == "am"
            hours = time.str.split(":").str[0].astype(int)
            hours = hours.where(~(pm & (hours < 12)), hours + 12).where(~(am & (hours == 12)), 0)
            time = hours.astype(str).str.zfill(2) + ":" + time.str.split(":", n=1).str[1]
            built = (m["y"] + "-" + month + "-" + day + " " + time).astype("string")
            stamp = stamp.fillna(built.reindex(stamp.index))
            zone = zone.fillna(m["zone"].astype("string").reindex(zone.index))
            notes.deduced[column] = "DD/MM/YYYY" if order == "dmy" else "MM/DD/YYYY"
        rest &= stamp.isna()
    aware = stamp.notna() & zone.notna()
    naive = stamp.notna() & zone.isna()
    if aware.any():
        text_aware = stamp[aware] + _zone(zone[aware])
        out[aware] = pd.to_datetime(text_aware, format="ISO8601", utc=True, errors="coerce")
    if naive.any():
        if not rules.timezone:
            first = naive[naive].index[0]
            raise CdpError(
                f"{where}: column {column} has times without a time zone (row {first + 2}: "
                f"'{s[first]}'); say which zone they are in with --timezone (e.g. --timezone "
                "America/New_York, or --timezone UTC)"
            )
        local = pd.to_datetime(stamp[naive], format="ISO8601", errors="coerce")
        out[naive] = local.dt.tz_localize(
            rules.timezone, ambiguous=True, nonexistent="shift_forward"
        ).dt.tz_convert("UTC")
        notes.naive_columns.add(column)
    bad = present & out.isna()
    if bad.any():
        rejects.add(s.index[bad], column, "not a date", s[bad])
    return out.fillna(fast)
