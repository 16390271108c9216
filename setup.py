"""Build hook: record memphase's own git commit in the wheel (memphase/_build_info.py), so that a
non-editable install can write it into every result's provenance. Everything else about the
package is declared in pyproject.toml."""

import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def _commit() -> str:
    """HEAD of this source tree when it is the top of its own git checkout, else ''."""
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=ROOT,
                             capture_output=True, text=True, timeout=10)
        if top.returncode != 0 or Path(top.stdout.strip()).resolve() != ROOT:
            return ""
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return ""


class BuildWithCommit(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the live checkout instead
        target = Path(self.build_lib) / "memphase" / "_build_info.py"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text('"""Written by setup.py when the wheel was built."""\n'
                          f"COMMIT = {_commit()!r}\n")


setup(cmdclass={"build_py": BuildWithCommit})
