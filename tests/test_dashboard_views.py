"""The Gallery's score sort, confusion matrix and degenerate cards; Compare's MPRT verdicts and facet titles:
pure functions on hand-made rows, and the sort on the fixture database."""
from __future__ import annotations

import json

import duckdb
import pandas as pd
from test_pages import run_page

from engine.dashboard.charts import facet_label
from engine.dashboard.compare import mprt_verdicts
from engine.dashboard.gallery import card_score, confusion_frame, score_choice, split_choice


def test_mprt_verdict_per_method():
    curves = pd.DataFrame({"method": ["a", "a", "b", "b", "c"], "step": [1, 2, 1, 2, 1], "images": [4] * 5,
                           "mean_spearman": [0.9, 0.8, 0.9, 0.1, float("nan")]})
    v = mprt_verdicts(curves, survives=0.5)
    assert v.method.tolist() == ["a", "b", "c"]
    assert v.verdict.tolist() == ["fails: survives randomisation", "passes", "undefined (constant maps)"]
    assert v.final_spearman.tolist()[:2] == [0.8, 0.1] and v.last_step.tolist() == [2, 2, 1]
    assert mprt_verdicts(curves.iloc[:0], 0.5).empty


def test_confusion_frame_and_names():
    rows = pd.DataFrame({"confusion": [json.dumps([[3, 1], [0, 4]])], "classes": [["ok", "sick"]]})
    cm = confusion_frame(rows)
    assert cm.loc["true sick", "predicted sick"] == 4 and cm.loc["true ok", "predicted sick"] == 1
    assert confusion_frame(rows.iloc[:0]).empty
    assert confusion_frame(rows.assign(confusion=json.dumps([[1]]))).empty  # not the classes' shape
    assert split_choice(score_choice("pointing_game", "lesion · core")) == ("pointing_game", "lesion · core")
    assert card_score([], "iou · mask", "constant") == "iou · mask: constant map (not scored)"
    assert card_score(None, None, "zero") == "all-zero map (not scored)"


def test_facet_titles_keep_the_whole_value_and_wrap():
    assert facet_label("method=attention (layer=8)") == "attention (layer=8)"  # not "8)"
    assert facet_label("method=integrated_gradients (n_steps=16) [substrate blur]", width=24) == \
        "integrated_gradients<br>(n_steps=16) [substrate<br>blur]"


def test_gallery_sorts_by_the_score_on_the_cards(dashboard_db, monkeypatch):
    with duckdb.connect(str(dashboard_db), read_only=True) as con:
        model = con.execute("SELECT model_id FROM models WHERE init = 'random'").fetchone()[0]
    for direction, desc in (("lowest", False), ("highest", True)):
        at = run_page("pages/2_Gallery.py", dashboard_db, monkeypatch,
                      {"model": model, "method": "chefer_gae", "cscore": "iou_top5 · mask",
                       "sort": f"score on the cards, {direction} first"})
        cards = [c.value for c in at.caption if "iou\\_top5" in c.value]
        values = [float(c.rsplit(" ", 1)[-1].replace("\\", "")) for c in cards if c.rsplit(" ", 1)[-1][0].isdigit()]
        assert len(values) >= 6 and values == sorted(values, reverse=desc), (direction, values)


def test_image_page_labels_refused_maps(guards_db, monkeypatch):
    with duckdb.connect(str(guards_db), read_only=True) as con:
        ds, model, image, kind = con.execute(
            "SELECT g.dataset_id, g.model_id, g.image_id, g.kind FROM degenerate_maps g SEMI JOIN explanations e "
            "USING (dataset_id, model_id, image_id, method, method_params) ORDER BY ALL LIMIT 1").fetchall()[0]
    at = run_page("pages/3_Image.py", guards_db, monkeypatch, {"dataset": ds, "model": model, "image": image})
    captions = [c.value for c in at.caption]
    from engine.dashboard.gallery import DEGENERATE
    assert any(c.endswith(DEGENERATE[kind]) for c in captions), captions
