"""Two builds of the same commit run the same tools, and a deploy always takes the traffic.

A floating image tag (``:latest``, ``:stable``, none) makes a build of an old commit run
whatever was published since; a deploy without ``--serve-all-traffic-latest-revision``
after a rollback (``update-traffic --to-revisions``) leaves the traffic on the old revision
and the new code idle.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BUILDS = ("cloudbuild.yaml", "cloudbuild.test.yaml")
FLOATING = {"latest", "stable", "alpine", "slim", "emulators"}
VERSIONED = re.compile(r"^\d+(\.\d+){1,2}(-[a-z_]+)?$")  # 528.0.0-stable, 1.9.8


def _steps(name: str) -> list[dict]:
    return yaml.safe_load((ROOT / name).read_text())["steps"]


@pytest.mark.parametrize("build", BUILDS)
def test_every_build_image_is_pinned_by_version(build):
    for step in _steps(build):
        image = step["name"]
        # THEN the image names a tag (or a digest), and the tag is a version
        if "@sha256:" in image:
            continue
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{step['id']}: {image} has no tag"
        assert tag not in FLOATING, f"{step['id']}: {image} floats"
        assert VERSIONED.match(tag), f"{step['id']}: {image} is not pinned by version"


def test_the_builds_use_one_google_cloud_cli_version():
    images = {s["name"] for build in BUILDS for s in _steps(build) if "cloud-cli" in s["name"]}
    assert len(images) == 1, images


def test_every_deploy_takes_all_the_traffic_even_after_a_rollback():
    deploys = [
        step
        for step in _steps("cloudbuild.yaml")
        if step.get("entrypoint") == "gcloud" and step["args"][:2] == ["functions", "deploy"]
    ]
    assert deploys
    for step in deploys:
        assert "--serve-all-traffic-latest-revision" in step["args"], step["id"]


def test_the_readme_says_a_deploy_rolls_forward():
    readme = (ROOT / "README.md").read_text()
    rolling_back = readme.split("### Rolling back", 1)[1].split("\n### ", 1)[0]
    assert "--serve-all-traffic-latest-revision" in rolling_back
