"""Churn prediction: labels, temporal snapshots, the calibrated model and its baselines, honest
evaluation, per-customer drivers, early warnings, retention actions, the model store and alerts.

Plain Python; ``defs.py`` is the only module that knows Dagster."""
