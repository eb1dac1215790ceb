"""The CDP Lite code location: every domain's ``defs.py`` merged."""

from __future__ import annotations

import dagster as dg

from orchestration.activation import defs as activation_defs
from orchestration.churn import defs as churn_defs
from orchestration.resources import WarehouseResource
from orchestration.segments import defs as segments_defs
from orchestration.sources import defs as sources_defs
from orchestration.warehouse import defs as warehouse_defs

# The whole pipeline: sources -> dbt warehouse -> churn -> segments. `cdp demo` and the nightly
# schedule run it; exports follow through their sensor.
cdp_pipeline = dg.define_asset_job(
    "cdp_pipeline",
    selection=dg.AssetSelection.all(),
    description="Land sources, build the warehouse, score churn and refresh segments.",
)

defs = dg.Definitions.merge(
    sources_defs.defs,
    warehouse_defs.defs,
    churn_defs.defs,
    segments_defs.defs,
    activation_defs.defs,
    dg.Definitions(resources={"warehouse": WarehouseResource()}, jobs=[cdp_pipeline]),
)
