"""Segment files: loading (YAML, or the brief's JSON body) and structural validation.

Structure is checked here, without a database: keys, logic, the closed operator set, nesting,
the ``exports`` shape of the activation issue. Whether a field exists and an operator applies to
its type is checked by the compiler against the live catalog. Every problem is reported at once,
each with its rule path (``rules.conditions[1].conditions[0]``) and, where it helps, a
did-you-mean suggestion.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestration.errors import CdpError
from orchestration.segments.catalog import EVENTS
from orchestration.segments.exports import Export, parse_exports

NUMBER_OPERATORS = (
    "equals",
    "not_equals",
    "greater_than",
    "greater_than_or_equal",
    "less_than",
    "less_than_or_equal",
    "between",
)
TEXT_OPERATORS = ("equals", "not_equals", "in", "not_in", "contains", "starts_with")
BOOLEAN_OPERATORS = ("is_true", "is_false")
DATE_OPERATORS = ("before", "after", "within_last_days", "more_than_days_ago")
ANY_OPERATORS = ("is_set", "is_not_set")
SEGMENT_OPERATORS = ("in_segment", "not_in_segment")
FIELD_OPERATORS = tuple(
    dict.fromkeys(
        NUMBER_OPERATORS + TEXT_OPERATORS + BOOLEAN_OPERATORS + DATE_OPERATORS + ANY_OPERATORS
    )
)
NO_VALUE_OPERATORS = BOOLEAN_OPERATORS + ANY_OPERATORS
COUNT_OPERATORS = (
    "equals",
    "greater_than",
    "greater_than_or_equal",
    "less_than",
    "less_than_or_equal",
    "between",
)
LOGICS = ("AND", "OR")
TOP_LEVEL_KEYS = ("name", "slug", "description", "owner", "applies_to", "rules", "exports")
# which shops a segment is built for (orchestration.warehouse.shop decides the shop's kind):
# a segment that needs subscriptions is skipped, with a note, in a shop that sells none
APPLIES_TO = ("any", "subscription", "one_off")
RESERVED_SLUGS = {
    "definitions",
    "membership_changes",
    "membership_history",
    "membership_snapshot",
    "refreshes",
}
SLUG_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available


@dataclass(frozen=True)
class RuleError:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class SegmentError(CdpError):
    """Invalid segment definition: every problem, each with its rule path."""

    def __init__(self, source: str, errors: list[RuleError]):
        self.source = source
        self.errors = errors
        lines = "\n".join(f"  {source}: {e}" for e in errors)
        super().__init__(f"{len(errors)} problem(s) in segment {source}:\n{lines}")


# ------------------------------------------------------------------------------ the rule tree


@dataclass(frozen=True)
class FieldCondition:
    path: str
    field: str
    operator: str
    value: Any = None


@dataclass(frozen=True)
class SegmentCondition:
    path: str
    operator: str  # in_segment | not_in_segment
    segment: str


@dataclass(frozen=True)
class EventCondition:
    path: str
    event: str
    where: dict[str, Any]
    count_operator: str = "greater_than_or_equal"
    count_value: Any = 1
    within_last_days: int | None = None


@dataclass(frozen=True)
class Group:
    path: str
    logic: str
    conditions: tuple[Node, ...]


Node = FieldCondition | SegmentCondition | EventCondition | Group


@dataclass
class SegmentSpec:
    name: str
    slug: str
    rules: Group
    description: str = ""
    owner: str = ""
    exports: list[Export] = field(default_factory=list)
    source: str = "--rules"  # the file, for messages
    path: Path | None = None
    applies_to: str = "any"

    def skip_note(self, shop_kind: str) -> str | None:
        """Why this segment is not built for a shop of ``shop_kind``; None when it is."""
        if self.applies_to in ("any", shop_kind) or shop_kind == "unknown":
            return None  # unknown: the staging is not built, nothing to decide on
        needs = "subscriptions" if self.applies_to == "subscription" else "no subscriptions"
        return (
            f"skipped: applies_to {self.applies_to} (needs a shop with {needs}); "
            f"this is a {shop_kind} shop"
        )

    @property
    def own_hash(self) -> str:
        """sha256 of the normalized rules (not name, description or exports): stable across
        formatting, changes exactly when the rules do."""
        canonical = json.dumps(canonical_rules(self.rules), sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def rule_fields(self) -> list[str]:
        """Catalog fields the rules name, in order of appearance (activation's default columns)."""
        return list(
            dict.fromkeys(n.field for n in walk(self.rules) if isinstance(n, FieldCondition))
        )

    def referenced_segments(self) -> list[str]:
        return [n.segment for n in walk(self.rules) if isinstance(n, SegmentCondition)]

    def uses_events(self) -> bool:
        return any(isinstance(n, EventCondition) for n in walk(self.rules))


def walk(node: Node) -> Iterator[Node]:
    yield node
    if isinstance(node, Group):
        for child in node.conditions:
            yield from walk(child)


def canonical_rules(node: Node) -> dict[str, Any]:
    if isinstance(node, Group):
        return {"logic": node.logic, "conditions": [canonical_rules(c) for c in node.conditions]}
    if isinstance(node, FieldCondition):
        return {"field": node.field, "operator": node.operator, "value": node.value}
    if isinstance(node, SegmentCondition):
        return {"operator": node.operator, "value": node.segment}
    return {
        "event": node.event,
        "where": node.where,
        "count": {node.count_operator: node.count_value},
        "within_last_days": node.within_last_days,
    }


# ---------------------------------------------------------------------------------- helpers


def suggest(word: str, choices: Iterable[str]) -> str:
    """' — did you mean `x`?' or ''."""
    match = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" — did you mean `{match[0]}`?" if match else ""


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if slug and not slug[0].isalpha():
        slug = f"s_{slug}"
    return slug[:63]


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string"}.get(
        type(value), type(value).__name__
    )


