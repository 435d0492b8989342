"""The conda file and the venv requirements pin the same packages at the same versions; the venv is Python 3.11."""

import sys

import yaml

from analysis import paths


def test_environment_yml_matches_requirements():
    reqs = [line.strip() for line in (paths.ROOT / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    assert all("==" in r for r in reqs), "every requirement is pinned exactly"
    env = yaml.safe_load((paths.ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert sorted(pip) == sorted(reqs)
    assert "python=3.11" in env["dependencies"]


def test_running_python_is_311():
    assert sys.version_info[:2] == (3, 11)
