"""Nothing injected: image ids, model and dataset ids, class and region names, run ids and URL parameters
that carry markdown links, images, HTML and autolinks are shown as the characters they are on every page
(no link or image element comes from them, in markdown or in a Plotly chart); CSV exports neutralise
spreadsheet formulas."""
from __future__ import annotations

import json
import re

import duckdb
import pandas as pd
import pytest
from test_pages import run_page

from engine.dashboard.safe import (
    JOINER,
    code,
    csv_bytes,
    csv_safe,
    md,
    md_text,
    neutralise_cell,
    plotly_frame,
    plotly_text,
    unlink,
)

EVIL = (' [evil](https://evil.example/x) ![img](https://evil.example/p.png) <a href="https://evil.example/a">a</a> '
        '<img src=https://evil.example/i.png> www.evil.example mail@evil.example :red[r] $x$ `c` **b** '
        '<img src=x onerror=alert(1)> https://evil.example/bare')
URL_EVIL = "[click](https://evil.example/url)"


def _evil(df: pd.DataFrame) -> pd.DataFrame:
    """EVIL appended to every user- or data-supplied string column of one table."""
    df = df.copy()
    for col in ("image_id", "run_id", "model_id", "dataset_id", "reason", "label"):
        if col in df:
            df[col] = [v + EVIL if isinstance(v, str) else v for v in df[col]]
    if "region" in df:
        df["region"] = [v + EVIL if v == "box" else v for v in df["region"]]
    if "classes" in df:
        df["classes"] = [[c + EVIL for c in v] if v is not None else v for v in df["classes"]]
    return df


@pytest.fixture(scope="module")
def evil_db(dashboard_db, tmp_path_factory):
    """The dashboard fixture rebuilt through the writer with every user- or data-supplied string carrying
    EVIL (ids, names, class and region names, failure reasons)."""
    from engine.store import ResultWriter
    from engine.store.read import read_only
    from engine.store.schema import REPLACE_KEYS, SHARDED, TABLES, columns
    db = tmp_path_factory.mktemp("evil") / "evil.duckdb"
    with read_only(dashboard_db) as src:
        frames = {t: src.execute(f"SELECT * FROM {t}").df() for t in TABLES if t != "meta"}
    frames["datasets"] = frames["datasets"].assign(name=frames["datasets"]["name"] + EVIL)
    with ResultWriter(db) as w:
        for t, df in frames.items():
            df = _evil(df)
            if t in SHARDED or t in REPLACE_KEYS:
                w.replace_rows(t, df)
                continue
            cols = ", ".join(c for c, _ in columns(t))
            w.con.register("_evil_rows", df[[c for c, _ in columns(t)]])
            w.con.execute(f"INSERT OR REPLACE INTO {t} ({cols}) SELECT {cols} FROM _evil_rows")
            w.con.unregister("_evil_rows")
            w._dirty = True  # rows put in by hand (a test fixture): publish them
    return db


MD_LINK = re.compile(r"(?<!\\)\]\((?P<target>[^)]*)")


def markdown_problems(text: str) -> list[str]:
    """Constructs in a markdown source that would render as a link, an image or HTML (escaped ones excepted)."""
    out = []
    for m in MD_LINK.finditer(text):
        if not m.group("target").startswith("Image?"):  # the Gallery's own 'details' links
            out.append(f"link to {m.group('target')!r}")
    text = re.sub(r"(?<!\\)\]\(Image\?[^)\s]*\)", "]", text)  # our own links' (url-encoded) destinations
    for pattern, what in ((r"(?<!\\)!\[", "image"), (r"(?<!\\)<[A-Za-z/!?]", "HTML or autolink"), (r"://", "bare URL"),
                          (r"(?<!\\)www\.", "www autolink"), (r"(?<!\\)@\w+(?<!\\)\.\w", "e-mail autolink"),
                          (r"(?<!\\):\w+(?<!\\)\[", "directive"), (r"(?<!\\)\$", "maths")):
        if re.search(pattern, text):
            out.append(what)
    return out


def _nodes(node):
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _nodes(child)


MARKDOWN_TYPES = {"markdown", "caption", "info", "warning", "error", "success", "title", "header", "subheader"}


def check_page(at) -> tuple[str, str]:
    """Assert nothing on the page renders a link, image or HTML from data; return (markdown, plotly) text."""
    md_texts, specs = [], []
    for node in _nodes(at._tree):
        kind = getattr(node, "type", None)
        if kind in MARKDOWN_TYPES and isinstance(getattr(node, "value", None), str):
            md_texts.append(node.value)
        label = getattr(node, "label", None)
        if isinstance(label, str):
            md_texts.append(label)
        if kind == "plotly_chart":
            specs.append(node.proto.spec)
    for text in md_texts:
        assert not markdown_problems(text), (markdown_problems(text), text)
    for spec in specs:
        strings = json.dumps(json.loads(spec)).lower()
        assert "<a " not in strings and "<img" not in strings, "HTML in a Plotly chart"
    return "\n".join(md_texts), "\n".join(specs)