# ---------------------------------------------------------------------------------- parsing


class _Parser:
    def __init__(self) -> None:
        self.errors: list[RuleError] = []

    def err(self, path: str, message: str) -> None:
        self.errors.append(RuleError(path, message))

    def unknown_keys(self, path: str, data: dict, allowed: Iterable[str], what: str) -> None:
        allowed = tuple(allowed)
        for key in data:
            if key not in allowed:
                hint = suggest(key, allowed) or f" (allowed: {', '.join(allowed)})"
                self.err(path, f"unknown key `{key}` in {what}{hint}")

    def group(self, data: Any, path: str) -> Group:
        if not isinstance(data, dict):
            self.err(path, f"expected a group {{logic, conditions}}, got {_type_name(data)}")
            return Group(path, "AND", ())
        self.unknown_keys(path, data, ("logic", "conditions"), "a group")
        logic = data.get("logic", "AND")
        if not isinstance(logic, str) or logic.upper() not in LOGICS:
            self.err(f"{path}.logic", f"logic must be AND or OR, got `{logic}`")
            logic = "AND"
        conditions = data.get("conditions")
        if not isinstance(conditions, list) or not conditions:
            self.err(f"{path}.conditions", "a group needs a non-empty list of conditions")
            conditions = []
        nodes = [self.node(c, f"{path}.conditions[{i}]") for i, c in enumerate(conditions)]
        return Group(path, logic.upper(), tuple(n for n in nodes if n is not None))

    def node(self, data: Any, path: str) -> Node | None:
        if not isinstance(data, dict):
            self.err(path, f"expected a condition or a group, got {_type_name(data)}")
            return None
        if "conditions" in data or "logic" in data:
            return self.group(data, path)
        if "event" in data:
            return self.event(data, path)
        if data.get("operator") in SEGMENT_OPERATORS:
            return self.segment(data, path)
        if "field" in data:
            return self.field_condition(data, path)
        self.err(
            path,
            "expected a condition {field, operator, value}, a segment condition "
            "{operator: in_segment, value: <slug>}, a behavioural condition {event, ...} "
            "or a group {logic, conditions}",
        )
        return None

    def field_condition(self, data: dict, path: str) -> FieldCondition | None:
        self.unknown_keys(path, data, ("field", "operator", "value"), "a condition")
        fld, op = data.get("field"), data.get("operator")
        ok = True
        if not isinstance(fld, str) or not fld:
            self.err(f"{path}.field", "field must be a field name (see `cdp segment fields`)")
            ok = False
        if op not in FIELD_OPERATORS:
            hint = suggest(op, FIELD_OPERATORS + SEGMENT_OPERATORS) if isinstance(op, str) else ""
            self.err(f"{path}.operator", f"unknown operator `{op}`{hint}")
            ok = False
        elif op in NO_VALUE_OPERATORS and data.get("value") is not None:
            self.err(f"{path}.value", f"operator `{op}` takes no value; remove `value`")
            ok = False
        elif op not in NO_VALUE_OPERATORS and "value" not in data:
            self.err(f"{path}.value", f"operator `{op}` needs a `value`")
            ok = False
        return FieldCondition(path, fld, op, data.get("value")) if ok else None

    def segment(self, data: dict, path: str) -> SegmentCondition | None:
        self.unknown_keys(path, data, ("field", "operator", "value", "segment"), "a condition")
        ref = data.get("value", data.get("segment"))
        if not isinstance(ref, str) or not ref:
            self.err(f"{path}.value", f"`{data['operator']}` needs the slug of another segment")
            return None
        return SegmentCondition(path, data["operator"], ref)

    def event(self, data: dict, path: str) -> EventCondition | None:
        self.unknown_keys(path, data, ("event", "where", "count", "within_last_days"), "an event")
        ok = True
        name = data.get("event")
        if name not in EVENTS:
            hint = suggest(name, EVENTS) or f" (events: {', '.join(EVENTS)})"
            self.err(f"{path}.event", f"unknown event `{name}`{hint}")
            ok = False
        where = data.get("where") or {}
        if not isinstance(where, dict):
            self.err(
                f"{path}.where", f"where must be a mapping of properties, got {_type_name(where)}"
            )
            ok, where = False, {}
        elif ok:
            props = EVENTS[name].properties
            for key in where:
                if key not in props:
                    hint = suggest(key, props) or f" (properties: {', '.join(props) or 'none'})"
                    self.err(f"{path}.where.{key}", f"event `{name}` has no property `{key}`{hint}")
                    ok = False
        count_op, count_value = "greater_than_or_equal", 1
        count = data.get("count")
        if count is not None:
            if not isinstance(count, dict) or len(count) != 1:
                self.err(
                    f"{path}.count", "count must be one comparison, e.g. {greater_than_or_equal: 2}"
                )
                ok = False
            else:
                count_op, count_value = next(iter(count.items()))
                if count_op not in COUNT_OPERATORS:
                    hint = suggest(count_op, COUNT_OPERATORS)
                    self.err(f"{path}.count", f"unknown count operator `{count_op}`{hint}")
                    ok = False
                elif not _valid_count(count_op, count_value):
                    self.err(
                        f"{path}.count.{count_op}",
                        f"`{count_value}` is not a whole number >= 0"
                        + (" pair [low, high]" if count_op == "between" else ""),
                    )
                    ok = False
        days = data.get("within_last_days")
        if days is not None and (not _is_int(days) or days <= 0):
            self.err(f"{path}.within_last_days", f"`{days}` is not a whole number of days > 0")
            ok = False
        if not ok:
            return None
        if count_op == "between":
            count_value = [int(count_value[0]), int(count_value[1])]
        return EventCondition(path, name, dict(where), count_op, count_value, days)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _valid_count(op: str, value: Any) -> bool:
    if op == "between":
        return (
            isinstance(value, list)
            and len(value) == 2
            and all(_is_int(v) and v >= 0 for v in value)
            and value[0] <= value[1]
        )
    return _is_int(value) and value >= 0


