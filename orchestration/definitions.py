"""The CDP Lite code location: every domain's ``defs.py`` merged."""

from __future__ import annotations

import dagster as dg

from orchestration.resources import WarehouseResource
from orchestration.sources import defs as sources_defs

defs = dg.Definitions.merge(
    sources_defs.defs,
    dg.Definitions(resources={"warehouse": WarehouseResource()}),
)
