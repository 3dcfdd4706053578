"""The layering: the CLI (xembody/*.py) -> real -> models -> sim, and the library never
imports the CLI. The contracts are pyproject's [tool.importlinter]; import-linter checks them.

pyproject's package-dir puts xembody.sim, .models and .real in sim/, models/ and real/, which
import-linter (it walks the folder of the root package) does not see under xembody/. So the
check runs on a tree of links that lays the package out as Python imports it.
Run it by hand: `python tests/test_architecture.py` (the report; exit status 1 when broken).
docs/ARCHITECTURE.md draws these layers and names files: both are checked here too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytest.importorskip("importlinter")

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
LIBRARY = ("sim", "models", "real")  # xembody.<name> lives in ROOT/<name>
LINT = "import sys, importlinter.cli as c; sys.exit(c.lint_imports_command())"  # lint-imports


def stage(where: Path, planted: dict[str, str] | None = None) -> Path:
    """A folder holding `xembody/` as Python imports it: links to xembody/*, sim/, models/
    and real/. `planted` adds modules ({"models/x.py": source}); a library folder that gets
    one becomes a folder of links to its files plus the planted module."""
    planted = planted or {}
    pkg = where / "xembody"
    pkg.mkdir(parents=True)
    for item in (ROOT / "xembody").iterdir():
        if item.name != "__pycache__":
            (pkg / item.name).symlink_to(item)
    for name in LIBRARY:
        extra = {p.split("/", 1)[1]: src for p, src in planted.items() if p.split("/")[0] == name}
        if not extra:
            (pkg / name).symlink_to(ROOT / name, target_is_directory=True)
            continue
        (pkg / name).mkdir()
        for item in (ROOT / name).iterdir():
            if item.name != "__pycache__":
                (pkg / name / item.name).symlink_to(item)
        for rel, src in extra.items():
            (pkg / name / rel).write_text(src)
    return where


def lint(tree: Path) -> subprocess.CompletedProcess:
    """lint-imports with pyproject's contracts on a staged tree (it puts its cwd on sys.path)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"COLUMNS": "400"}
    return subprocess.run(
        [sys.executable, "-c", LINT, "--no-cache", "--no-logo", str(PYPROJECT)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_layering_contracts_are_kept(tmp_path) -> None:
    result = lint(stage(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_a_planted_violation_fails_naming_the_import(tmp_path) -> None:
    planted = {
        "models/_planted.py": "from xembody.train import TrainConfig\n",  # library -> CLI
        "sim/_planted.py": "import xembody.real.robot\n",  # sim -> real
    }
    result = lint(stage(tmp_path, planted))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "0 kept, 2 broken" in result.stdout
    assert "xembody.models._planted -> xembody.train (l.1)" in result.stdout
    assert "xembody.sim._planted -> xembody.real.robot (l.1)" in result.stdout


def test_every_cli_module_is_forbidden_to_the_library() -> None:
    """A new verb module in xembody/ must join the CLI list of the library's contract."""
    contracts = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
    (contract,) = [c for c in contracts if c["id"] == "library-without-cli"]
    cli = {f"xembody.{p.stem}" for p in (ROOT / "xembody").glob("*.py") if p.stem != "__init__"}
    assert set(contract["forbidden_modules"]) == cli
    assert set(contract["source_modules"]) == {f"xembody.{name}" for name in LIBRARY}


# --- docs/ARCHITECTURE.md cannot rot -------------------------------------------------------
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"
# a path in backticks: segments joined by "/", ending in "/" or in a file name with a suffix
PATH = re.compile(r"`((?:[\w.*-]+/)+(?:[\w*-]+\.[\w]+)?)`")


def test_every_path_the_architecture_page_names_exists() -> None:
    named = PATH.findall(ARCHITECTURE.read_text())
    assert len(named) > 50  # the page names its files; the pattern still finds them
    missing = [p for p in named if not (list(ROOT.glob(p)) if "*" in p else (ROOT / p).exists())]
    assert not missing, f"docs/ARCHITECTURE.md names paths that do not exist: {missing}"


def test_the_architecture_picture_is_the_contracts_layers() -> None:
    """The picture's layers, top to bottom, are the CLI and then the `layers` contract."""
    text = ARCHITECTURE.read_text()
    picture = text.split("## The picture", 1)[1].split("##", 1)[0]
    drawn = re.findall(r"^ {4}(\w+)/ ", picture, re.M)
    contracts = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
    (layers,) = [c["layers"] for c in contracts if c["id"] == "layers"]
    assert drawn == ["xembody", *layers], drawn


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        result = lint(stage(Path(tmp)))
    print(result.stdout + result.stderr, end="")
    sys.exit(result.returncode)
