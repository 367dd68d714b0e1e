"""The store's integrity: only its own files are ever deleted from ``<db>.shards/``, every shard's checksum is
recorded and checked (``verify``, the writer, ``status``), and a damaged store is repaired by dropping the jobs
whose rows it lost."""
from __future__ import annotations

import logging

import duckdb
import pandas as pd
from conftest import PROJECT_ROOT  # noqa: F401  (sys.path for the engine)

from engine.store import ResultWriter, check_database
from engine.store import shards as shards_mod
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