def _ids(db):
    with duckdb.connect(str(db), read_only=True) as con:
        ds = con.execute("SELECT dataset_id FROM datasets").fetchone()[0]
        model = con.execute("SELECT model_id FROM models WHERE init = 'random'").fetchone()[0]
        image = con.execute("SELECT image_id FROM explanations WHERE model_id = ? LIMIT 1", [model]).fetchone()[0]
        run = con.execute("SELECT run_id FROM runs WHERE status = 'failed'").fetchone()[0]
    return ds, model, image, run


def test_overview_and_runs_show_evil_strings_as_text(evil_db, monkeypatch):
    check_page(run_page("app.py", evil_db, monkeypatch))
    _, _, _, run = _ids(evil_db)
    text, _ = check_page(run_page("pages/5_Runs.py", evil_db, monkeypatch, {"run": run}))
    assert md(run) in text  # the run id is shown (escaped) in the expander label


@pytest.mark.parametrize("group", ["model", "strategy"])
def test_leaderboard_legend_and_caption_are_text(evil_db, monkeypatch, group):
    at = run_page("pages/1_Leaderboard.py", evil_db, monkeypatch, {"group": group})
    text, plots = check_page(at)
    assert md(EVIL.strip()) in text  # the dataset name is shown, escaped
    if group == "model":
        assert "&lt;a href" in plots  # the model label reached the legend, escaped
    region = run_page("pages/1_Leaderboard.py", evil_db, monkeypatch, {"region": "box" + EVIL})
    check_page(region)


def test_gallery_captions_and_links_are_text(evil_db, monkeypatch):
    ds, model, image, _ = _ids(evil_db)
    at = run_page("pages/2_Gallery.py", evil_db, monkeypatch, {"model": model, "fmetric": "pointing_game · box" + EVIL})
    text, _ = check_page(at)
    assert md(image) in text  # image ids are shown, escaped (captions, details links or load warnings)


@pytest.mark.parametrize("image", ["existing", URL_EVIL, URL_EVIL + EVIL])
def test_image_page_url_parameter_is_text(evil_db, monkeypatch, image):
    ds, model, existing, _ = _ids(evil_db)
    image = existing if image == "existing" else image
    at = run_page("pages/3_Image.py", evil_db, monkeypatch, {"dataset": ds, "model": model, "image": image})
    text, _ = check_page(at)
    assert md(image) in text


@pytest.mark.parametrize("view", ["strategy", "agreement", "regions", "depth", "sanity", "faithfulness",
                                  "confounders"])
def test_compare_views_are_text(evil_db, monkeypatch, view):
    _, model, _, _ = _ids(evil_db)
    at = run_page("pages/4_Compare.py", evil_db, monkeypatch, {"view": view, "model": model})
    check_page(at)


def test_markdown_problems_detects_what_it_guards_against():
    """The checker itself: every raw payload is flagged, every escaped one passes."""
    for raw in ("[x](https://e.x)", "![i](https://e.x/p.png)", "<a href='h'>a</a>", "see https://e.x", "www.e.x",
                "a@e.x", ":red[r]", "$x$"):
        assert markdown_problems(raw), raw
        assert not markdown_problems(md(raw)), md(raw)
    assert not markdown_problems("[details of x](Image?dataset=d&image=x)")


def test_md_escapes_every_punctuation_mark_and_keeps_one_line():
    assert md("a_b*c\nd") == r"a\_b\*c d"
    assert md(None) == "" and md(3) == "3"
    assert md("ü ñ 7") == "ü ñ 7"  # letters and digits untouched


def test_plotly_text_escapes_html():
    assert plotly_text('<a href="x">m</a> & co') == '&lt;a href="x"&gt;m&lt;/a&gt; &amp; co'
    df = plotly_frame(pd.DataFrame({"m": ["<b>x</b>", None], "v": [1.0, 2.0]}))
    assert df.m.tolist()[0] == "&lt;b&gt;x&lt;/b&gt;" and df.v.tolist() == [1.0, 2.0]


