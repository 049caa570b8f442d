"""The Python examples of the export floor's docs run as written, in a scratch folder (tiny configurations only)."""

import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
DOCS = ("docs/data.md", "docs/training.md", "docs/export.md")
FENCE = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def examples() -> list[tuple[str, int, str]]:
    """(doc, example number from 1, code) for every ```python block of DOCS."""
    return [(doc, i, code) for doc in DOCS
            for i, code in enumerate(FENCE.findall((ROOT / doc).read_text()), start=1)]


def test_every_doc_has_an_example():
    assert {doc for doc, _, _ in examples()} == set(DOCS)


@pytest.mark.parametrize(("doc", "number", "code"), examples(), ids=[f"{d}#{i}" for d, i, _ in examples()])
def test_doc_example_runs(tmp_path, monkeypatch, doc, number, code):
    monkeypatch.chdir(tmp_path)  # the examples write under runs/ and exports/ of the working folder
    torch.manual_seed(0)
    exec(compile(code, f"{doc} example {number}", "exec"), {"__name__": "__doc_example__"})
