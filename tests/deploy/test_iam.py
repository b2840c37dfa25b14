"""Who may do what in a deploy (infra/iam.tf, infra/build.tf), checked on the parsed HCL.

A grant that is too broad works as well as a narrow one until someone abuses it, so nothing
else would catch a widening: the build identities can fetch their source, the test build
cannot deploy, the builder cannot read the Terraform state, nobody holds project-wide Cloud
Run admin, and Firestore is granted on the aiprod database only.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from aiprod.domain.semantic_qa import PRICES
from support import terraform
from support.terraform import only_expression, render

ROOT = Path(__file__).resolve().parents[2]
VARS = {"project": "my-project", "region": "europe-west1", "prefix": "aiprod-"}
READS_STORAGE = re.compile(r"roles/(storage\.|cloudbuild\.builds\.builder|editor|owner|viewer)")


@pytest.fixture(scope="module")
def tf() -> terraform.Config:
    return terraform.load()


def _grants_to(tf, account: str) -> dict[tuple[str, str], dict]:
    """Every IAM resource whose member is the named service account."""
    email = f"${{google_service_account.{account}.email}}"
    return {key: body for key, body in tf.resources.items() if email in str(body.get("member"))}


def _condition(body: dict) -> str:
    conditions = body.get("condition") or []
    return conditions[0]["expression"] if conditions else ""


def test_each_build_identity_may_fetch_the_source_gcloud_builds_submit_uploads(tf):
    # GIVEN the bucket `gcloud builds submit` stages the source in: <project>_cloudbuild
    assert render(tf.locals["build_source_bucket"], VARS) == "my-project_cloudbuild"

    # THEN the accounts that run cloudbuild.test.yaml and cloudbuild.yaml may read it
    grant = tf.resource("google_storage_bucket_iam_member", "build_reads_source")
    assert grant["bucket"] == "${local.build_source_bucket}"
    assert grant["role"] == "roles/storage.objectViewer"
    assert only_expression(grant["member"].removeprefix("serviceAccount:")) == "each.value"
    assert grant["for_each"] == {
        "tester": "${google_service_account.tester.email}",
        "deployer": "${google_service_account.deployer.email}",
    }


def test_nobody_holds_project_wide_run_admin(tf):
    for (kind, name), body in tf.resources.items():
        if kind == "google_project_iam_member":
            assert not str(body["role"]).startswith("roles/run."), f"{name}: {body['role']}"


def test_the_deployer_sets_invokers_on_the_aiprod_services_alone(tf):
    # GIVEN the custom role the deployer edits the functions' Cloud Run policies with
    role = tf.resource("google_project_iam_custom_role", "invoker_granter")
    assert set(role["permissions"]) == {
        "run.services.get",
        "run.services.getIamPolicy",
        "run.services.setIamPolicy",
    }
    # THEN it holds the role only on the services named after the deployed functions
    grant = tf.resource("google_project_iam_member", "deployer_grants_invokers")
    assert grant["role"] == "${google_project_iam_custom_role.invoker_granter.id}"
    expression = _condition(grant)
    assert "for service in values(local.function_names)" in expression
    assert 'resource.name.endsWith(\\"/services/${service}\\")' in expression


def test_the_test_build_runs_as_an_identity_that_can_only_log_and_read_its_source(tf):
    # GIVEN the test build, apart from the deploy build
    test_build = yaml.safe_load((ROOT / "cloudbuild.test.yaml").read_text())
    deploy_build = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())
    assert any("CI=true make test" in " ".join(s["args"]) for s in test_build["steps"])
    assert not any("make test" in " ".join(s.get("args", [])) for s in deploy_build["steps"])
    assert "tester_service_account" in (ROOT / "cloudbuild.test.yaml").read_text()
    assert "tester_service_account" in tf.outputs

    # THEN the tester holds its log writer role and the source bucket, nothing else
    assert set(_grants_to(tf, "tester")) == {
        ("google_project_iam_member", "tester_writes_logs"),
    }
    assert tf.resource("google_project_iam_member", "tester_writes_logs")["role"] == (
        "roles/logging.logWriter"
    )
    # AND nobody may act as the tester (so a deploy step cannot borrow it, nor it a deployer)
    assert "google_service_account.tester.name" not in "\n".join(tf.expressions())


def test_the_builder_cannot_read_the_terraform_state(tf):
    # GIVEN every grant the function image builder holds
    grants = _grants_to(tf, "builder")
    assert grants, "the builder holds no grant"
    for kind, name in grants:
        # THEN none is on a bucket (the state bucket among them) ...
        assert kind == "google_project_iam_member", f"{kind}.{name}"
    roles = tf.locals["builder_grants"]
    assert "roles/cloudbuild.builds.builder" not in roles  # reads every bucket
    for role, expression in roles.items():
        # ... and a role that reads storage is conditioned on the Cloud Functions buckets
        if READS_STORAGE.match(role):
            buckets = re.findall(r"projects/_/buckets/([^\\\"]+)", expression)
            assert buckets, f"{role} is unconditioned"
            assert all(b.startswith("gcf-v2-") for b in buckets), buckets
    body = tf.resource("google_project_iam_member", "builder")
    (dynamic,) = body["dynamic"]
    assert dynamic["condition"]["content"][0]["expression"] == "${condition.value}"


def test_only_the_deployer_reads_the_state(tf):
    for (kind, _name), body in tf.resources.items():
        if kind.startswith("google_storage_bucket_iam") and "state_bucket" in str(body["bucket"]):
            assert body["member"] == "serviceAccount:${google_service_account.deployer.email}"


def test_functions_get_firestore_on_the_aiprod_database_only(tf):
    # GIVEN the project roles every function holds, and its own further roles
    functions = {**tf.locals["push_functions"], **tf.locals["scheduled_functions"]}
    broad = [*tf.locals["base_roles"], *(r for f in functions.values() for r in f["roles"])]

    # THEN no project-wide Firestore role is among them
    assert not [role for role in broad if role.startswith("roles/datastore.")], broad

    # AND each function's Firestore role is conditioned on the one database Terraform creates
    grant = tf.resource("google_project_iam_member", "function_firestore")
    assert only_expression(grant["for_each"]) == "local.functions"
    assert grant["role"] == "roles/datastore.user"
    assert _condition(grant) == 'resource.name == \\"${local.firestore_database}\\"'
    database = render(
        tf.locals["firestore_database"].replace("google_firestore_database.main.name", "var.db"),
        {**VARS, "db": "(default)"},
    )
    assert database == "projects/my-project/databases/(default)"
    assert tf.resource("google_firestore_database", "main")["name"] == "(default)"


def test_infra_readme_says_which_grants_remain_broad():
    text = (ROOT / "infra" / "README.md").read_text()
    section = text.split("## Least privilege", 1)[-1]
    assert "## Least privilege" in text
    for broad in ("roles/datastore.user", "roles/cloudfunctions.developer", "monitoring.editor"):
        assert broad in section, broad


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
@pytest.mark.parametrize("qa_semantic", ["", "gemini"])
def test_semantic_qa_grants_vertex_ai_to_the_functions_that_keep_outputs_only_when_on(
    tf, qa_semantic
):
    # GIVEN the project grants Terraform computes with semantic QA off, or on
    tf_vars = {"project": "my-project", "qa_semantic": qa_semantic}
    grants = terraform.evaluate("local.project_grants", tf_vars)
    on = terraform.evaluate("local.semantic_qa_on", tf_vars)
    vertex = {g["function"] for g in grants.values() if g["role"] == "roles/aiplatform.user"}

    # THEN the Veo pollers hold Vertex AI always; the Runway and Replicate render functions,
    # which rate outputs only when semantic QA is on, only then; route_job never
    always = {"render_veo", "reconcile", "control_job"}
    keepers = {name for name, f in tf.locals["push_functions"].items() if f["bucket"]}
    keepers |= {name for name, f in tf.locals["scheduled_functions"].items() if f["bucket"]}
    assert on == (qa_semantic == "gemini")
    assert vertex == (keepers if on else always)
    assert {"render_runway", "render_replicate"} <= keepers
    assert "route_job" not in vertex and "handle_outcome" not in vertex
    # AND each grant once (a function already on Vertex AI is not granted it twice)
    assert all(key == f"{g['function']}/{g['role']}" for key, g in grants.items())


def test_semantic_qa_lets_vertex_ai_read_the_output_bucket_only_when_on(tf):
    # Gemini reads a kept video by its gs:// URI; Vertex AI reads inputs as its service agent
    grant = tf.resource("google_storage_bucket_iam_member", "vertex_agent_reads_outputs")
    assert grant["count"] == "${local.semantic_qa_on ? 1 : 0}"
    assert grant["bucket"] == "${google_storage_bucket.outputs.name}"
    assert grant["role"] == "roles/storage.objectViewer"
    assert grant["member"] == "${local.aiplatform_agent}"
    agent = render(tf.locals["aiplatform_agent"], {}, locals_={"project_number": "123"})
    assert agent == "serviceAccount:service-123@gcp-sa-aiplatform.iam.gserviceaccount.com"
    assert tf.locals["semantic_qa_on"] == '${var.qa_semantic == "gemini"}'


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
def test_semantic_qa_variables_refuse_what_the_functions_would_refuse():
    tf_vars = {"project": "my-project"}
    for name, bad in [("qa_semantic", "gpt"), ("qa_semantic_min", "1.5"), ("qa_policy", "x")]:
        with pytest.raises(AssertionError, match=name):
            terraform.evaluate("var.qa_semantic", {**tf_vars, name: bad})
    for model in PRICES:  # every priced model is accepted, and only those
        assert terraform.evaluate("var.qa_semantic_model", {**tf_vars, "qa_semantic_model": model})
    with pytest.raises(AssertionError, match="qa_semantic_model"):
        terraform.evaluate("var.qa_semantic", {**tf_vars, "qa_semantic_model": "gemini-9"})
