"""The report (``python -m engine report``), the leaderboard exports (CSV, LaTeX) and the paper figure."""
from __future__ import annotations

import re
import subprocess
import sys

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import PROJECT_ROOT

from engine.dashboard import queries
from engine.dashboard.export import paper_table, tex_escape, to_csv, to_latex
from engine.dashboard.figure import Panel, render_png, render_svg
from engine.dashboard.guards import NEAR_CHANCE, headlines, with_guards
from engine.dashboard.report import build_report


def _quality(db) -> dict[str, bool]:
    with duckdb.connect(str(db), read_only=True) as con:
        return dict(con.execute("SELECT model_id, near_chance FROM model_quality").fetchall())


def _dataset(db) -> str:
    return queries.datasets(db).dataset_id.iloc[0]


def _section(text: str, start: str, end: str = "\n### ") -> str:
    i = text.index(start)
    j = text.find(end, i + len(start))
    return text[i:j if j >= 0 else None]


def _plain(text: str) -> str:
    """The Markdown report's text as a reader sees it: names are escaped (backslashes, entities, joiners)."""
    import html

    from engine.dashboard.safe import JOINER
    return html.unescape(re.sub(r"\\(.)", r"\1", text)).replace(JOINER, "")


def test_report_flags_present_where_they_should_be_and_absent_where_not(guards_db):
    raw = build_report(guards_db)
    assert build_report(guards_db) == raw  # deterministic
    text = _plain(raw)
    flags = _quality(guards_db)
    assert flags["oracle"] is False and flags["shuffled"] is True  # both cases are in the fixture
    models = _section(text, "### Models")
    for model_id, near in flags.items():
        line = next(ln for ln in models.splitlines() if ln.startswith(f"| {model_id} |"))
        assert (NEAR_CHANCE in line) is near, line
    board = _section(text, "### pointing_game on mask")
    for model_id, near in flags.items():
        head = next(ln for ln in board.splitlines() if ln.startswith(f"**{model_id}**"))
        assert (NEAR_CHANCE in head) is near, head
    # both-baseline verdicts where the baselines were run, "no baseline" where not
    first = next(m for m in flags if m.startswith("vit_demo:random@"))
    assert re.search(rf"\*\*{re.escape(first)}\*\*.*: (.* beats? both baselines|no method beats)", board)
    other = next(m for m in flags if "random-b" in m)
    assert re.search(rf"\*\*{re.escape(other)}\*\*.*no baseline map was run", board)
    # degenerate maps beside n; the centre prior; the substrate warning only where baseline = substrate
    assert re.search(r"\| baseline \| baseline_centre \(sigma=1000000.0\) \| – \[–, –\] \| 0 \| 12 \|", board)
    assert "Regions covering the image centre" in text
    zero = _section(text, "### deletion_auc on none, substrate zero")
    ig = [ln for ln in zero.splitlines() if "| integrated_gradients" in ln]
    assert len(ig) == 2 and all("baseline = substrate (zero)" in ln for ln in ig)  # first model and oracle
    assert not any("baseline = substrate" in ln for ln in zero.splitlines() if "| attention" in ln)
    blur = _section(text, "### deletion_auc on none, substrate blur")
    assert "| integrated_gradients" in blur and "baseline = substrate" not in blur
    # sanity verdicts and failures
    # the fixture runs MPRT on 2 images: too few for a verdict, and the count is of images with a value
    sanity = _section(text, "### Sanity check (MPRT")
    assert "no verdict: 2 images have a value" in sanity and "passes" not in sanity and "FAILS" not in sanity
    assert "fixture: out of memory" in _section(text, "### Failures", "\n## ")


def test_report_blurred_substrate_has_no_warning(guards_db):
    board = queries.leaderboard(guards_db, _dataset(guards_db), "deletion_auc", "none")
    g = with_guards(board)
    ig = g[g.method == "integrated_gradients"]
    assert set(ig.substrate) == {"zero", "blur"}
    assert all(bool(w) == (s == "zero") for s, w in zip(ig.substrate, ig.warning))