def test_csv_cells_that_start_a_formula_are_neutralised():
    df = pd.DataFrame({"model": ["=HYPERLINK(\"http://e.x\")", "+1", "-2+3", "@SUM(A1)", "\tx", "ok", None],
                       "mean": [-0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    safe = csv_safe(df)
    assert safe.model.tolist()[:6] == ["'=HYPERLINK(\"http://e.x\")", "'+1", "'-2+3", "'@SUM(A1)", "'\tx", "ok"]
    assert safe["mean"].tolist()[0] == -0.5  # numbers are not formulas
    text = csv_bytes(pd.DataFrame({"=cmd": ["=1+1"]})).decode()
    assert text.splitlines() == ["'=cmd", "'=1+1"]
    assert neutralise_cell(-1) == -1 and neutralise_cell("a=b") == "a=b"


def test_autolinks_are_broken_invisibly():
    """GFM finds autolink literals in the unescaped text (https://, www., a@b.c): a word joiner stops each."""
    assert unlink("see https://e.x/p and WWW.e.x or a@e.x") == (
        f"see https:{JOINER}//e.x/p and WWW{JOINER}.e.x or a@{JOINER}e.x")
    assert unlink("vit_demo:trained@ab12c") == "vit_demo:trained@ab12c"  # a model id's @hash is no e-mail
    assert md("https://e.x") == f"https\\:{JOINER}\\/\\/e\\.x"


def test_code_spans_hold_any_value():
    assert code("metric=nosuch") == "`metric=nosuch`"
    assert code("a`b``c") == "```a`b``c```" and code("`x") == "`` `x ``" and code("") == "` `"


def _plain_report(text: str) -> str:
    """The report's text as a reader sees it (escapes, entities and joiners removed)."""
    import html
    return html.unescape(re.sub(r"\\(.)", r"\1", text)).replace(JOINER, "")


def test_md_text_for_any_markdown_renderer():
    assert md_text("<img src=x onerror=a> & [l](u) *b* _i_ # | ~s~ $m$ ![i](u) `c`") == (
        "&lt;img src=x onerror=a&gt; &amp; \\[l\\](u) \\*b\\* \\_i\\_ \\# \\| \\~s\\~ \\$m\\$ \\!\\[i\\](u) \\`c\\`")
    assert md_text(" a\nb ") == " a b "  # one line, its edges kept
    assert _plain_report(md_text(EVIL)) == re.sub(r"\s+", " ", EVIL)  # the reader sees the characters


def test_markdown_report_renders_no_link_image_or_tag_from_a_name(evil_db):
    """``report --format md`` rendered by a Markdown renderer (Python-Markdown, with tables): the names are
    shown as text, and no <a>, <img> or other tag comes from them."""
    from html.parser import HTMLParser

    import markdown

    from engine.dashboard.report import build_report
    text = build_report(evil_db)
    rendered = markdown.markdown(text, extensions=["tables"])

    class Tags(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags, self.text = set(), []

        def handle_starttag(self, tag, attrs):
            self.tags.add(tag)

        def handle_data(self, data):
            self.text.append(data)
    parser = Tags()
    parser.feed(rendered)
    assert parser.tags <= {"h1", "h2", "h3", "p", "strong", "table", "thead", "tbody", "tr", "th", "td"}, parser.tags
    shown = "".join(parser.text).replace(JOINER, "")
    assert "[evil](https://evil.example/x)" in shown and "<img src=x onerror=alert(1)>" in shown  # as text
    assert "**b**" in shown and "`c`" in shown and "https://evil.example/bare" in shown


def test_names_are_text_in_the_browser(evil_db):
    """The served pages in Chromium: a model label (and every other name) carrying a URL, a markdown link and
    an <img onerror> is shown as text -- no <a> or <img> element comes from it, no script runs."""
    from urllib.parse import quote

    from test_browser import _launch, _serve
    pytest.importorskip("playwright")
    from playwright.sync_api import sync_playwright
    ds, model, image, run = _ids(evil_db)
    served = _serve(evil_db)
    url = next(served)
    dialogs = []
    try:
        with sync_playwright() as p:
            browser = _launch(p)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            try:
                for path, title, shown in (
                        ("/", "Do the heatmaps point", False), ("/Leaderboard", "Leaderboard", True),
                        (f"/Gallery?model={quote(model)}", "Gallery", True),
                        (f"/Image?dataset={quote(ds)}&model={quote(model)}&image={quote(image)}", "Image detail", True),
                        (f"/Compare?view=sanity&model={quote(model)}", "Compare", False),
                        (f"/Runs?run={quote(run)}", "Run history", True)):
                    page.goto(url + path, wait_until="domcontentloaded")
                    page.get_by_text(title, exact=False).first.wait_for(timeout=60000)
                    page.wait_for_timeout(500)
                    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
                                           timeout=120000)  # the script has run to its end
                    markdown = page.locator("[data-testid='stMarkdownContainer']", has_text="evil").count()
                    assert markdown > 0 or not shown, path  # the names are on the page, as text
                    links = page.eval_on_selector_all("a", "els => els.map(e => e.getAttribute('href') || '')")
                    images = page.eval_on_selector_all("img", "els => els.map(e => e.getAttribute('src') || '')")
                    assert not [h for h in links if "evil" in h], (path, links)
                    assert not [s for s in images if "evil" in s or s == "x"], (path, images)
                    assert page.locator("[onerror]").count() == 0, path
            finally:
                browser.close()
    finally:
        served.close()
    assert not dialogs  # no alert() ran
