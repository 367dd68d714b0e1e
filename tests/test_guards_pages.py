"""The guards on the pages: near-chance flag, both-baseline verdicts and headline, n degenerate beside n,
the substrate warning, wall time vs summed job time, the figure downloads."""
from __future__ import annotations

import duckdb
from test_pages import run_page, texts

from engine.dashboard.guards import NEAR_CHANCE


def _flags(db) -> dict[str, bool]:
    with duckdb.connect(str(db), read_only=True) as con:
        return dict(con.execute("SELECT model_id, near_chance FROM model_quality").fetchall())


def _untrained(db) -> set[str]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {m for (m,) in con.execute("SELECT model_id FROM models WHERE init = 'random'").fetchall()}


def _warned(at) -> str:
    """The warnings as plain text (the pages escape every punctuation mark of data values for markdown)."""
    return "\n".join(w.value for w in at.warning).replace("\\", "")


def test_leaderboard_shows_every_guard(guards_db, monkeypatch):
    flags, twins = _flags(guards_db), _untrained(guards_db)
    assert twins and any(flags[t] for t in twins)  # the random-weights twin is at chance
    at = run_page("pages/1_Leaderboard.py", guards_db, monkeypatch)
    warned = _warned(at)
    for model_id, near in flags.items():  # the twin: a note that it is at chance by design, never the warning
        assert (f"{model_id} — {NEAR_CHANCE}" in warned) is (near and model_id not in twins)
    assert "at chance by design" in texts(at).replace("\\", "")
    # the selected fine-tuned model first: the oracle (highest test accuracy) leads the tables and headlines
    assert at.sidebar.selectbox(key="lb_focus").value == "oracle"
    assert at.dataframe[0].value.columns[0] == "oracle"
    detail = at.dataframe[1].value
    assert detail.model_id.iloc[0] == "oracle" and detail.model_id.iloc[-1] in twins
    assert {"n degenerate", "vs random map", "vs centre map", "warning"} <= set(detail.columns)
    dead = detail[detail.method == 'baseline_centre (sigma=1000000.0)']
    assert len(dead) == 2 and (dead["n degenerate"] == 12).all() and (dead["n"] == 0).all()
    assert detail["vs centre map"].str.contains(r", (beats|below|n\.s\.)\)$").any()
    heads = [m.value for m in at.markdown if m.value.startswith("**")]
    assert len(heads) == len(flags) and any("no baseline map was run" in h for h in heads)
    assert heads[0].startswith("**oracle**")
    assert "Regions covering the image centre" in texts(at)
    at.sidebar.selectbox(key="lb_metric").set_value("deletion_auc")
    at.run()
    detail = at.dataframe[1].value
    ig = detail[detail.method.str.startswith("integrated_gradients")]
    assert set(ig.method.str.extract(r"substrate (\w+)")[0]) == {"zero", "blur"}
    assert all(("baseline = substrate" in w) == ("substrate zero" in m) for m, w in zip(ig.method, ig.warning))


def test_gallery_image_compare_show_the_flag(guards_db, monkeypatch):
    flags = _flags(guards_db)
    flagged = sorted(m for m, f in flags.items() if f)[0]
    with duckdb.connect(str(guards_db), read_only=True) as con:
        ds, image = con.execute("SELECT dataset_id, image_id FROM predictions WHERE model_id = ? ORDER BY image_id "
                                "LIMIT 1", [flagged]).fetchall()[0]
    for model, near in ((flagged, True), ("oracle", False)):
        for page, params in (("pages/2_Gallery.py", {"model": model}),
                             ("pages/3_Image.py", {"dataset": ds, "model": model, "image": image}),
                             ("pages/4_Compare.py", {"view": "sanity", "model": model})):
            at = run_page(page, guards_db, monkeypatch, params)
            assert (NEAR_CHANCE in _warned(at)) is near, (page, model)  # about the selected model only


def test_image_page_figure_downloads(guards_db, monkeypatch):
    with duckdb.connect(str(guards_db), read_only=True) as con:
        ds, model, image = con.execute("SELECT dataset_id, model_id, image_id FROM degenerate_maps WHERE model_id "
                                       "LIKE 'vit_demo:random@%' ORDER BY ALL LIMIT 1").fetchall()[0]
    at = run_page("pages/3_Image.py", guards_db, monkeypatch, {"dataset": ds, "model": model, "image": image})
    assert not at.get("download_button")  # built only when asked for
    at.checkbox(key="im_fig_make").check()
    at.run()
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Download the figure (PNG, 300 dpi)", "Download the figure (SVG)"]


def test_runs_page_names_wall_time_and_summed_job_time(guards_db, monkeypatch):
    at = run_page("pages/5_Runs.py", guards_db, monkeypatch)
    history = at.dataframe[0].value
    from engine.dashboard import JOB_TIME
    assert {"wall time (s)", JOB_TIME} <= set(history.columns) and "not wall time" in JOB_TIME
    fixture_run = history[history.status == "finished"].iloc[0]
    assert fixture_run[JOB_TIME] == 4 * 3.0  # the fixture's four jobs of 3 s each
