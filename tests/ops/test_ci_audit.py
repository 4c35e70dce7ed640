"""CI's pip-audit step (.ci/audit.py) never reports a clean result it did not get: skipped dependencies are
said plainly, a known vulnerability fails."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def audit():
    spec = importlib.util.spec_from_file_location("ci_audit", ROOT / ".ci" / "audit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def answer(monkeypatch, audit, dependencies):
    report = json.dumps({"dependencies": dependencies})
    monkeypatch.setattr(
        audit.subprocess, "run", lambda *a, **kw: subprocess.CompletedProcess(a, 0, stdout=report, stderr="")
    )


def test_an_unreachable_database_is_not_a_clean_result(audit, monkeypatch, capsys):
    answer(monkeypatch, audit, [{"name": "django", "skip_reason": "Dependency not found on PyPI"}, {"name": "x"}])
    assert audit.main([]) == 0
    out = capsys.readouterr().out
    assert "1 of 2 dependencies could NOT be audited" in out and "NOT a clean result" in out
    assert "no known vulnerabilities" not in out


def test_a_known_vulnerability_fails(audit, monkeypatch, capsys):
    vuln = {"id": "PYSEC-2026-1", "fix_versions": ["5.2.21"]}
    answer(monkeypatch, audit, [{"name": "django", "version": "5.2.20", "vulns": [vuln]}, {"name": "x", "vulns": []}])
    assert audit.main([]) == 1
    assert "django 5.2.20: PYSEC-2026-1 (fixed in: 5.2.21)" in capsys.readouterr().out


def test_all_checked_and_clean_says_so(audit, monkeypatch, capsys):
    answer(monkeypatch, audit, [{"name": "django", "version": "5.2.20", "vulns": []}])
    assert audit.main([]) == 0
    assert "all 1 dependencies of requirements/prod.txt checked: no known vulnerabilities" in capsys.readouterr().out
