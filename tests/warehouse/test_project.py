"""The dbt project helpers: the manifest is re-parsed for the warehouse the builds run against,
so dbt's partial parsing stays valid across builds (no database needed)."""

from __future__ import annotations

import subprocess

import pytest

from orchestration.warehouse import project


@pytest.fixture
def fake_parse(tmp_path, monkeypatch):
    """`dbt parse` replaced by a fake that records the database it parsed for."""
    calls: list[str] = []

    def run(cmd, *, env, **_kwargs):
        assert cmd[1] == "parse"
        calls.append(env["CDP_PG_DBNAME"])
        (tmp_path / "manifest.json").write_text("{}")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(project, "MANIFEST_PATH", tmp_path / "manifest.json")
    monkeypatch.setattr(project, "PARSED_FOR_PATH", tmp_path / "partial_parse.profile")
    monkeypatch.setattr(project, "_newest_source_mtime", lambda: 0.0)
    monkeypatch.setattr(project.subprocess, "run", run)
    return calls


def test_manifest_is_parsed_again_only_for_another_warehouse(fake_parse):
    a = "postgresql://u@db.example:5432/warehouse_a"
    b = "postgresql://u@db.example:5432/warehouse_b"
    project.ensure_manifest(a)
    project.ensure_manifest(a)  # same connection: partial parsing stays valid, nothing to do
    assert fake_parse == ["warehouse_a"]
    project.ensure_manifest(b)
    assert fake_parse == ["warehouse_a", "warehouse_b"]
    project.ensure_manifest()  # no connection asked for: any fresh manifest will do
    assert fake_parse == ["warehouse_a", "warehouse_b"]


def test_profile_key_follows_profiles_yml_defaults():
    assert project._profile_key({}) == project._profile_key(
        {"CDP_PG_HOST": "localhost", "CDP_PG_PORT": "5432", "CDP_PG_DBNAME": "cdp"}
    )
    assert project._profile_key({"CDP_PG_DBNAME": "other"}) != project._profile_key({})


def test_only_the_newest_dbt_invocation_directories_are_kept(tmp_path):
    import os

    for i in range(7):
        d = tmp_path / f"cdp_dbt_models-run{i}-abc"
        d.mkdir()
        (d / "run_results.json").write_text("{}")
        os.utime(d, (1_000_000 + i, 1_000_000 + i))
    (tmp_path / "partial_parse.msgpack").write_text("keep me")
    (tmp_path / "compiled").mkdir()
    assert project.prune_invocation_dirs(keep=3, target=tmp_path) == 4
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [
        "cdp_dbt_models-run4-abc",
        "cdp_dbt_models-run5-abc",
        "cdp_dbt_models-run6-abc",
        "compiled",
        "partial_parse.msgpack",
    ]
    assert project.prune_invocation_dirs(keep=3, target=tmp_path) == 0
