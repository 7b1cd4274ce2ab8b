"""`pip install .` gives a working package: modules, package data, the console script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]


def test_pip_install_gives_a_working_package(tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    entry_points = next(target.glob("smart_imaging-*.dist-info/entry_points.txt")).read_text()
    assert "smart-imaging = smart_imaging.cli:main" in entry_points
    assert "[smart_imaging.commands]\ndemo = smart_imaging_demo.cli:add_commands" in entry_points
    assert (target / "smart_imaging_demo" / "ehr" / "app.py").is_file()
    assert (target / "smart_imaging_demo" / "samples" / "generate.py").is_file()
    assert (target / "smart_imaging" / "web").is_dir()
    assert any((target / "smart_imaging" / "web").rglob("*.js"))
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import smart_imaging.cli as c, sys; "
            "print(c.__file__); sys.exit(c.main(['check-config', sys.argv[1]]))",
            str(ROOT / "tests" / "configs"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert str(target) in result.stdout and "1 of 1 configs valid" in result.stdout
    commands = subprocess.run(
        [
            sys.executable,
            "-c",
            "import smart_imaging.cli as c, smart_imaging_demo as d, sys; "
            "print(d.__file__); sys.exit(c.main(['samples', '--help']))",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert commands.returncode == 0, commands.stdout + commands.stderr
    assert str(target) in commands.stdout and "usage: smart-imaging samples" in commands.stdout
    assert not commands.stderr


def test_the_server_package_never_imports_the_demo() -> None:
    """The demo builds on the server; the server names the demo nowhere, not even in a lazy import
    (its commands arrive through the ``smart_imaging.commands`` entry points)."""
    graph = grimp.build_graph("smart_imaging", "smart_imaging_demo")
    assert (
        graph.find_shortest_chains(importer="smart_imaging", imported="smart_imaging_demo", as_packages=True)
        == set()
    )
    assert graph.find_shortest_chains(
        importer="smart_imaging_demo", imported="smart_imaging", as_packages=True
    )
