"""cloudbuild.yaml: packaging first (the tests ran in cloudbuild.test.yaml), then one parallel
deploy step per function of the topology with the settings the deployment relies on, invokers
granted, monitoring last."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiprod import config, topology
from aiprod_tools.packaging import deployed_name, groups_for
from support import terraform

CLOUDBUILD = Path(__file__).resolve().parents[2] / "cloudbuild.yaml"
SHARED = CLOUDBUILD.parent / "shared"
PACKAGE_DIR = "build/functions"
PREFIX, PROJECT, REGION = "${_PREFIX}", "$PROJECT_ID", "${_REGION}"
SECRET_ENV = {"runway": config.RUNWAY_KEY_ENV, "replicate": config.REPLICATE_KEY_ENV}


@pytest.fixture(scope="module")
def build() -> dict:
    import yaml

    return yaml.safe_load(CLOUDBUILD.read_text())


def _steps(build, *command: str) -> dict[str, dict]:
    """Steps running ``gcloud <command...>``, by the function they name (--entry-point or
    the function argument)."""
    found = {}
    for step in build["steps"]:
        args = step.get("args", [])
        if step.get("entrypoint") == "gcloud" and tuple(args[: len(command)]) == command:
            found[args[len(command)]] = step
    return found


def _flags(step: dict) -> dict[str, str | bool]:
    flags: dict[str, str | bool] = {}
    for arg in step["args"]:
        if arg.startswith("--"):
            name, _, value = arg[2:].partition("=")
            assert name not in flags, f"--{name} given twice"
            flags[name] = value if "=" in arg else True
    return flags


def _pairs(text: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in text.split(","))


def test_substitutions_carry_project_region_and_prefix(build):
    subs = build["substitutions"]
    assert {"_REGION", "_PREFIX"} <= set(subs)
    assert subs["_PREFIX"] == config.Settings().prefix
    assert build["options"]["logging"] == "CLOUD_LOGGING_ONLY"


def test_tests_run_in_their_own_build_then_the_packaging_comes_first(build):
    # The test build (cloudbuild.test.yaml, tests/deploy/test_iam.py) runs as the tester.
    import yaml

    (test,) = yaml.safe_load(CLOUDBUILD.with_name("cloudbuild.test.yaml").read_text())["steps"]
    script = " ".join(test["args"])
    assert "CI=true make test" in script
    assert "pubsub-emulator" in script and "firestore-emulator" in script and "jre" in script
    package = build["steps"][0]
    assert package["id"] == "package" and "waitFor" not in package
    assert f"make package PACKAGE_DIR={PACKAGE_DIR}" in " ".join(package["args"])


def test_every_function_has_exactly_one_deploy_step(build):
    deploys = _steps(build, "functions", "deploy")
    wanted = {deployed_name(PREFIX, spec.name): spec for spec in topology.FUNCTIONS}
    assert set(deploys) == set(wanted)


@pytest.mark.parametrize("spec", topology.FUNCTIONS, ids=lambda spec: spec.name)
def test_deploy_step_settings(build, spec):
    # GIVEN the function's deploy step
    name = deployed_name(PREFIX, spec.name)
    step = _steps(build, "functions", "deploy")[name]
    flags = _flags(step)

    # THEN it deploys the packaged folder, in parallel with the others, as gen2 python312
    assert step["waitFor"] == ["package"]
    assert flags["gen2"] is True
    assert flags["runtime"] == "python312"
    assert flags["source"] == f"{PACKAGE_DIR}/{spec.name}"
    assert flags["entry-point"] == spec.name
    assert flags["project"] == PROJECT and flags["region"] == REGION
    # AND HTTP-triggered (Pub/Sub comes through the Terraform push subscription), private
    assert flags["trigger-http"] is True
    assert flags["no-allow-unauthenticated"] is True
    assert flags["ingress-settings"] == "internal-only"
    assert not {"trigger-topic", "trigger-event-filters", "allow-unauthenticated"} & set(flags)
    # AND as its own service account, with the topology's limits
    assert flags["service-account"] == f"{name}@{PROJECT}.iam.gserviceaccount.com"
    builder = f"{PREFIX}builder@{PROJECT}.iam.gserviceaccount.com"
    assert flags["build-service-account"] == f"projects/{PROJECT}/serviceAccounts/{builder}"
    assert flags["memory"] == spec.memory
    assert flags["timeout"] == f"{spec.timeout_s}s"
    assert flags["concurrency"] == str(spec.concurrency)
    assert flags["max-instances"] == str(spec.max_instances)
    if spec.concurrency > 1:
        assert float(flags["cpu"]) >= 1, "gen2 needs a whole CPU for concurrency > 1"
    # AND the settings the code reads, with the project set explicitly
    env = _pairs(flags["set-env-vars"])
    assert env["GOOGLE_CLOUD_PROJECT"] == PROJECT
    assert env["AIPROD_PREFIX"] == PREFIX
    # AND the budget day's time zone: every function must agree on when a day starts
    assert env["AIPROD_BUDGET_TIMEZONE"] == "${_BUDGET_TIMEZONE}"
    assert "_BUDGET_TIMEZONE" in build["substitutions"]


@pytest.mark.parametrize("spec", topology.FUNCTIONS, ids=lambda spec: spec.name)
def test_every_function_gets_every_setting_its_installed_code_reads(build, spec):
    # GIVEN what the function installs (its optional-dependency groups)
    groups = groups_for(spec)
    flags = _flags(_steps(build, "functions", "deploy")[deployed_name(PREFIX, spec.name)])

    # THEN its deploy sets every setting and secret those groups' code paths read: the
    # reconciler polls live tasks through the output keeper, so it needs the bucket and the
    # Veo location as much as the render functions do
    needed = {name for g in groups for name in config.SETTINGS_BY_GROUP.get(g, ())}
    secrets = {name for g in groups for name in config.SECRETS_BY_GROUP.get(g, ())}
    assert needed - set(_pairs(flags["set-env-vars"])) == set()
    given = _pairs(flags["set-secrets"]) if "set-secrets" in flags else {}
    assert secrets - set(given) == set()


def test_the_settings_table_names_what_the_code_reads():
    # Each required setting is a variable the runtime actually reads (no stale names)
    source = "\n".join(p.read_text() for p in (SHARED / "aiprod").rglob("*.py"))
    for name in {n for names in config.SETTINGS_BY_GROUP.values() for n in names}:
        assert f'"{name}"' in source, name


@pytest.mark.parametrize("spec", topology.FUNCTIONS, ids=lambda spec: spec.name)
def test_secrets_come_from_secret_manager_for_the_functions_own_provider(build, spec):
    tf = terraform.load()
    flags = _flags(_steps(build, "functions", "deploy")[deployed_name(PREFIX, spec.name)])
    backends = [b for b in spec.extras if b in SECRET_ENV]
    if not backends:
        assert "set-secrets" not in flags
        return
    wanted = {
        SECRET_ENV[b]: f"{PREFIX}{tf.locals['provider_secrets'][b]['secret']}:latest"
        for b in backends
    }
    assert _pairs(flags["set-secrets"]) == wanted


@pytest.mark.parametrize("spec", topology.FUNCTIONS, ids=lambda spec: spec.name)
def test_each_function_admits_only_its_caller(build, spec):
    name = deployed_name(PREFIX, spec.name)
    step = _steps(build, "functions", "add-invoker-policy-binding")[name]
    assert step["waitFor"] == [f"deploy-{spec.name}"]
    caller = "push-invoker" if spec.trigger == "pubsub" else "scheduler"
    assert _flags(step)["member"] == (
        f"serviceAccount:{PREFIX}{caller}@{PROJECT}.iam.gserviceaccount.com"
    )


def test_service_accounts_are_the_ones_terraform_creates(build):
    tf = terraform.load()
    functions = {**tf.locals["push_functions"], **tf.locals["scheduled_functions"]}
    for name, f in functions.items():
        flags = _flags(_steps(build, "functions", "deploy")[deployed_name(PREFIX, name)])
        account = tf.resource("google_service_account", "function")["account_id"]
        rendered = terraform.render(account, {"prefix": PREFIX}, name, f)
        assert flags["service-account"] == f"{rendered}@{PROJECT}.iam.gserviceaccount.com"
    accounts = {
        resource: terraform.render(
            tf.resource("google_service_account", resource)["account_id"], {"prefix": PREFIX}
        )
        for resource in ("push_invoker", "scheduler_invoker", "builder")
    }
    invokers = _steps(build, "functions", "add-invoker-policy-binding")
    for spec in topology.FUNCTIONS:
        caller = accounts["push_invoker" if spec.trigger == "pubsub" else "scheduler_invoker"]
        member = _flags(invokers[deployed_name(PREFIX, spec.name)])["member"]
        assert member == f"serviceAccount:{caller}@{PROJECT}.iam.gserviceaccount.com"
        deploy = _flags(_steps(build, "functions", "deploy")[deployed_name(PREFIX, spec.name)])
        assert deploy["build-service-account"].endswith(
            f"/{accounts['builder']}@{PROJECT}.iam.gserviceaccount.com"
        )


def test_monitoring_is_applied_last(build):
    last = build["steps"][-1]
    assert last["id"] == "monitoring"
    invokers = {f"invoker-{spec.name}" for spec in topology.FUNCTIONS}
    assert set(last["waitFor"]) == invokers
