"""The store's integrity: only its own files are ever deleted from ``<db>.shards/``, every shard's checksum is
recorded and checked (``verify``, the writer, ``status``), and a damaged store is repaired by dropping the jobs
whose rows it lost."""
from __future__ import annotations

import logging
import os
import shutil

import duckdb
import pandas as pd
import pytest
from conftest import PROJECT_ROOT  # noqa: F401  (sys.path for the engine)
from runner_fixtures import run_cli

from engine.store import DatabaseRefused, ResultWriter, check_database, read
from engine.store import shards as shards_mod
from engine.store.check import database_problem
from engine.store.schema import columns


def _scores(values: dict[str, float | None], model="m", method="attention") -> pd.DataFrame:
    df = pd.DataFrame([dict(run_id="r", dataset_id="d", model_id=model, method=method, method_version=1,
                            method_params="{}", metric="pointing_game", metric_version=1, metric_params="{}",
                            region="mask", image_id=i, value=v) for i, v in values.items()])
    return df.assign(**{c: None for c, _ in columns("scores") if c not in df.columns})


def _rows(db):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT model_id, image_id, value FROM scores ORDER BY ALL").fetchall()


# -- only the store's own files are deleted --------------------------------------------------------------
def test_foreign_files_in_the_shard_folder_are_left_alone_and_mentioned_once(tmp_path, caplog):
    db = tmp_path / "r.duckdb"
    with ResultWriter(db) as w:
        w.replace_rows("scores", _scores({"a": 1.0}))
    folder = tmp_path / "r.duckdb.shards"
    mine = {"my_analysis.parquet": b"PAR1 user data", "NOTES.txt": b"my notes",
            "scores-notes.parquet": b"not a shard name", "scores-20260101T000000-abc.parquet": b"too short an id"}
    for name, data in mine.items():
        (folder / name).write_bytes(data)
    orphan = folder / "scores-20260101T000000-0123456789.parquet"   # the store's own name, listed nowhere
    orphan.write_bytes(b"left by a killed writer")
    with caplog.at_level(logging.INFO, logger="engine.store.shards"):
        with ResultWriter(db) as w:   # replaces the row: its old file becomes garbage
            w.replace_rows("scores", _scores({"a": 2.0}))
    manifest = check_database(db).manifest
    assert manifest.garbage   # superseded, kept for readers of the older catalog
    shards_mod.collect_garbage(folder, manifest, now=manifest.garbage[0][1] + 1e9)
    assert not orphan.exists() and manifest.garbage == []
    assert {n: (folder / n).read_bytes() for n in mine} == mine
    said = [r.getMessage() for r in caplog.records if "not the store's own" in r.getMessage()]
    assert len(said) == 1 and "my_analysis.parquet" in said[0] and "NOTES.txt" in said[0]
    assert _rows(db) == [("m", "a", 2.0)]


def test_a_garbage_entry_with_a_foreign_name_is_not_deleted(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "NOTES.txt").write_text("mine")
    m = shards_mod.Manifest(garbage=[("NOTES.txt", 0.0), ("../outside.parquet", 0.0)])
    (tmp_path / "outside.parquet").write_text("mine too")
    assert shards_mod.collect_garbage(folder, m, now=1e12) == 0
    assert (folder / "NOTES.txt").exists() and (tmp_path / "outside.parquet").exists()


def test_own_names():
    name = shards_mod.new_name("scores")
    assert shards_mod.own_file(name) and shards_mod.own_file(shards_mod.new_name("jobs"))
    assert not shards_mod.own_file("x" + name) and not shards_mod.own_file(name + ".bak")
    assert not shards_mod.own_file("my_analysis.parquet")


# -- corruption detected -----------------------------------------------------------------------------------
def _store(db):
    """Two evaluate jobs, each with its scores in its own file."""
    with ResultWriter(db) as w:
        for model in ("m1", "m2"):
            w.replace_rows("scores", _scores({"a": 0.25, "b": 0.5}, model=model))
            w.upsert("jobs", {"job_key": f"job-{model}", "run_id": "r", "kind": "evaluate", "dataset_id": "d",
                              "model_id": model, "method": "attention", "method_version": 1, "method_params": "{}",
                              "status": "done"})
            w.commit()
    manifest = check_database(db).manifest
    files = {s.file: s for s in manifest.tables["scores"]}
    assert len(files) == 2
    return manifest, db.with_name(db.name + ".shards")


def _file_of(db, manifest, model):
    folder = db.with_name(db.name + ".shards")
    for s in manifest.tables["scores"]:
        with duckdb.connect() as con:
            if con.execute(f"SELECT any_value(model_id) FROM read_parquet('{folder / s.file}')").fetchone()[0] == model:
                return folder / s.file
    raise AssertionError(model)


