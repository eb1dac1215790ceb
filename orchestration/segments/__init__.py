"""Segments: YAML rules compiled to PostgreSQL materialized views with dynamic membership.

Plain Python (no Dagster): ``spec`` parses and validates segment files, ``catalog`` reads the
typed field catalog from ``marts.customer_profiles``, ``compiler`` turns rules into composed SQL,
``views`` and ``membership`` build, refresh and diff the views, ``tester`` answers
``cdp segment test``. ``defs`` wraps it as Dagster assets; ``cli`` as ``cdp segment``.
"""