# ------------------------------------------------------------------------------ entry points


def parse_segment(data: Any, source: str, path: Path | None = None) -> SegmentSpec:
    """A segment from its parsed YAML/JSON document; raises SegmentError listing every problem.

    Accepts a segment file ({name, rules, ...}), the brief's request body (same keys) or a bare
    rules object ({logic, conditions}) for ad-hoc tests."""
    p = _Parser()
    if isinstance(data, dict) and "rules" not in data and "conditions" in data:
        data = {"name": "ad hoc", "rules": data}
    if not isinstance(data, dict):
        raise SegmentError(source, [RuleError("", "expected a mapping with name and rules")])
    p.unknown_keys("", data, TOP_LEVEL_KEYS, "a segment")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        p.err("name", "every segment needs a `name`")
        name = path.stem if path else "ad hoc"
    slug = data.get("slug") or slugify(name)
    if not isinstance(slug, str) or not SLUG_RE.match(slug):
        p.err("slug", f"slug `{slug}` must be lower-case letters, digits and _ (max 63)")
    elif slug in RESERVED_SLUGS:
        p.err("slug", f"slug `{slug}` is reserved; choose another name or slug")
    for key in ("description", "owner"):
        if data.get(key) is not None and not isinstance(data[key], str):
            p.err(key, f"{key} must be text")
    applies_to = data.get("applies_to") or "any"
    if applies_to not in APPLIES_TO:
        p.err(
            "applies_to",
            f"applies_to `{applies_to}` must be one of {', '.join(APPLIES_TO)}"
            + suggest(str(applies_to), APPLIES_TO),
        )
    if "rules" not in data:
        p.err("rules", "every segment needs `rules` ({logic, conditions})")
        rules = Group("rules", "AND", ())
    else:
        rules = p.group(data["rules"], "rules")
    exports = parse_exports(data.get("exports"), p.err)
    if p.errors:
        raise SegmentError(source, p.errors)
    return SegmentSpec(
        name=name.strip(),
        slug=slug,
        rules=rules,
        description=str(data.get("description") or "").strip(),
        owner=str(data.get("owner") or "").strip(),
        exports=exports,
        source=source,
        path=path,
        applies_to=applies_to,
    )