def _flip_bit(path, at=None):
    data = bytearray(path.read_bytes())
    at = len(data) // 3 if at is None else at
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def test_every_file_s_checksum_is_recorded_when_written(tmp_path):
    db = tmp_path / "r.duckdb"
    manifest, folder = _store(db)
    listed = [s for ss in manifest.tables.values() for s in ss]
    assert listed and all(s.sha256 == shards_mod.file_sha256(folder / s.file) for s in listed)
    assert all(s.scopes for s in manifest.tables["scores"])


@pytest.mark.parametrize("damage", ["flipped bit", "truncated", "missing"])
def test_damage_is_found_named_with_its_jobs_and_repaired(tmp_path, damage):
    db = tmp_path / "r.duckdb"
    manifest, folder = _store(db)
    bad = _file_of(db, manifest, "m1")
    size = bad.stat().st_size
    if damage == "flipped bit":
        _flip_bit(bad)
        assert bad.stat().st_size == size
    elif damage == "truncated":
        bad.write_bytes(bad.read_bytes()[: size // 2])
    else:
        bad.unlink()
    # the writer (a run) refuses it before use, in one line naming the file
    with pytest.raises(DatabaseRefused, match="damaged results database: .*" + bad.name) as err:
        ResultWriter(db).open()
    assert "\n" not in str(err.value) and "verify" in str(err.value)
    assert database_problem(db).startswith(f"{db}: damaged results database: {bad}")
    # status: one sentence, no traceback
    status = run_cli("status", "--db", db)
    assert status.returncode == 2 and "Traceback" not in status.stderr
    assert f"damaged results database: {bad}" in status.stderr and len(status.stderr.strip().splitlines()) == 1
    # verify lists the file and the job that wrote it, and exits non-zero
    out = run_cli("verify", "--db", db)
    assert out.returncode == 1, out.stdout + out.stderr
    lines = [x for x in out.stdout.splitlines() if x.startswith("damaged:")]
    assert len(lines) == 1 and str(bad) in lines[0] and "job-m1" in lines[0] and "job-m2" not in lines[0]
    # the repair drops the file and its job: the other job's rows stay, the next run recomputes job-m1
    fixed = run_cli("verify", "--db", db, "--repair")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "dropped 1 damaged file(s) and 1 job(s)" in fixed.stdout
    assert run_cli("verify", "--db", db).returncode == 0
    assert _rows(db) == [("m2", "a", 0.25), ("m2", "b", 0.5)]
    assert read.done_job_keys(db) == {"job-m2"}
    with ResultWriter(db) as w:   # the next run writes the job again
        w.replace_rows("scores", _scores({"a": 0.25, "b": 0.5}, model="m1"))
    assert _rows(db) == [("m1", "a", 0.25), ("m1", "b", 0.5), ("m2", "a", 0.25), ("m2", "b", 0.5)]


def test_a_damaged_jobs_file_loses_its_jobs_so_they_run_again(tmp_path):
    db = tmp_path / "r.duckdb"
    manifest, folder = _store(db)
    jobs_files = [folder / s.file for s in manifest.tables["jobs"]]
    _flip_bit(jobs_files[0], at=8)
    out = run_cli("verify", "--db", db, "--repair")
    assert out.returncode == 0, out.stdout + out.stderr
    assert len(read.done_job_keys(db)) < 2 and run_cli("verify", "--db", db).returncode == 0


def test_status_on_a_catalog_moved_without_its_folder_says_one_sentence(tmp_path):
    db = tmp_path / "a" / "r.duckdb"
    db.parent.mkdir()
    _store(db)
    moved = tmp_path / "b" / "r.duckdb"
    moved.parent.mkdir()
    shutil.move(db, moved)   # the catalog alone: its folder stays behind, where the catalog recorded it
    status = run_cli("status", "--db", moved)
    assert status.returncode == 0 and "Traceback" not in status.stderr, status.stdout + status.stderr
    shutil.rmtree(tmp_path / "a")   # and now the folder is gone too
    status = run_cli("status", "--db", moved)
    assert status.returncode == 2 and "Traceback" not in status.stderr
    assert "damaged results database: " in status.stderr and len(status.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_a_read_only_shard_folder_is_refused_in_one_line(tmp_path):
    db = tmp_path / "r.duckdb"
    _store(db)
    folder = tmp_path / "r.duckdb.shards"
    folder.chmod(0o555)
    try:
        with pytest.raises(DatabaseRefused, match="not writable"):
            ResultWriter(db).open()
    finally:
        folder.chmod(0o755)


def test_a_shard_folder_that_cannot_be_written_is_refused_in_one_line(tmp_path, monkeypatch):
    db = tmp_path / "r.duckdb"
    _store(db)
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p).endswith(".shards") else real(p, mode))
    with pytest.raises(DatabaseRefused, match="r.duckdb.shards: not writable") as err:
        ResultWriter(db).open()
    assert "\n" not in str(err.value)


# -- bounded merges ------------------------------------------------------------------------------------------
def test_plan_merge_takes_one_tier_within_the_budget():
    Shard = shards_mod.Shard
    small = [Shard(file=f"s{i}", rows=1, bytes=1000 + i) for i in range(shards_mod.FAN_IN)]
    assert shards_mod.plan_merge(small[:-1], 1 << 30) is None            # FAN_IN - 1 files: nothing to merge
    group = shards_mod.plan_merge(small, 1 << 30)
    assert group is not None and {s.file for s in group} == {s.file for s in small}
    group = shards_mod.plan_merge(small, 5000)                          # the budget: the 4 smallest (4006 bytes)
    assert [s.file for s in group] == ["s0", "s1", "s2", "s3"]
    assert shards_mod.plan_merge(small, 1500) is None                   # not even two fit
    big = [Shard(file=f"b{i}", rows=1, bytes=shards_mod.MERGE_BYTES // 2 + i) for i in range(shards_mod.FAN_IN)]
    assert shards_mod.plan_merge(big, shards_mod.MERGE_BYTES) is None    # files past half the budget stay as they are
    mixed = big + small
    group = shards_mod.plan_merge(mixed, shards_mod.MERGE_BYTES)
    assert group and all(s.file.startswith("s") for s in group)         # one tier at a time, the lowest first
    assert [shards_mod.tier(Shard(file="x", rows=1, bytes=b)) for b in (0, 65535, 65536, 1 << 20)] == [0, 0, 1, 2]


def test_no_commit_merges_more_than_the_budget(tmp_path, monkeypatch):
    from engine.store import writer as writer_mod
    monkeypatch.setattr(shards_mod, "FAN_IN", 3)
    monkeypatch.setattr(writer_mod, "MERGE_BYTES", 12_000)
    merged_bytes: list[int] = []
    real = writer_mod.write_shard

    def spy(con, table, folder, sql, level=0, merged=None):
        if merged is not None and table == "scores":
            merged_bytes.append(sum(s.bytes for s in merged))
        return real(con, table, folder, sql, level, merged=merged)
    monkeypatch.setattr(writer_mod, "write_shard", spy)
    db = tmp_path / "r.duckdb"
    per_commit = []
    with ResultWriter(db) as w:
        for i in range(30):
            w.replace_rows("scores", _scores({f"i{i}-{k}": float(k) for k in range(40)}, model=f"m{i}"))
            before = len(merged_bytes)
            w.commit()
            per_commit.append(sum(merged_bytes[before:]))
    assert merged_bytes and max(per_commit) <= 12_000
    with duckdb.connect(str(db), read_only=True) as con:
        counts = con.execute("SELECT count(*), count(DISTINCT (model_id, image_id)) FROM scores").fetchone()
    assert counts == (1200, 1200)


def test_a_read_that_fails_later_is_one_sentence_naming_the_file(tmp_path):
    from engine.store.check import read_failure
    db = tmp_path / "r.duckdb"
    manifest, folder = _store(db)
    name = folder / manifest.tables["scores"][0].file
    exc = duckdb.IOException(f"IO Error: No magic bytes found at end of file '{name}'\nmore detail")
    said = read_failure(db, exc)   # the check finds nothing wrong now (the file was fixed, or changed later)
    assert said.startswith(f"{db}: damaged results database: {name} cannot be read") and "\n" not in said
    name.write_bytes(b"")          # and when the check does find it, its sentence
    assert read_failure(db, exc).startswith(f"{db}: damaged results database: {name} (shard of table scores)")


def test_the_dashboard_says_one_sentence_when_a_read_fails_after_the_check(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from engine.dashboard import cache
    db = tmp_path / "r.duckdb"
    manifest, folder = _store(db)
    monkeypatch.setenv("XAI_DB", str(db))
    monkeypatch.setattr(cache, "database_problem", lambda path: None)   # the check ran before the damage
    for s in manifest.tables["scores"]:
        (folder / s.file).write_bytes(b"")
    at = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=90)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "damaged results database: " in errors[0] and "\n" not in errors[0]
