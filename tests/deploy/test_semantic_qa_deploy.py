"""Semantic output QA is deployable: its four settings flow from Terraform's variables through
the build's substitutions to every function, with the same defaults as the runtime's, and the
functions that rate outputs install the SDK that calls Gemini (the IAM side: test_iam.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aiprod import config, topology
from aiprod.domain.semantic_qa import PRICES, SemanticQa, semantic_settings
from aiprod_tools.packaging import deployed_name, groups_for
from support import terraform

ROOT = Path(__file__).resolve().parents[2]
# Terraform variable → build substitution → setting, and the runtime default it must match
SETTINGS = {
    "qa_semantic": ("_QA_SEMANTIC", "AIPROD_QA_SEMANTIC", SemanticQa().mode),
    "qa_semantic_model": ("_QA_SEMANTIC_MODEL", "AIPROD_QA_SEMANTIC_MODEL", SemanticQa().model),
    "qa_semantic_min": ("_QA_SEMANTIC_MIN", "AIPROD_QA_SEMANTIC_MIN", SemanticQa().threshold),
    "qa_policy": ("_QA_POLICY", "AIPROD_QA_POLICY", SemanticQa().policy),
}
# The functions that keep outputs, and so may rate them (semantic QA)
_KEEPERS = {"render_runway", "render_veo", "render_replicate", "reconcile", "control_job"}


@pytest.fixture(scope="module")
def tf() -> terraform.Config:
    return terraform.load()


@pytest.fixture(scope="module")
def build() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())


def test_the_defaults_everywhere_are_the_runtimes(tf, build):
    subs = build["substitutions"]
    for variable, (substitution, _setting, default) in SETTINGS.items():
        assert tf.variables[variable]["default"] == default, variable
        assert str(subs[substitution]) == str(default), substitution
    # AND the build's defaults, as a function reads them, are semantic QA off
    read = semantic_settings(*(str(subs[s]) for s, _, _ in SETTINGS.values()))
    assert read == SemanticQa() and not read.on


def test_the_model_variable_accepts_the_priced_models_alone(tf):
    condition = tf.variables["qa_semantic_model"]["validation"][0]["condition"]
    assert set(re.findall(r'\\?"(gemini[^"\\]*)\\?"', condition)) == set(PRICES)


def test_the_settings_flow_from_terraform_to_every_function(tf, build):
    handed = tf.outputs["build_substitutions"]["value"]
    deploys = {
        step["args"][2]: step
        for step in build["steps"]
        if step.get("entrypoint") == "gcloud" and step["args"][:2] == ["functions", "deploy"]
    }
    assert set(deploys) == {deployed_name("${_PREFIX}", s.name) for s in topology.FUNCTIONS}
    for variable, (substitution, setting, _default) in SETTINGS.items():
        # THEN the variable becomes the substitution
        assert f"{substitution}=${{var.{variable}}}" in handed
        # AND every function gets it: route_job holds a rating's estimate, the keepers rate
        assert setting in config.SETTINGS_BY_GROUP["gcp"]
        for name, step in deploys.items():
            env = next(a for a in step["args"] if a.startswith("--set-env-vars="))
            assert f"{setting}=${{{substitution}}}" in env.split("=", 1)[1].split(","), name


@pytest.mark.parametrize("spec", topology.FUNCTIONS, ids=lambda spec: spec.name)
def test_every_function_that_keeps_outputs_can_rate_them(spec):
    # A keeper installs google-genai (the storage group) and calls Vertex AI where Veo runs
    groups = groups_for(spec)
    if "storage" in groups:
        assert "AIPROD_VEO_LOCATION" in config.SETTINGS_BY_GROUP["storage"]
    assert ("storage" in groups) == (spec.name in _KEEPERS), spec.name


def test_the_readme_says_how_to_turn_it_on_and_that_the_prices_are_unconfirmed():
    text = (ROOT / "README.md").read_text()
    deploying = text.split("## Deploying", 1)[1].split("\n## ", 1)[0]
    assert 'qa_semantic = "gemini"' in deploying
    assert "roles/aiplatform.user" in deploying and "UNCONFIRMED" in deploying
