"""Exports against a real PostgreSQL: files, manifest, LATEST, deltas, audit, crash safety."""

from __future__ import annotations

import csv
import json

import pyarrow.parquet as pq
import pytest

from orchestration.activation import files
from orchestration.activation.config import ActivationConfig
from orchestration.errors import CdpError
from orchestration.runtime import db
from orchestration.segments.spec import SegmentError


def run(url, kit, segments_dir, tmp_path, run_id="run-aaaa1111", **kw):
    return kit.export(url, segments_dir, tmp_path, run_id, **kw)


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_first_export_writes_files_manifest_and_latest(act_db, kit, segments_dir, tmp_path):
    kit.write_segment_file(
        segments_dir, kit.SLUG, [{"destination": "csv"}, {"destination": "parquet"}]
    )
    result = run(act_db, kit, segments_dir, tmp_path)
    with db.connect(act_db) as conn:
        members = kit.view_members(conn)
    assert result.status == "exported" and result.members == len(members) == 20
    seg_dir = tmp_path / "exports" / kit.SLUG
    assert files.read_latest(seg_dir) == result.export_id
    manifest = files.verify_export(seg_dir / result.export_id)  # rows, bytes, sha256 all match
    assert manifest["segment"] == kit.SLUG and manifest["run_id"] == "run-aaaa1111"
    assert manifest["rule_hash"] == "hash-lifetime_value > 500"
    assert manifest["files"]["members.csv"]["rows"] == len(members)
    assert manifest["files"]["entered.csv"]["rows"] == len(members)  # first export: all entered
    assert manifest["files"]["exited.parquet"]["rows"] == 0
    # default columns: customer_id, email, first_name, last_name + the rule's fields
    assert manifest["columns"] == [
        "customer_id",
        "email",
        "first_name",
        "last_name",
        "lifetime_value",
    ]
    rows = read_csv(seg_dir / result.export_id / "members.csv")
    assert {r["customer_id"] for r in rows} == members
    by_id = {r["customer_id"]: r for r in rows}
    p = kit.person(50)
    assert by_id[p["customer_id"]]["email"] == p["email"]
    assert by_id[p["customer_id"]]["first_name"] == p["first_name"]
    assert by_id[p["customer_id"]]["lifetime_value"] == "600.00"
    parquet = pq.read_table(seg_dir / result.export_id / "members.parquet")
    assert sorted(parquet["customer_id"].to_pylist()) == sorted(members)


def test_decryption_is_audited_once_and_exports_audited(act_db, kit, segments_dir, tmp_path):
    kit.write_segment_file(
        segments_dir,
        kit.SLUG,
        [
            {
                "destination": "csv",
                "columns": ["customer_id", "email", "phone", "last_name", "churn_risk_score"],
            }
        ],
    )
    result = run(act_db, kit, segments_dir, tmp_path)
    with db.connect(act_db) as conn:
        events = conn.execute(
            "select action, segment, rows, details from audit.events order by event_id"
        ).fetchall()
    actions = [e[0] for e in events]
    assert actions == ["pii.decrypted", "segment.exported"]
    _, segment, rows, details = events[0]
    assert segment == kit.SLUG and rows == 60  # 20 emails + 20 phones + 20 last names
    assert details["types"]["email"]["decrypted"] == 20 and set(details["types"]) == {
        "email",
        "phone",
        "name",
    }
    assert events[1][2] == result.members == 20
    row = read_csv(tmp_path / "exports" / kit.SLUG / result.export_id / "members.csv")[0]
    assert list(row) == ["customer_id", "email", "phone", "last_name", "churn_risk_score"]


def test_next_export_has_deltas_and_unchanged_is_skipped(act_db, kit, segments_dir, tmp_path):
    kit.write_segment_file(segments_dir, kit.SLUG, [{"destination": "csv"}])
    first = run(act_db, kit, segments_dir, tmp_path)
    with db.connect(act_db, autocommit=True) as conn:
        conn.execute(
            "update marts.customer_profiles set lifetime_value = 0 "
            "where customer_id in ('cus_00060', 'cus_00059')"
        )
        conn.execute(
            "update marts.customer_profiles set lifetime_value = 999 "
            "where customer_id = 'cus_00003'"
        )
        diff = kit.refresh(conn)
        members = kit.view_members(conn)
    assert (diff.entered, diff.exited) == (1, 2)
    second = run(act_db, kit, segments_dir, tmp_path, run_id="run-bbbb2222")
    assert (second.members, second.entered, second.exited) == (len(members), 1, 2)
    directory = tmp_path / "exports" / kit.SLUG / second.export_id
    manifest = files.verify_export(directory)
    assert manifest["previous_export_id"] == first.export_id
    entered = read_csv(directory / "entered.csv")
    assert [r["customer_id"] for r in entered] == ["cus_00003"]
    assert entered[0]["email"] == ""  # no email on file: empty, not an error
    assert sorted(r["customer_id"] for r in read_csv(directory / "exited.csv")) == [
        "cus_00059",
        "cus_00060",
    ]
    assert {r["customer_id"] for r in read_csv(directory / "members.csv")} == members
    assert files.read_latest(directory.parent) == second.export_id

    third = run(act_db, kit, segments_dir, tmp_path, run_id="run-cccc3333")
    assert third.status == "skipped" and files.read_latest(directory.parent) == second.export_id
    forced = run(act_db, kit, segments_dir, tmp_path, run_id="run-dddd4444", force=True)
    assert forced.status == "exported" and (forced.entered, forced.exited) == (0, 0)


