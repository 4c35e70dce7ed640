"""CI: pip-audit against the production lock, honest about what it could not check.

pip-audit exits 0 when the vulnerability database (PyPI's) does not answer: every dependency is then
"skipped", and a plain run would look clean. Here:
- a known vulnerability in the lock fails CI (exit 1), with the advisories;
- a dependency the database could not be asked about is listed, and the run says plainly that the
  result is NOT clean (exit 0: the database being unreachable is not a defect of the change);
- only when every dependency was checked does it say "no known vulnerabilities".

Run: .venv/bin/python .ci/audit.py [requirements/prod.txt]
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    lock = argv[0] if argv else "requirements/prod.txt"
    audit = Path(sys.executable).with_name("pip-audit")
    command = [str(audit), "-r", lock, "--disable-pip", "--require-hashes", "--timeout", "20", "-f", "json"]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    try:
        report = json.loads(run.stdout)
    except ValueError:
        print(f"pip-audit: no report (exit {run.returncode}): NOT audited.\n{run.stderr.strip()[-2000:]}")
        return 0
    dependencies = report.get("dependencies", [])
    skipped = [dep for dep in dependencies if dep.get("skip_reason")]
    vulnerable = [dep for dep in dependencies if dep.get("vulns")]
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fix yet"
            print(f"pip-audit: {dep['name']} {dep.get('version')}: {vuln.get('id')} (fixed in: {fixed})")
    if skipped:
        print(
            f"pip-audit: {len(skipped)} of {len(dependencies)} dependencies could NOT be audited (the vulnerability "
            f"database did not answer), so this is NOT a clean result; e.g. {skipped[0]['skip_reason']}"
        )
    if vulnerable:
        print(f"pip-audit: {len(vulnerable)} dependencies with known vulnerabilities in {lock}")
        return 1
    if not skipped:
        print(f"pip-audit: all {len(dependencies)} dependencies of {lock} checked: no known vulnerabilities")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
