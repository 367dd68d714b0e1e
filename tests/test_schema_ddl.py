"""engine/store/schema.py declares its tables as data and generates the DDL: the generated DDL of schema 8
less what version 8 added creates the same tables (columns in order, types, primary keys) as the
hand-written DDL it replaced (tests/fixtures/schema_v7.sql, kept verbatim), and the keys are the same."""
from __future__ import annotations

import json

import duckdb
import pytest
from conftest import PROJECT_ROOT

from engine.store import schema
from engine.store.schema import SCHEMA_VERSION, TABLES, Table, columns, create_schema, ddl, primary_key, row_key

V7 = (PROJECT_ROOT / "tests" / "fixtures" / "schema_v7.sql").read_text(encoding="utf-8")
# what version 8 added (issue 23): columns at the end of summary, the shortcut table, and the maps and scores
# of the true class of misclassified images
V8_COLUMNS = {("summary", c) for c in ("n_common", "mean_common", "gap_random_ci_low", "gap_random_ci_high",
                                       "gap_centre_ci_low", "gap_centre_ci_high")} | {
    ("datasets", c) for c in ("regions", "mask_regions", "box_regions", "box_from_mask")}
V8_TABLES = {"shortcut", "target_maps", "target_scores"}


def without_v8(s: dict) -> dict:
    return {"columns": [c for c in s["columns"] if (c[0], c[1]) not in V8_COLUMNS and c[0] not in V8_TABLES],
            "keys": [k for k in s["keys"] if k[0] not in V8_TABLES]}


def shape(con) -> dict:
    cols = con.execute("SELECT table_name, column_name, ordinal_position, data_type FROM information_schema.columns "
                       "ORDER BY table_name, ordinal_position").fetchall()
    keys = con.execute("SELECT table_name, constraint_type, constraint_column_names FROM duckdb_constraints() "
                       "WHERE constraint_type IN ('PRIMARY KEY', 'UNIQUE') ORDER BY table_name").fetchall()
    return {"columns": cols, "keys": [(t, k, list(c)) for t, k, c in keys]}


def test_the_generated_ddl_creates_the_tables_of_the_hand_written_v7():
    assert SCHEMA_VERSION == 8
    old, new = duckdb.connect(), duckdb.connect()
    try:
        old.execute(V7)
        create_schema(new, skip=tuple(V8_TABLES))
        a, b = shape(old), shape(new)
        assert a["columns"] and a["keys"]  # the comparison has something to compare
        assert without_v8(b) == a          # version 8 only adds
        assert {(c[0], c[1]) for c in b["columns"]} >= V8_COLUMNS
    finally:
        old.close()
        new.close()


def test_the_keys_are_those_of_v7():
    line = next(x for x in V7.splitlines() if x.startswith("-- replace keys: "))
    old = {t: tuple(k) for t, k in json.loads(line.removeprefix("-- replace keys: ")).items()}
    assert {t: k for t, k in schema.REPLACE_KEYS.items() if t not in V8_TABLES} == old
    assert primary_key("runs") == "run_id" and primary_key("scores") is None
    assert row_key("jobs") == ("job_key",) and row_key("scores") == old["scores"]


def test_reformatting_a_declaration_cannot_change_the_columns():
    # the old parser split SQL text on '--'; a declaration is data, so a comment holding a comma, 'PRIMARY KEY'
    # or '--' is only a comment
    t = Table(primary_key="a", columns=(("a", "VARCHAR", "x, PRIMARY KEY -- y"), ("b", "DOUBLE[]")))
    assert [c.name for c in t.columns] == ["a", "b"]
    con = duckdb.connect()
    try:
        TABLES["_probe"] = t
        con.execute(ddl("_probe"))
        assert columns("_probe") == [("a", "VARCHAR"), ("b", "DOUBLE[]")]
        assert con.execute("SELECT column_name, data_type FROM information_schema.columns "
                           "WHERE table_name = '_probe' ORDER BY ordinal_position").fetchall() == \
            [("a", "VARCHAR"), ("b", "DOUBLE[]")]
    finally:
        TABLES.pop("_probe", None)
        con.close()


@pytest.mark.parametrize("bad", [
    dict(primary_key="z", columns=(("a", "VARCHAR"),)),
    dict(replace_key=("a", "z"), columns=(("a", "VARCHAR"),)),
    dict(columns=(("a", "VARCHAR"), ("a", "INTEGER"))),
])
def test_a_declaration_naming_a_missing_or_duplicate_column_is_refused(bad):
    with pytest.raises(ValueError):
        Table(**bad)
