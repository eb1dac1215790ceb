"""Where a segment's ``exports`` go. File formats are written together into one export
directory (``files.py``); every other destination pushes batches and plugs in here with one
registry entry naming an object that implements ``PushDestination``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import httpx
    import pyarrow as pa

    from orchestration.activation.delivery import Attempt, Batch
    from orchestration.activation.exports import PushContext
    from orchestration.segments.spec import Export

FILE_DESTINATIONS = ("csv", "parquet")

# destination name -> "module:attribute" of its PushDestination (imported on first use)
PUSH_DESTINATIONS: dict[str, str] = {
    "webhook": "orchestration.activation.webhooks:DESTINATION",
    "klaviyo_list": "orchestration.activation.klaviyo_list:DESTINATION",
}


class PushDestination(Protocol):
    name: str
    # the columns its batches carry whatever the export says (None: the export's ``columns``,
    # else the default columns)
    columns: tuple[str, ...] | None

    def target(self, export: Export) -> str:
        """Where this export goes (URL, list id): the ledger's ``target``; no secrets."""

    def validate(self, ctx: PushContext, export: Export) -> None:
        """Raise CdpError before anything is written when the export cannot work (no secret)."""

    def plan(
        self, ctx: PushContext, export: Export, entered: pa.Table, exited: pa.Table
    ) -> list[Batch]:
        """The batches carrying these changes; ids stable for segment + export + batch."""

    def sender(
        self, ctx: PushContext, export: Export, client: httpx.Client
    ) -> Callable[[Batch], Attempt]:
        """A function making exactly one attempt at one batch (retries are the caller's)."""


def push_destination(name: str) -> PushDestination:
    try:
        ref = PUSH_DESTINATIONS[name]
    except KeyError:
        known = ", ".join([*FILE_DESTINATIONS, *PUSH_DESTINATIONS])
        raise KeyError(f"no activation destination `{name}` (known: {known})") from None
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)
