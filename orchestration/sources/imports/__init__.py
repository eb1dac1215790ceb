"""Importing a shop's history from CSV exports (``cdp import``, the ``CDP_IMPORT_DIR`` drop
folder) into the raw Shopify tables."""
