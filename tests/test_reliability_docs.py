"""docs/reliability.md is the table `python -m tests.reliability` writes from the registered cases: up to date."""

from pathlib import Path

from tests.reliability import table

DOC = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"


def test_the_reliability_table_is_up_to_date():
    fix = "regenerate it: python -m tests.reliability > docs/reliability.md"
    assert DOC.read_text(encoding="utf-8") == table(), fix


def test_the_table_has_a_row_per_case_of_each_command():
    rows = [line for line in table().splitlines() if line.startswith("| `")]
    assert len(rows) >= 12 and {row.split("|")[1].strip() for row in rows} >= {"`detect`"}