def load_text(text: str, source: str, path: Path | None = None) -> SegmentSpec:
    try:
        data = yaml.load(text, Loader=_LOADER)  # JSON is YAML too
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SegmentError(
            source, [RuleError("", f"not valid YAML/JSON{where}: {problem}")]
        ) from None
    return parse_segment(data, source, path)


def load_file(path: Path) -> SegmentSpec:
    path = Path(path)
    if not path.is_file():
        raise CdpError(f"segment file {path} does not exist")
    return load_text(path.read_text(), str(path), path)


def segment_files(directory: Path) -> list[Path]:
    return sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")])


def load_directory(directory: Path) -> tuple[dict[str, SegmentSpec], list[SegmentError]]:
    """Every valid segment in a directory by slug, and the errors of the invalid ones (one bad
    file does not stop the others)."""
    specs: dict[str, SegmentSpec] = {}
    errors: list[SegmentError] = []
    for path in segment_files(Path(directory)):
        try:
            spec = load_file(path)
        except SegmentError as exc:
            errors.append(exc)
            continue
        if spec.slug in specs:
            other = specs[spec.slug].source
            msg = f"slug `{spec.slug}` is also used by {other}; give one of them another `slug`"
            errors.append(SegmentError(str(path), [RuleError("slug", msg)]))
            continue
        specs[spec.slug] = spec
    return specs, errors
