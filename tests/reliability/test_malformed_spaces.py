"""Guarantee: a malformed space file (28 kinds, from tests/spaces) stops `gatesearch run` and
`gatesearch space validate` before anything starts: exit code 2, one error naming the file,
the line when known, the field and a fix, no traceback, and no output directory written."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from gatesearch.search.ui.cli import app
from tests.spaces.test_space_file import MALFORMED

assert len(MALFORMED) >= 20


@pytest.mark.parametrize("text, field, line, words", MALFORMED)
def test_cli_rejects_malformed_space(tmp_path: Path, text, field, line, words):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    out = tmp_path / "out"
    for args in (["run", str(path), "--output-dir", str(out)], ["space", "validate", str(path)]):
        result = CliRunner().invoke(app, args)
        message = " ".join(result.output.split())  # one line once rich wrapping is undone
        assert result.exit_code == 2, (args, result.output)
        assert message.startswith("error:") and "Traceback" not in message
        assert str(path) in message
        if line is not None:
            assert f"{path}:{line}:" in message
        if field:
            assert field.split(".")[0] in message
        assert words in message and "fix:" in message
    assert not out.exists()  # nothing half-written
