"""The README's examples run as written: the Python API snippet (docs/examples/api.py, whose marked block
must be the README's) and the check-data command."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest
from conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow  # end-to-end: runs of the example experiments

API = PROJECT_ROOT / "docs" / "examples" / "api.py"


def _readme_snippet() -> list[str]:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Python API.*?```python\n(.*?)```", readme, re.S).group(1)
    return [ln.rstrip() for ln in block.strip().splitlines()]


def test_readme_api_snippet_is_the_tested_file():
    text = API.read_text(encoding="utf-8")
    marked = text.split("# --- as in the README ---\n")[1].split("# ---\n")[0]
    ours = [ln.rstrip() for ln in marked.strip().splitlines()]
    assert ours == _readme_snippet()


def test_api_example_runs_as_written(tmp_path):
    out = subprocess.run([sys.executable, str(API)], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "methods registered; chefer_lrp map (2, 8, 8) -> (2, 64, 64)" in out.stdout
    assert re.search(r"pointing game \[(0\.0|1\.0), (0\.0|1\.0)\], insertion AUC \[0\.\d+, 0\.\d+\]", out.stdout)
