"""The identity blocklist: normalized identifier values that never link records."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from orchestration.errors import CdpError

DEFAULT_PATH = Path(__file__).with_name("identity_blocklist.yml")


@dataclass(frozen=True)
class Blocklist:
    exact: dict[str, frozenset[str]]
    patterns: dict[str, tuple[re.Pattern, ...]]

    def flags(self, normalized: pd.Series, pii_type: str) -> pd.Series:
        """True where a normalized value is blocked (vectorised)."""
        blocked = normalized.isin(self.exact.get(pii_type, frozenset()))
        for pattern in self.patterns.get(pii_type, ()):
            blocked |= normalized.str.fullmatch(pattern.pattern).fillna(False).astype(bool)
        return blocked.fillna(False).astype(bool)


def load_blocklist(path: Path | None = None) -> Blocklist:
    path = path or DEFAULT_PATH
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise CdpError(
            f"identity blocklist {path} does not exist (CDP_IDENTITY_BLOCKLIST)"
        ) from None
    except yaml.YAMLError as exc:
        raise CdpError(f"identity blocklist {path} is not valid YAML: {exc}") from None
    exact: dict[str, frozenset[str]] = {}
    patterns: dict[str, tuple[re.Pattern, ...]] = {}
    for pii_type, spec in raw.items():
        if pii_type not in ("email", "phone"):
            raise CdpError(f"{path}: unknown identifier type {pii_type!r}; use email or phone")
        unknown = set(spec or {}) - {"exact", "patterns"}
        if unknown:
            raise CdpError(
                f"{path}: {pii_type}: unknown keys {sorted(unknown)}; use exact, patterns"
            )
        exact[pii_type] = frozenset(str(v).strip().lower() for v in (spec or {}).get("exact", []))
        compiled = []
        for i, pat in enumerate((spec or {}).get("patterns", [])):
            try:
                compiled.append(re.compile(str(pat)))
            except re.error as exc:
                raise CdpError(f"{path}: {pii_type}.patterns[{i}] {pat!r}: {exc}") from None
        patterns[pii_type] = tuple(compiled)
    return Blocklist(exact, patterns)
