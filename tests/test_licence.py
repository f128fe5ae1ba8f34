# SPDX-License-Identifier: Apache-2.0
"""farm is Apache-2.0: LICENSE and NOTICE exist, and every Python file says so first.

A file without the header is fixed by ``scripts/spdx.py`` (which only adds what is
missing, so it can be run at any time).
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = "# SPDX-License-Identifier: Apache-2.0"
FOLDERS = ("farm", "tests", "benchmarks", "examples")
SCRIPT = ROOT / "scripts" / "spdx.py"


def starts_with_header(path: Path) -> bool:
    lines = path.read_text(encoding="utf-8").splitlines()[:2]
    if lines and lines[0].startswith("#!"):
        lines = lines[1:]
    return bool(lines) and lines[0].rstrip() == HEADER


def test_every_python_file_has_the_spdx_header() -> None:
    files = [p for folder in FOLDERS for p in sorted((ROOT / folder).rglob("*.py"))]
    assert len(files) > 100
    missing = [str(p.relative_to(ROOT)) for p in files if not starts_with_header(p)]
    assert missing == [], f"run scripts/spdx.py; {len(missing)} files lack {HEADER!r}"


def test_licence_files_and_metadata_agree() -> None:
    licence = (ROOT / "LICENSE").read_text()
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence
    notice = (ROOT / "NOTICE").read_text()
    for credited in ("syzkaller", "crash_rules.py", "crash_oopses.py", "tests/fixtures/corpus"):
        assert credited in notice
    assert "examples/series" in notice and "GPL-2.0-only" in notice
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    # farm's code is Apache-2.0; the wheel also ships the kernel-derived demo recipes
    assert project["license"] == "Apache-2.0 AND GPL-2.0-only"
    for name in project["license-files"]:
        assert (ROOT / name).is_file(), name
    assert "GNU GENERAL PUBLIC LICENSE" in (ROOT / "LICENSES" / "GPL-2.0-only.txt").read_text()


def test_spdx_script_adds_the_header_once(tmp_path: Path) -> None:
    files = {
        "plain.py": '"""Doc."""\n',
        "script.py": "#!/usr/bin/env python3\nprint('hi')\n",
        "empty.py": "",
        "done.py": f"{HEADER}\nx = 1\n",
        "crlf.py": "x = 1\r\n",
        "notes.txt": "not python\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_bytes(text.encode())

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(SCRIPT), *args, str(tmp_path)],
            capture_output=True,
            text=True,
            check=False,
        )

    assert run("--check").returncode == 1
    assert run().returncode == 0
    expected = {
        "plain.py": f'{HEADER}\n"""Doc."""\n',
        "script.py": f"#!/usr/bin/env python3\n{HEADER}\nprint('hi')\n",
        "empty.py": f"{HEADER}\n",
        "done.py": f"{HEADER}\nx = 1\n",
        "crlf.py": f"{HEADER}\nx = 1\r\n",
        "notes.txt": "not python\n",
    }
    after = {name: (tmp_path / name).read_bytes().decode() for name in files}
    assert after == expected
    again = run()
    assert again.returncode == 0 and again.stdout == ""
    assert {name: (tmp_path / name).read_bytes().decode() for name in files} == expected
    assert run("--check").returncode == 0
