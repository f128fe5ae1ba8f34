# SPDX-License-Identifier: Apache-2.0
"""A non-editable install carries farm's data: loads, Kconfig fragments, worker sources,
the initramfs files, the demo series recipes (farm.data) and the web view's templates
and static files (farm.api.pages).

The wheel is built from a copy of the checkout (what ``git ls-files`` lists, symlinks
kept), the way ``pip install .`` and deploy/Dockerfile build it, and installed into a new
venv. That venv borrows the running venv's dependencies through a .pth file instead of
installing them again, but farm itself comes only from the wheel; it runs outside the
repository, so nothing can be found through the source tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Runs in the new venv: every path farm uses for its data, after using them.
PROBE = textwrap.dedent(
    """
    import json
    import farm
    from farm import data, demoseries
    from farm.build.kconfig import default_fragment, read_fragment
    from farm.config import load_config
    from farm.hosts import initramfs
    from farm.loads import WORKERS_DIR, get_load, load_names

    config = load_config()
    names = load_names(config)
    loads = [get_load(config, name) for name in names]
    fragments = sorted(data.kconfig_dir().glob("*.config"))
    options = {f.name: len(read_fragment(f)) for f in fragments}
    binaries = [WORKERS_DIR / f"{b}.c" for load in loads for b in load.binaries]
    init = [initramfs.WORKERS / name for name in ("init", "inittab")]
    cover, recipes = demoseries.load_recipes()
    from farm.api import pages
    templates = sorted(pages.ENV.list_templates())
    for name in templates:
        pages.ENV.get_template(name)  # parses: a template missing what it extends fails
    static = sorted(p.name for p in pages.STATIC.iterdir())
    paths = [
        pages.TEMPLATES, pages.STATIC,
        farm.__file__, config.loads_dir, default_fragment(), *fragments, *binaries, *init,
        demoseries.RECIPES, *(r.path for r in recipes),
    ]
    missing = [str(p) for p in [*fragments, *binaries, *init] if not p.is_file()]
    assert not missing, missing
    import importlib, pkgutil
    modules = [
        m.name for m in pkgutil.walk_packages(farm.__path__, "farm.")
        if not m.name.endswith("__main__") and ".migrations" not in m.name
    ]
    for name in modules:
        importlib.import_module(name)
    print(json.dumps({
        "modules": sorted(modules),
        "loads": names, "options": options, "recipes": len(recipes),
        "cover": cover.subject, "paths": [str(p) for p in paths],
        "templates": templates, "static": static,
    }))
    """
)


def run(
    cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{cmd}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def copy_checkout(dest: Path) -> None:
    """The checkout's files, tracked or new but not ignored, as a fresh clone has them."""
    listed = run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT).stdout
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if not source.is_symlink() and not source.exists():
            continue  # deleted in the work tree, not yet in the index
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest / name, follow_symlinks=False)


@pytest.mark.slow
def test_installed_wheel_finds_and_loads_all_its_data(tmp_path: Path) -> None:
    source, wheels, venv, work = (tmp_path / d for d in ("src", "wheels", "venv", "work"))
    copy_checkout(source)
    assert (source / "farm" / "_data" / "jobs").is_symlink()
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)])
    (wheel,) = wheels.glob("farm-*.whl")

    # Nothing of the source tree or of the running venv's own farm may leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "FARM_"))}
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], env=env)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    run([*pip, "install", "-q", "--no-deps", "--no-index", str(wheel)], env=env)
    # After the install, so pip does not take the running venv's farm for this one's.
    site = run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
    deps = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    Path(site.stdout.strip(), "dependencies.pth").write_text("\n".join(sorted(deps)) + "\n")

    work.mkdir()
    (work / "farm.toml").write_text(f'data_dir = "{tmp_path / "data"}"\n')
    env["FARM_CONFIG"] = str(work / "farm.toml")
    checked = run([str(venv / "bin" / "farm"), "config", "check", "--json"], cwd=work, env=env)
    assert json.loads(checked.stdout)["config"]["loads_dir"].startswith(str(venv))

    probe = json.loads(run([str(python), "-c", PROBE], cwd=work, env=env).stdout)
    expected_loads = sorted(p.stem for p in (ROOT / "jobs" / "loads").glob("*.toml"))
    assert probe["loads"] == expected_loads
    assert set(probe["options"]) == {p.name for p in (ROOT / "jobs" / "kconfig").glob("*.config")}
    assert all(probe["options"].values())
    assert probe["recipes"] == len(list((ROOT / "examples" / "series").glob("[0-9]*.toml")))
    in_tree = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in (ROOT / "farm").rglob("*.py")
        if "migrations" not in p.parts and p.name != "__main__.py"
    } - {"farm"}
    assert in_tree <= set(probe["modules"]), "modules missing from the wheel"
    web = ROOT / "farm" / "api"
    assert probe["templates"] == sorted(p.name for p in (web / "templates").glob("*.html"))
    assert probe["static"] == sorted(p.name for p in (web / "static").iterdir())
    outside = [p for p in probe["paths"] if not Path(p).is_relative_to(venv)]
    assert outside == [], "data found outside the installed package"
