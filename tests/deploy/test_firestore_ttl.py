"""Firestore TTL: infra/ declares a TTL policy on ``expire_at`` for exactly the collections
whose repositories stamp it, and the retention is one setting from Terraform to the code.

A TTL policy is a single-field override (``google_firestore_field`` with ``ttl_config``);
the field must hold a Timestamp, which the contract suite checks of the Firestore adapter
(tests/contract/test_store_replace_and_expiry.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aiprod import config, topology
from aiprod.domain.retention import DAY_S, Retention
from aiprod.ports import EXPIRE_AT
from aiprod.repositories import dead_letters, jobs, ledger
from aiprod_tools.packaging import deployed_name
from support import terraform

EXPIRING = {jobs.COLLECTION, dead_letters.COLLECTION, ledger.POOLS, ledger.SHARDS}
SETTINGS = {  # Terraform variable -> build substitution -> setting
    "retention_days": ("_RETENTION_DAYS", "AIPROD_RETENTION_DAYS"),
    "ledger_retention_days": ("_LEDGER_RETENTION_DAYS", "AIPROD_LEDGER_RETENTION_DAYS"),
}
CLOUDBUILD = Path(__file__).resolve().parents[2] / "cloudbuild.yaml"


@pytest.fixture(scope="module")
def tf() -> terraform.Config:
    return terraform.load()


@pytest.fixture(scope="module")
def build() -> dict:
    import yaml

    return yaml.safe_load(CLOUDBUILD.read_text())


def test_a_ttl_policy_on_expire_at_for_every_expiring_collection(tf):
    # GIVEN the TTL field overrides
    field = tf.resource("google_firestore_field", "expire_at")

    # THEN one per collection that carries expire_at, on the project's database
    assert field["for_each"] == "${toset(local.expiring_collections)}"
    assert set(tf.locals["expiring_collections"]) == EXPIRING
    assert field["collection"] == "${each.key}"
    assert field["field"] == EXPIRE_AT
    assert field["database"] == "${google_firestore_database.main.name}"
    # AND it is a TTL policy, and the field is not indexed (it is never queried)
    assert field["ttl_config"] == [{}]
    assert field["index_config"] == [{}]


def test_retention_variables_default_to_the_settings_default(tf):
    defaults = Retention()
    assert tf.variables["retention_days"]["default"] * DAY_S == defaults.job_s
    assert tf.variables["ledger_retention_days"]["default"] * DAY_S == defaults.ledger_s
    for name in SETTINGS:
        assert tf.variables[name]["type"] == "number"
        assert f"var.{name} >= 1" in tf.variables[name]["validation"][0]["condition"]


def test_retention_flows_from_terraform_to_every_function(tf, build):
    # GIVEN the substitutions Terraform hands to the build, and the build's deploy steps
    handed = tf.outputs["build_substitutions"]["value"]
    deploys = {
        step["args"][2]: step
        for step in build["steps"]
        if step.get("entrypoint") == "gcloud" and step["args"][:2] == ["functions", "deploy"]
    }
    assert set(deploys) == {deployed_name("${_PREFIX}", s.name) for s in topology.FUNCTIONS}

    for variable, (substitution, setting) in SETTINGS.items():
        # THEN the variable becomes the substitution, whose default is the setting's
        assert f"{substitution}=${{var.{variable}}}" in handed
        default = float(build["substitutions"][substitution]) * DAY_S
        assert default == getattr(Retention(), "job_s" if "LEDGER" not in setting else "ledger_s")
        # AND every function gets it (all of them save jobs or ledger days)
        assert setting in config.SETTINGS_BY_GROUP["gcp"]
        for name, step in deploys.items():
            env = next(a for a in step["args"] if a.startswith("--set-env-vars="))
            assert f"{setting}=${{{substitution}}}" in env.split("=", 1)[1].split(","), name
