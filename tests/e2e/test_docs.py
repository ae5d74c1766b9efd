"""The generated configuration reference in docs/ matches what the binary accepts."""
from pathlib import Path

from ferrytest import run_cli

DOCS = Path(__file__).resolve().parents[2] / "docs" / "config.md"


def test_config_reference_is_current(ferry_bin):
    result = run_cli(ferry_bin, ["config-docs"])
    assert result.returncode == 0, result.stderr
    assert DOCS.read_text() == result.stdout, (
        "docs/config.md is out of date: regenerate it with `ferry config-docs > docs/config.md`")


def test_config_reference_covers_routes(ferry_bin):
    text = run_cli(ferry_bin, ["config-docs"]).stdout
    for key in ("## `routes[]`", "## `routes[].target`", "`max_attempts`", "`ordering`"):
        assert key in text
