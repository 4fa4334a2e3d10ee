"""Architecture rules (DEVELOPERS.md): imports go one way, dsl < proxy_tasks < simplify <
search core < funnel < CLI (so no library code imports the CLI), and nothing imports in a
cycle. The contracts live in
pyproject.toml ([tool.importlinter]); this runs import-linter on them, so the test command
checks them everywhere the tests run."""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    exe = shutil.which("lint-imports")
    assert exe, "import-linter is a test dependency: pip install -e '.[test]'"
    r = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "2 kept, 0 broken" in r.stdout