def test_killed_export_leaves_latest_on_the_previous_export(
    act_db, kit, segments_dir, tmp_path, monkeypatch
):
    kit.write_segment_file(segments_dir, kit.SLUG, [{"destination": "csv"}])
    first = run(act_db, kit, segments_dir, tmp_path)
    seg_dir = tmp_path / "exports" / kit.SLUG
    with db.connect(act_db, autocommit=True) as conn:
        conn.execute(
            "update marts.customer_profiles set lifetime_value = 0 where customer_id = 'cus_00060'"
        )
        kit.refresh(conn)

    real_write_file, calls = files.write_file, []

    def dying_write_file(*args, **kwargs):
        if calls:
            raise KeyboardInterrupt("killed after the first file")
        calls.append(args[1])
        return real_write_file(*args, **kwargs)

    monkeypatch.setattr(files, "write_file", dying_write_file)
    with pytest.raises(KeyboardInterrupt):
        run(act_db, kit, segments_dir, tmp_path, run_id="run-dead0000")
    assert files.read_latest(seg_dir) == first.export_id
    files.verify_export(seg_dir / first.export_id)  # the previous export is intact
    partial = [p for p in seg_dir.iterdir() if p.is_dir() and p.name != first.export_id]
    assert len(partial) == 1 and not (partial[0] / "manifest.json").exists()
    assert (partial[0] / "members.csv").exists()  # the first file was complete
    with db.connect(act_db) as conn:
        status = conn.execute(
            "select status, error from activation.exports where run_id = 'run-dead0000'"
        ).fetchone()
        assert status[0] == "failed" and "killed" in status[1]
        actions = [r[0] for r in conn.execute("select action from audit.events").fetchall()]
        assert "segment.export_failed" in actions

    monkeypatch.setattr(files, "write_file", real_write_file)
    retry = run(act_db, kit, segments_dir, tmp_path, run_id="run-eeee5555")
    assert (retry.entered, retry.exited) == (0, 1)  # nothing was lost by the crash
    assert files.read_latest(seg_dir) == retry.export_id
    assert not partial[0].exists()  # the half-written directory was cleaned up


def test_old_exports_are_pruned_to_the_configured_count(act_db, kit, segments_dir, tmp_path):
    kit.write_segment_file(segments_dir, kit.SLUG, [{"destination": "csv"}])
    cfg = ActivationConfig(exports_keep=2)
    ids = [
        run(
            act_db, kit, segments_dir, tmp_path, run_id=f"run-{i:08d}", cfg=cfg, force=True
        ).export_id
        for i in range(4)
    ]
    seg_dir = tmp_path / "exports" / kit.SLUG
    kept = sorted(p.name for p in seg_dir.iterdir() if p.is_dir())
    assert kept == ids[-2:] and files.read_latest(seg_dir) == ids[-1]


def test_bad_export_config_fails_before_writing(act_db, kit, segments_dir, tmp_path):
    kit.write_segment_file(
        segments_dir, kit.SLUG, [{"destination": "csv", "columns": ["customer_id", "emial"]}]
    )
    with pytest.raises(
        SegmentError, match=r"exports\[0\].columns: unknown column `emial`.*`email`"
    ):
        run(act_db, kit, segments_dir, tmp_path)
    kit.write_segment_file(
        segments_dir,
        kit.SLUG,
        [
            {
                "destination": "webhook",
                "url": "http://127.0.0.1:9/x",
                "secret_env": "CDP_TEST_UNSET_SECRET",
            }
        ],
    )
    with pytest.raises(CdpError, match="CDP_TEST_UNSET_SECRET, which is not set"):
        run(act_db, kit, segments_dir, tmp_path, env={})
    assert not (tmp_path / "exports").exists()
    with db.connect(act_db) as conn:
        assert conn.execute("select count(*) from activation.exports").fetchone()[0] == 0


def test_spec_rejects_other_export_keys(kit, segments_dir):
    from orchestration.segments.spec import load_file

    path = kit.write_segment_file(segments_dir, kit.SLUG, [{"destination": "csv", "url": "x"}])
    with pytest.raises(SegmentError, match="unknown key `url`"):
        load_file(path)
    path.write_text(
        json.dumps(
            {
                "name": "x",
                "rules": {"conditions": [{"field": "a", "operator": "is_set"}]},
                "exports": [{"destination": "ftp"}],
            }
        )
    )
    with pytest.raises(SegmentError, match="unknown destination `ftp`"):
        load_file(path)
