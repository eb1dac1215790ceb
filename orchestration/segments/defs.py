"""Dagster wiring for segments: one asset per file in ``segments/``, discovered at load time.

Each asset (key ``segments/<slug>``, group ``segments``) is downstream of the dbt
``customer_profiles`` asset (and ``customer_timeline`` when it has behavioural conditions). It
reads its file again when it runs, so an edited rule takes effect without reloading; a file that
does not parse still gets an asset, which fails with the validation message instead of breaking
the whole code location.
"""
# no `from __future__ import annotations`: Dagster resolves resource annotations at runtime

from pathlib import Path

import dagster as dg

from orchestration.resources import WarehouseResource
from orchestration.segments.catalog import load_catalog
from orchestration.segments.compiler import compile_segment
from orchestration.segments.spec import SegmentError, load_directory, load_file, segment_files
from orchestration.segments.spec import slugify as _slugify
from orchestration.segments.views import SEGMENTS_DIR, RefreshResult, refresh_segment
from orchestration.warehouse.shop import shop_profile


def _dbt_key(model: str) -> dg.AssetKey:
    """The key the warehouse's dbt translator gives a model (e.g. marts/customer_profiles)."""
    try:
        from orchestration.warehouse import defs as warehouse_defs

        for assets_def in warehouse_defs.defs.assets or []:
            for key in getattr(assets_def, "keys", ()):
                if key.path[-1] == model:
                    return key
    except Exception:  # the warehouse defs failing to load must not hide segments
        pass
    return dg.AssetKey(["marts", model])


def _sample_markdown(rows: list[dict]) -> str:
    if not rows:
        return "_no members_"
    names = list(rows[0])
    lines = ["| " + " | ".join(names) + " |", "|" + " --- |" * len(names)]
    for row in rows:
        lines.append("| " + " | ".join("" if row[n] is None else str(row[n]) for n in names) + " |")
    return "\n".join(lines)


def refresh_metadata(result: RefreshResult) -> dict:
    return {
        "dagster/row_count": result.members,
        "dagster/table_name": f"segments.{result.slug}",
        "members": result.members,
        "share_of_base": dg.MetadataValue.float(round(result.share * 100, 2)),
        "base_customers": result.base,
        "revenue_lifetime_value": dg.MetadataValue.float(round(result.ltv_total or 0.0, 2)),
        "change_since_last_refresh": result.members - result.previous_members,
        "entered": result.entered,
        "exited": result.exited,
        "rule_hash": result.rule_hash,
        "rebuilt_view": result.rebuilt,
        "seconds": dg.MetadataValue.float(round(result.seconds, 3)),
        "compiled_sql": dg.MetadataValue.md(f"```sql\n{result.sql}\n```"),
        "sample": dg.MetadataValue.md(_sample_markdown(result.sample)),
    }


def segment_asset(path: Path, profiles_key: dg.AssetKey, timeline_key: dg.AssetKey):
    try:
        spec = load_file(path)
        slug, description = spec.slug, spec.description or spec.name
        deps = [profiles_key, *([timeline_key] if spec.uses_events() else [])]
        owners = [spec.owner] if spec.owner and "@" in spec.owner else []
        tags = {"owner": spec.owner} if spec.owner and not owners else {}
    except SegmentError as exc:
        slug, description = _slugify(path.stem), f"INVALID segment file: {exc}"
        deps, owners, tags = [profiles_key], [], {}

    @dg.asset(
        key=["segments", slug],
        group_name="segments",
        deps=deps,
        description=description,
        kinds={"postgres"},
        owners=owners,
        tags={k: _tag(v) for k, v in tags.items()},
        metadata={"dagster/table_name": f"segments.{slug}", "file": str(path)},
        automation_condition=dg.AutomationCondition.eager(),
    )
    def _segment(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        current = load_file(path)  # the file as it is now; errors name the file and rule path
        if current.slug != slug:
            raise SegmentError(
                str(path),
                [_slug_changed(slug, current.slug)],
            )
        registry, _ = load_directory(path.parent)
        registry[current.slug] = current
        with warehouse.connect() as conn:
            shop = shop_profile(conn)
            note = current.skip_note(shop.kind)
            if note:  # not built for this kind of shop: say so rather than build it empty
                context.log.info(f"segments.{slug}: {note} ({shop.reason})")
                return dg.MaterializeResult(
                    metadata={"skipped": note, "applies_to": current.applies_to,
                              "shop_kind": shop.kind, "shop": shop.reason}
                )  # fmt: skip
            catalog = load_catalog(conn, descriptions=False)
            compiled = compile_segment(current, catalog, registry)
            result = refresh_segment(conn, compiled, context.run_id)
        context.log.info(
            f"segments.{slug}: {result.members:,} members, +{result.entered:,} entered, "
            f"-{result.exited:,} exited{' (view rebuilt)' if result.rebuilt else ''}"
        )
        return dg.MaterializeResult(metadata=refresh_metadata(result))

    return _segment


def _tag(value: str) -> str:
    # tag values: letters, digits, -_. only, max 63
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in value)
    return cleaned[:63]


def _slug_changed(old: str, new: str):
    from orchestration.segments.spec import RuleError

    return RuleError(
        "slug",
        f"the slug changed from `{old}` to `{new}` since the code location loaded; reload it "
        "(Dagster UI: Deployment → Reload) so the asset key follows",
    )


def build_defs(directory: Path = SEGMENTS_DIR) -> dg.Definitions:
    profiles_key, timeline_key = _dbt_key("customer_profiles"), _dbt_key("customer_timeline")
    assets, seen = [], set()
    for path in segment_files(directory):
        asset = segment_asset(path, profiles_key, timeline_key)
        if asset.key in seen:  # duplicate slug: the refresh reports it; keep the first
            continue
        seen.add(asset.key)
        assets.append(asset)
    return dg.Definitions(assets=assets)


defs = build_defs()
