"""`pip install .` gives a working package: modules, package data, the console script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
