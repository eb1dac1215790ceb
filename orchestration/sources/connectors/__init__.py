"""Live source connectors (plain Python, no Dagster): Shopify GraphQL Admin API, Klaviyo JSON:API,
GA4 BigQuery-export files, helpdesk/subscription CSV drops, and the Klaviyo list destination.

Each lands DataFrames with exactly ``RawTable.input_columns`` through ``landing.load_frame`` (PII
vault, rejects, COPY) and keeps its cursor in ``ops.connector_state`` (see ``state``)."""
