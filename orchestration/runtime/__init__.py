"""Runtime: settings, the warehouse connection, the embedded PostgreSQL server, the Dagster home."""
