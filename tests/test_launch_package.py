"""`xembody launch` from a wheel: the parameter files ship as package data and are found
with importlib.resources, not through the source tree's launch/ folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from xembody.launch import CLASSES, LaunchConfig, class_params, node_commands

ROOT = Path(__file__).resolve().parents[1]


def test_packaged_parameter_files_are_the_ones_launch_config_links_to(tmp_path):
    for body_class, name in CLASSES.items():
        params = class_params(body_class, tmp_path)
        assert params.name == f"{name}.yaml" and params.parent.name == "config"
        assert params.read_text() == (ROOT / "launch" / "config" / f"{name}.yaml").read_text()
    policy = tmp_path / "policy"
    policy.mkdir()
    (policy / "policy.json").write_text("{}")
    cmds = node_commands(LaunchConfig(body_class="wheeled", policy=str(policy)), tmp_path / "o")
    assert cmds["policy"][-3] == str(class_params("mobile_base", tmp_path))


# run from outside any checkout, with the unzipped wheel first on sys.path
PROBE = """
import json, sys
from pathlib import Path
import xembody.launch as L
cfg = L.LaunchConfig(body_class="arm", policy=sys.argv[1])
cmds = L.node_commands(cfg, Path("overrides.yaml"))
try:
    L.node_commands(L.LaunchConfig(body_class="arm"), Path("o.yaml"))
    err = ""
except FileNotFoundError as e:
    err = str(e)
print(json.dumps({"module": L.__file__, "params": cmds["policy"][-3], "error": err,
                  "files": {c: str(L.class_params(c, Path("."))) for c in L.CLASSES}}))
"""


def test_a_built_wheel_holds_the_parameter_files_and_launch_finds_them(tmp_path):
    src = tmp_path / "src"  # a copy, so the build leaves no build/ or egg-info in the tree
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for folder in ("xembody", "sim", "models", "real"):
        shutil.copytree(ROOT / folder, src / folder, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(tmp_path / "dist")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = (tmp_path / "dist").glob("xembody-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in set(CLASSES.values()):
        assert f"xembody/real/ros/config/{name}.yaml" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    policy = tmp_path / "policy"
    policy.mkdir()
    (policy / "policy.json").write_text("{}")
    work = tmp_path / "work"
    work.mkdir()
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    run = subprocess.run(
        [sys.executable, "-c", PROBE, str(policy)], capture_output=True, text=True,
        timeout=60, cwd=work, env={**os.environ, "PYTHONPATH": path},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    assert Path(got["module"]).is_relative_to(site)  # the wheel's xembody, not the checkout's
    assert Path(got["params"]) == site / "xembody" / "real" / "ros" / "config" / "arm.yaml"
    assert all(Path(f).is_relative_to(site) and Path(f).is_file() for f in got["files"].values())
    # the packaged files name the source tree's test policies, which a wheel lacks
    assert "pass --policy DIR" in got["error"]
