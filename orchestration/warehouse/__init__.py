"""The warehouse domain: the dbt project's Dagster wiring and identity-resolution evaluation."""
