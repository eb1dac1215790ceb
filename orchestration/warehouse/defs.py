"""Dagster wiring for the warehouse: every dbt model an asset, every dbt test an asset check,
and the identity-resolution accuracy check against the demo ground truth."""
# no `from __future__ import annotations`: Dagster resolves config/resource annotations at runtime

import json
import time
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from orchestration.resources import WarehouseResource
from orchestration.warehouse.identity_eval import has_truth, identity_accuracy
from orchestration.warehouse.project import (
    DBT_PROJECT_DIR,
    apply_dbt_env,
    dbt_executable,
    ensure_manifest,
    prune_invocation_dirs,
)

LAYERS = ("staging", "intermediate", "marts")
# a raw table every producer (demo generator, live connectors) writes
LANDED_FIRST = dg.AssetKey(["raw_shopify", "customers"])
# marts.customer_profiles reads ml.churn_scores, which the churn asset computes from
# marts.churn_features: the profiles run as a second dbt step so the asset graph has no cycle.
# The view over ml.churn_scores goes with them (else Dagster runs it in a dbt step of its own).
PROFILES_SELECT = "customer_profiles+ stg_ml__churn_scores"
IDENTITY_MIN_PRECISION = 0.995
IDENTITY_MIN_RECALL = 0.995

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
ensure_manifest()


class CdpDbtTranslator(DagsterDbtTranslator):
    """Groups models by layer (staging, intermediate, marts); seeds join staging."""

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project):
        spec = super().get_asset_spec(manifest, unique_id, project)
        node = manifest.get("nodes", {}).get(unique_id)
        if node is None or node.get("resource_type") not in ("model", "seed", "snapshot"):
            return spec
        fqn = node.get("fqn", [])
        layer = fqn[1] if len(fqn) > 2 and fqn[1] in LAYERS else "staging"
        spec = spec.replace_attributes(group_name=layer)
        if not node.get("depends_on", {}).get("nodes"):
            # seeds and views over tables no asset of the pipeline writes: built with the rest
            # after the sources land, else Dagster gives them a dbt invocation of their own
            # (start-up, hooks and tests: several seconds of every nightly run)
            spec = spec.merge_attributes(deps=[LANDED_FIRST])
        return spec


translator = CdpDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


class DbtBuildConfig(dg.Config):
    as_of_date: str = ""  # YYYY-MM-DD; empty: the latest activity date in the data
    churn_cutoff_date: str = ""  # YYYY-MM-DD; empty: the day after as_of_date
    full_refresh: bool = False


def _build_args(config: DbtBuildConfig) -> list[str]:
    # The build runs in two steps (profiles after churn scores). "buildable" runs a test only in
    # the step that has all of its parents built, so the customer_profiles ↔ customers
    # relationship test waits for the profiles step instead of failing on a fresh warehouse.
    args = ["build", "--indirect-selection", "buildable"]
    dbt_vars = {
        k: v
        for k, v in (
            ("as_of_date", config.as_of_date),
            ("churn_cutoff_date", config.churn_cutoff_date),
        )
        if v
    }
    if dbt_vars:
        args += ["--vars", json.dumps(dbt_vars)]
    if config.full_refresh:
        args.append("--full-refresh")
    return args


def _stream_build(context, dbt: DbtCliResource, warehouse: WarehouseResource, config):
    url = warehouse.url()
    apply_dbt_env(url)
    # dagster-dbt starts each invocation from target/partial_parse.msgpack: parsed for this
    # warehouse, every build skips the full re-parse (a no-op when it already is)
    ensure_manifest(url)
    started = time.perf_counter()
    invocation = dbt.cli(_build_args(config), context=context)
    try:
        yield from invocation.stream()
    finally:
        # the models this build refreshed, failed build or not (ops.model_refreshes, for
        # `cdp status`); a bookkeeping problem is logged, never fails the build
        from orchestration.status import record_build

        try:
            results = invocation.get_artifact("run_results.json")
        except FileNotFoundError:  # dbt stopped before running anything (the step says why)
            results = None
        try:
            with warehouse.connect() as conn:
                record_build(conn, results, context.run_id)
        except Exception as exc:
            context.log.warning(f"could not record the models this build refreshed: {exc}")
        prune_invocation_dirs()
    context.log.info(f"dbt build finished in {time.perf_counter() - started:.1f}s")


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=translator,
    exclude=PROFILES_SELECT,
    name="cdp_dbt_models",
)
def cdp_dbt_models(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    config: DbtBuildConfig,
):
    """Staging, identity resolution, intermediate rollups and marts (everything but profiles)."""
    yield from _stream_build(context, dbt, warehouse, config)


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=translator,
    select=PROFILES_SELECT,
    name="cdp_dbt_profiles",
)
def cdp_dbt_profiles(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    config: DbtBuildConfig,
):
    """marts.customer_profiles: customers joined with the latest churn scores."""
    yield from _stream_build(context, dbt, warehouse, config)


CUSTOMER_IDENTITIES = dg.AssetKey(["marts", "customer_identities"])


@dg.asset_check(
    asset=CUSTOMER_IDENTITIES,
    name="identity_accuracy_vs_demo_truth",
    description=(
        "Pairwise precision and recall of 'same person' over all source records, measured "
        "against demo_truth.identities (demo data only; passes with a note when there is no truth)."
    ),
    blocking=False,
)
def identity_accuracy_check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect() as conn:
        if not has_truth(conn):
            return dg.AssetCheckResult(
                passed=True, metadata={"note": "no demo_truth loaded: accuracy not measured"}
            )
        started = time.perf_counter()
        acc = identity_accuracy(conn)
    metadata = acc.as_metadata()
    metadata["seconds"] = round(time.perf_counter() - started, 2)
    passed = acc.precision >= IDENTITY_MIN_PRECISION and acc.recall >= IDENTITY_MIN_RECALL
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata=metadata,
        description=(
            f"precision {acc.precision:.4f}, recall {acc.recall:.4f} over {acc.records:,} records "
            f"(floor {IDENTITY_MIN_PRECISION})"
        ),
    )


warehouse_job = dg.define_asset_job(
    "warehouse_build",
    selection=dg.AssetSelection.assets(cdp_dbt_models, cdp_dbt_profiles),
    description="dbt build of every warehouse model with its tests.",
)

defs = dg.Definitions(
    assets=[cdp_dbt_models, cdp_dbt_profiles],
    asset_checks=[identity_accuracy_check],
    jobs=[warehouse_job],
    resources={
        "dbt": DbtCliResource(
            project_dir=dbt_project,
            profiles_dir=str(DBT_PROJECT_DIR),
            dbt_executable=dbt_executable(),
        ),
    },
)