def test_report_html_and_one_dataset(guards_db):
    page = build_report(guards_db, fmt="html")
    assert page.startswith("<!DOCTYPE html>") and "<table>" in page and NEAR_CHANCE in page
    name = queries.datasets(guards_db).name.iloc[0]
    assert build_report(guards_db, dataset=name) == build_report(guards_db)  # one dataset in the fixture
    assert "No dataset named 'nope'" in build_report(guards_db, dataset="nope")
    with pytest.raises(ValueError, match="format"):
        build_report(guards_db, fmt="pdf")


def test_report_cli(guards_db, tmp_path):
    out = tmp_path / "r.md"
    proc = subprocess.run([sys.executable, "-m", "engine", "report", "--db", str(guards_db), "--out", str(out)],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text(encoding="utf-8") == build_report(guards_db)
    missing = subprocess.run([sys.executable, "-m", "engine", "report", "--db", str(tmp_path / "no.duckdb")],
                             cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and "no results database" in missing.stderr


def test_headline_on_the_fixture(guards_db):
    board = with_guards(queries.leaderboard(guards_db, _dataset(guards_db), "iou_top5", "mask"))
    h = headlines(board)
    assert set(h) == set(board.model_id)
    assert all(isinstance(v, str) and v for v in h.values())


# -- exports ---------------------------------------------------------------------------------------

def _board():
    """A hand-made leaderboard frame (the columns of queries.leaderboard)."""
    rows = [("m1", "a", 0.81, 0.75, 0.86, 0.30, 0.001, 0.20, 0.01),
            ("m1", "b", 0.50, 0.40, 0.60, -0.01, 0.9, -0.1, 0.2),
            ("m1", "baseline_random", 0.51, 0.41, 0.61, None, None, 0.1, 0.5),
            ("m1", "baseline_centre", 0.61, 0.51, 0.71, None, None, None, None),
            ("m2", "a", 0.40, 0.35, 0.45, 0.0, 1.0, -0.2, 0.01), ("m2", "b", 0.45, 0.40, 0.50, 0.05, 0.04, 0.0, 1.0)]
    df = pd.DataFrame(rows, columns=["model_id", "method", "mean", "ci_low", "ci_high", "gap_random", "p_random",
                                     "gap_centre", "p_centre"])
    return df.assign(method_params="{}", n=20, n_undefined=0, n_degenerate=[0, 2, 0, 0, 0, 0], higher_is_better=True,
                     substrate=None, method_baseline=None, near_chance=[False] * 4 + [True] * 2)


def test_latex_by_hand():
    tex = to_latex(paper_table(_board()), "pointing_game", "mask", True)
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    assert r"method & m1 & m2$^\dagger$ \\" in tex                       # near-chance model marked
    assert r"a & \textbf{0.81 [0.75, 0.86]}\textsuperscript{rc} & 0.40 [0.35, 0.45} \\" not in tex
    assert r"a & \textbf{0.81 [0.75, 0.86]}\textsuperscript{rc} & 0.40 [0.35, 0.45] \\" in tex
    assert r"b & 0.50 [0.40, 0.60] & \textbf{0.45 [0.40, 0.50]}\textsuperscript{r} \\" in tex
    assert r"baseline\_centre & 0.61 [0.51, 0.71] &  \\" in tex
    assert tex.index("baseline\\_centre") > tex.index("b & 0.50")  # baselines below a rule, after the methods
    assert to_latex(paper_table(_board()), "pointing_game", "mask", True) == tex


def test_latex_lower_is_better_bolds_the_minimum():
    tex = to_latex(paper_table(_board().assign(higher_is_better=False)), "deletion_auc", "none", False)
    assert r"b & \textbf{0.50 [0.40, 0.60]}" in tex and r"\textbf{0.40 [0.35, 0.45]}" in tex


def test_latex_bolds_by_the_shared_images_and_marks_n():
    # m1: 'b' has 14 of 20 maps degenerate (70 % > 10 %) and a lower own mean, but over the 6 shared images it
    # beats 'a' (0.9 vs 0.8): b is bold and marked d; its own n is the shared 6, so only a's cell (own n 20)
    # carries the double dagger; the column head names the shared n
    b = _board().assign(n=[20, 6, 20, 20, 20, 20], n_degenerate=[0, 14, 0, 0, 0, 0],
                        n_common=[6, 6, 6, 6, 20, 20], mean_common=[0.8, 0.9, 0.5, 0.6, 0.40, 0.45])
    tex = to_latex(paper_table(b), "pointing_game", "mask", True)
    assert r"method & m1 (n = 6) & m2$^\dagger$ (n = 20) \\" in tex
    assert r"a & 0.81 [0.75, 0.86]\textsuperscript{rc}$^\ddagger$ & 0.40 [0.35, 0.45] \\" in tex
    assert r"b & \textbf{0.50 [0.40, 0.60]}\textsuperscript{d} & \textbf{0.45 [0.40, 0.50]}\textsuperscript{r}" in tex
    table = paper_table(b).set_index(["model_id", "method"])
    assert table.loc[("m1", "b"), "rank"] == 1 and bool(table.loc[("m1", "b"), "mostly_degenerate"])
    assert table.loc[("m1", "b"), "degenerate_share"] == pytest.approx(0.7)


def test_tex_escape():
    assert tex_escape("a_b & 50% {x}") == r"a\_b \& 50\% \{x\}"


def test_csv_is_deterministic_and_neutralises_formulas():
    board = _board()
    board.loc[0, "model_id"] = "=HYPERLINK(1)"
    data = to_csv(paper_table(board))
    assert data == to_csv(paper_table(board))
    df = pd.read_csv(__import__("io").BytesIO(data))
    assert list(df.columns[:6]) == ["model_id", "method", "rank", "mean", "ci_low", "ci_high"]
    assert "'=HYPERLINK(1)" in set(df.model_id)
    r = df[(df.model_id == "m2") & (df.method == "b")].iloc[0]
    assert r["rank"] == 1 and r["vs_random"] == "beats" and r["vs_centre"] == "n.s." and bool(r["near_chance"])


def test_table_cli(guards_db, tmp_path):
    out = tmp_path / "t.tex"
    args = [sys.executable, "-m", "engine", "table", "--db", str(guards_db), "--dataset", _dataset(guards_db),
            "--metric", "pointing_game", "--region", "mask", "--format", "latex", "--out", str(out)]
    assert subprocess.run(args, cwd=PROJECT_ROOT, capture_output=True, timeout=300).returncode == 0
    first = out.read_bytes()
    assert subprocess.run(args, cwd=PROJECT_ROOT, capture_output=True, timeout=300).returncode == 0
    assert out.read_bytes() == first and b"\\toprule" in first


# -- figure ----------------------------------------------------------------------------------------

def _panels(n=2):
    rng = np.random.default_rng(0)
    out = []
    for k in range(n):
        mask = np.zeros((16, 16), bool)
        mask[4:9, 5:11] = True
        out.append(Panel(f"img{k}", rng.random((16, 16, 3)).astype(np.float32), {"mask": mask},
                         [rng.random((4, 4)).astype(np.float32), None], [f"pointing_game {k / 2:.2f}", "no map"]))
    return out


def test_figure_png_and_svg_are_deterministic():
    from PIL import Image
    png = render_png(_panels(), ["attention", "rollout"])
    assert png == render_png(_panels(), ["attention", "rollout"])
    img = Image.open(__import__("io").BytesIO(png))
    assert img.info["dpi"][0] == pytest.approx(300, abs=0.5)
    assert img.size[0] > 3 * 320 and img.size[1] > 2 * 320  # 3 columns x 2 rows of print-size tiles
    svg = render_svg(_panels(), ["attention", "rollout"])
    assert svg == render_svg(_panels(), ["attention", "rollout"])
    assert svg.count("<image ") == 6 and "pointing_game 0.50" in svg and "no map" in svg
    assert render_png(_panels(), ["attention", "rollout"], alpha=0.2) != png  # the inputs matter


def test_figure_outline_is_drawn():
    from PIL import Image
    p = _panels(1)
    p[0].maps = [None, None]
    png = np.asarray(Image.open(__import__("io").BytesIO(render_png(p, ["a", "b"]))))
    assert ((png[..., 0] == 0) & (png[..., 1] == 255) & (png[..., 2] == 255)).sum() > 100  # cyan boundary


def test_figure_refuses_mismatched_panels():
    with pytest.raises(ValueError, match="methods"):
        render_png(_panels(), ["only one"])


@pytest.mark.slow  # end-to-end: `engine figure` in a subprocess
def test_figure_cli(guards_db, tmp_path):
    stem = tmp_path / "fig"
    with duckdb.connect(str(guards_db), read_only=True) as con:
        model = con.execute("SELECT model_id FROM models WHERE model_id LIKE 'vit_demo:random@%'").fetchall()[0][0]
    args = [sys.executable, "-m", "engine", "figure", "--db", str(guards_db), "--dataset", _dataset(guards_db),
            "--model", model, "--methods", "attention,baseline_centre", "--n", "2", "--out", str(stem)]
    proc = subprocess.run(args, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    png = (tmp_path / "fig.png").read_bytes()
    assert "2 images x 2 methods" in proc.stdout and png.startswith(b"\x89PNG")
    assert "pointing_game" in (tmp_path / "fig.svg").read_text(encoding="utf-8")
    assert subprocess.run(args, cwd=PROJECT_ROOT, capture_output=True, timeout=300).returncode == 0
    assert (tmp_path / "fig.png").read_bytes() == png


# -- a report for every run ---------------------------------------------------------------------------

def test_run_report_is_written_next_to_the_log(guards_db, tmp_path):
    from engine.cli import write_run_report
    log = tmp_path / "logs" / "exp-20260101T000000Z.log"
    log.parent.mkdir()
    out = write_run_report(guards_db, log)
    assert out == tmp_path / "logs" / "exp-20260101T000000Z.report.md"
    assert out.read_text(encoding="utf-8") == build_report(guards_db)
    assert write_run_report(tmp_path / "missing.duckdb", log) is None  # logged, never fatal



# -- the names a user types (issue 24, item 5) -----------------------------------------------------------

def _cli(capsys, *argv) -> tuple[int, str, str]:
    from engine.cli import main
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_method_names_parse():
    from engine.cli.names import parse_method, split_methods
    assert split_methods("attention, integrated_gradients(n_steps=16, baseline=black),rollout") == [
        "attention", "integrated_gradients(n_steps=16, baseline=black)", "rollout"]
    assert parse_method("attention") == ("attention", None)
    assert parse_method("integrated_gradients (n_steps=16)") == ("integrated_gradients", {"n_steps": 16})
    assert parse_method("x(a=0.5, b=true, c=black)") == ("x", {"a": 0.5, "b": True, "c": "black"})


def test_figure_takes_the_dashboards_names(guards_db, tmp_path, capsys):
    ds, stem = _dataset(guards_db), tmp_path / "fig"
    rc, out, err = _cli(capsys, "figure", "--db", guards_db, "--dataset", ds, "--model", "vit_demo:random",
                        "--methods", "attention,integrated_gradients(n_steps=2),baseline_centre(sigma=1000000.0)",
                        "--n", "2", "--out", stem)
    assert rc == 0, err
    assert "2 images x 3 methods; pointing_game on mask" in out  # the dataset's first mask region
    png = (tmp_path / "fig.png").read_bytes()
    rc, _, err = _cli(capsys, "figure", "--db", guards_db, "--dataset", ds, "--model", "vit_demo:untrained",
                      "--methods", "attention,integrated_gradients (n_steps=2),baseline_centre(sigma=1e6)",
                      "--n", "2", "--out", stem)  # name:fine_tuning, the label's spacing, another spelling
    assert rc == 0 and (tmp_path / "fig.png").read_bytes() == png, err
    svg = (tmp_path / "fig.svg").read_text(encoding="utf-8")
    assert "no map" not in svg and "not scored" not in svg and "integrated_gradients" in svg
    assert "true: " in svg and "pred: " in svg and "n_steps=2" in svg
    rc, out, err = _cli(capsys, "figure", "--db", guards_db, "--dataset", ds, "--model", "vit_demo:random",
                        "--methods", "baseline_centre()", "--n", "1", "--out", stem)
    assert rc == 2 and "2 variants" in err and "baseline_centre(sigma=1000000.0)" in err


@pytest.mark.parametrize("flag,value,listed", [
    ("--model", "vit_demo:nope", "oracle, shuffled, vit_demo:random, vit_demo:random-b"),
    ("--model", "vit_demo:trained", "shuffled"),  # name:fine_tuning of three fixture models: which one?
    ("--methods", "attenton", "attention, baseline_centre"),
    ("--methods", "integrated_gradients(n_steps=99)", "integrated_gradients(n_steps=2)"),
    ("--metric", "pointing", "pointing_game"),
    ("--region", "mask_typo", "mask"),
    ("--dataset", "nope", "smear"),
    ("--images", "nope.png", "no image 'nope.png'"),
])
def test_unknown_names_are_one_line_listing_the_valid_ones(guards_db, tmp_path, capsys, flag, value, listed):
    args = {"--dataset": _dataset(guards_db), "--model": "vit_demo:random", "--methods": "attention",
            "--metric": "pointing_game", "--out": tmp_path / "f"}
    args[flag] = value
    argv = ["figure", "--db", guards_db, *[x for kv in args.items() for x in kv]]
    if flag == "--region":
        argv += ["--region", value]
    rc, out, err = _cli(capsys, *argv)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and listed in err and "Traceback" not in err
    assert not (tmp_path / "f.png").exists()
    if flag in ("--metric", "--region", "--dataset"):
        table = ["table", "--db", guards_db, "--dataset", args["--dataset"], "--metric", args["--metric"]]
        rc, out, err = _cli(capsys, *table, *(["--region", value] if flag == "--region" else []))
        assert rc == 2 and len(err.strip().splitlines()) == 1 and listed in err


def test_table_defaults_to_the_first_mask_region_and_heads_have_no_hash(guards_db, capsys):
    rc, out, err = _cli(capsys, "table", "--db", guards_db, "--dataset", _dataset(guards_db))
    assert rc == 0, err
    head = next(line for line in out.splitlines() if line.startswith("method &"))
    assert "vit" in head and "@" not in head and "on mask" in out
    rc, out, err = _cli(capsys, "table", "--db", guards_db, "--dataset", _dataset(guards_db), "--metric",
                        "deletion_auc")
    assert rc == 0, err
    assert "on none" not in out and "deletion" in out


def test_missing_database_and_unwritable_output_are_one_line(guards_db, tmp_path, capsys):
    rc, _, err = _cli(capsys, "table", "--db", tmp_path / "none.duckdb", "--dataset", "x")
    assert rc == 2 and "no results database" in err and len(err.strip().splitlines()) == 1
    rc, _, err = _cli(capsys, "table", "--db", guards_db, "--dataset", _dataset(guards_db), "--out",
                      tmp_path / "no" / "such" / "dir.tex")
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "dir.tex" in err


def test_captions_keep_classes_whole_and_shorten_ids_from_the_left():
    from engine.dashboard.figure import _caption
    p = _panels(1)[0]
    p.image_id = "BloodImage_00000_very_long_folder_name_" + "x" * 30 + "_END.jpg"
    p.caption = f"{p.image_id}\ntrue: a_rather_long_class_name_neutrophil_segmented\npred: eosinophil"
    lines = _caption(p, 320)
    assert lines[0].startswith("…") and lines[0].endswith("_END.jpg") and len(lines[0]) <= 23
    assert "".join(lines[1:]).replace("pred", " pred") == ("true: a_rather_long_class_name_neutrophil_segmented"
                                                           " pred: eosinophil")
    svg = render_svg([p], ["integrated_gradients (n_steps=16)", "rollout"])
    assert "_END.jpg" in svg and "(n_steps=16)" in svg  # long heads wrap, never cut


def test_gallery_captions_name_no_none_region(guards_db):
    with duckdb.connect(str(guards_db), read_only=True) as con:
        model = con.execute("SELECT model_id FROM scores WHERE metric = 'deletion_auc' LIMIT 1").fetchone()[0]
    g = queries.gallery(guards_db, _dataset(guards_db), model, "attention", limit=3)
    texts = [t for row in g.scores for t in row]
    assert any(t.startswith("deletion_auc ") for t in texts) and not any("none" in t for t in texts)
