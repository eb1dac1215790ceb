"""Fake API servers for the connector tests (real HTTP on 127.0.0.1)."""
