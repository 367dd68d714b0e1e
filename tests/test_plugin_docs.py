"""docs/plugins.md is built from the tested example files (docs/examples/my_plugin, docs/examples/plugins.toml)."""
from __future__ import annotations

import re

from conftest import PROJECT_ROOT

EXAMPLES = PROJECT_ROOT / "docs" / "examples"
EXPERIMENT = EXAMPLES / "plugins.toml"


def test_the_docs_page_is_built_from_the_tested_files():
    """docs/plugins.md shows the example's code as it is in the files the tests run, and the README links it."""
    page = (PROJECT_ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(python|toml)\n(.*?)```", page, re.S)
    sources = {"python": [(EXAMPLES / "my_plugin" / f).read_text(encoding="utf-8") for f in ("methods.py",
                                                                                            "metrics.py")],
               "toml": [EXPERIMENT.read_text(encoding="utf-8")]}
    shown = [text for lang, text in blocks if lang == "python" or "plugins = [" in text]
    assert len(shown) == 3
    for lang, text in blocks:
        if lang == "python" or "plugins = [" in text:
            lines = [ln for ln in text.splitlines() if ln.strip()]
            assert any(all(ln in src.splitlines() for ln in lines) and text.strip().splitlines()[0] in src
                       for src in sources[lang]), text[:200]
    python = [text for lang, text in blocks if lang == "python"]
    assert python[0].strip() in sources["python"][0] and python[1].strip() in sources["python"][1]
    assert "](docs/plugins.md)" in (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    assert "](models.md#evaluate-a-model-as-it-is)" in page
