"""docs/compatibility.md must be what scripts/gen_compat_doc.py renders from the shipped data."""

import importlib.util
import os

from ansible_collections.npu.fleet.plugins.module_utils import _compat_data

from conftest import REPO_ROOT

SCRIPT = os.path.join(REPO_ROOT, "scripts", "gen_compat_doc.py")
DOC = os.path.join(REPO_ROOT, "docs", "compatibility.md")


def _generator():
    spec = importlib.util.spec_from_file_location("gen_compat_doc", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_doc_is_current():
    generator = _generator()
    expected = generator.render(_compat_data.read_data_file(), _compat_data)
    with open(DOC, "r", encoding="utf-8") as handle:
        committed = handle.read()
    assert committed == expected, "docs/compatibility.md is stale: run `%s`" % generator.COMMAND


def test_doc_shows_every_release_and_architecture():
    data = _compat_data.read_data_file()
    with open(DOC, "r", encoding="utf-8") as handle:
        text = handle.read()
    assert all("| %s |" % version in text for version in data["releases"])
    assert all("| %s |" % name in text for name in data["architectures"])
    assert "| Qwen3ForCausalLM | Qwen3 (dense) | v0.8.4rc2 (also v0.7.3.post1" in text


def test_check_mode_reports_a_stale_doc(tmp_path, capsys):
    generator = _generator()
    generator.DOC = str(tmp_path / "compatibility.md")
    (tmp_path / "compatibility.md").write_text("old\n", encoding="utf-8")
    assert generator.main(["--check"]) == 1
    assert "run `python scripts/gen_compat_doc.py`" in capsys.readouterr().err
    assert generator.main([]) == 0
    assert generator.main(["--check"]) == 0
