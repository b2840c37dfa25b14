"""infra/ against the topology, both ways: what ``terraform validate`` cannot check here.

No provider plugin can be downloaded on this machine, so the HCL is parsed (python-hcl2) and
its topics, push subscriptions (endpoint, OIDC, ack deadline, retry, dead letter), the
dead-letter inbox, the functions, their service accounts, secrets and scheduler jobs are
compared with ``aiprod.topology``; every reference must name something declared.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from aiprod import config, topology
from aiprod_tools.packaging import deployed_name
from support import terraform
from support.terraform import only_expression, render

PREFIXES = ("aiprod-", "aiprod-stage-")  # the default, and a long one the validation allows


@pytest.fixture(scope="module")
def tf() -> terraform.Config:
    return terraform.load()


def _push_specs() -> dict[str, topology.FunctionSpec]:
    return {spec.name: spec for spec in topology.pubsub_functions()}


def _default(tf, name: str):
    return tf.variables[name]["default"]


def test_required_variables_exist_with_the_settings_default_prefix(tf):
    assert {"project", "region", "prefix", "daily_budget_usd"} <= set(tf.variables)
    assert "default" not in tf.variables["project"]
    assert _default(tf, "prefix") == config.Settings().prefix
    pattern = re.search(r'regex\("([^"]+)"', tf.variables["prefix"]["validation"][0]["condition"])
    for prefix in PREFIXES:
        assert re.fullmatch(pattern.group(1), prefix), prefix


def test_topics_are_the_topology_topics_with_the_prefix(tf):
    # GIVEN the topic list and the resource that creates one topic per entry
    topics = tf.locals["topics"]
    resource = tf.resource("google_pubsub_topic", "topic")

    # THEN they are exactly the topology's, both ways, with the prefix in front
    assert len(topics) == len(set(topics))
    assert set(topics) == set(topology.all_topics())
    assert only_expression(resource["for_each"]) == "toset(local.topics)"
    for prefix in PREFIXES:
        names = {render(resource["name"], {"prefix": prefix}, each_key=t) for t in topics}
        assert names == {topology.qualified(prefix, t) for t in topology.all_topics()}


def test_push_subscriptions_feed_exactly_the_pubsub_functions(tf):
    # GIVEN the push subscription resource, one per entry of local.push_functions
    resource = tf.resource("google_pubsub_subscription", "push")
    assert only_expression(resource["for_each"]) == "local.push_functions"
    functions = tf.locals["push_functions"]

    # THEN the functions are the topology's Pub/Sub-triggered ones, both ways
    assert set(functions) == set(_push_specs())
    for prefix in PREFIXES:
        for name, spec in _push_specs().items():
            # AND each subscription has the topology's name and topic
            rendered = render(resource["name"], {"prefix": prefix}, name, functions[name])
            assert rendered == topology.qualified(prefix, spec.subscription)
            assert functions[name]["topic"] == spec.topic
    assert resource["topic"] == "${google_pubsub_topic.topic[each.value.topic].id}"


def test_push_goes_to_the_function_url_with_an_oidc_token(tf):
    resource = tf.resource("google_pubsub_subscription", "push")
    (push,) = resource["push_config"]
    assert push["push_endpoint"] == "${local.function_urls[each.key]}"
    (oidc,) = push["oidc_token"]
    assert oidc["service_account_email"] == "${google_service_account.push_invoker.email}"
    assert oidc["audience"] == push["push_endpoint"]
    # the URL is the function's deterministic run.app URL, under its deployed name
    assert ".run.app" in tf.locals["function_urls"]
    assert "${var.prefix}${f.service}" in tf.locals["function_names"]


def test_ack_deadline_covers_each_function_timeout(tf):
    resource = tf.resource("google_pubsub_subscription", "push")
    match = re.fullmatch(
        r"\$\{min\(600, each\.value\.timeout_s \+ (\d+)\)\}", resource["ack_deadline_seconds"]
    )
    assert match, resource["ack_deadline_seconds"]
    for name, spec in _push_specs().items():
        timeout = tf.locals["push_functions"][name]["timeout_s"]
        assert timeout == spec.timeout_s, name
        ack = min(600, timeout + int(match.group(1)))
        assert spec.timeout_s <= ack <= 600, f"{name}: ack {ack} s vs timeout {spec.timeout_s} s"


def test_retry_backoff_and_dead_letter_follow_the_topology(tf):
    resource = tf.resource("google_pubsub_subscription", "push")
    (retry,) = resource["retry_policy"]
    assert render(retry["minimum_backoff"], {}, locals_=tf.locals) == f"{topology.MIN_BACKOFF_S}s"
    assert render(retry["maximum_backoff"], {}, locals_=tf.locals) == f"{topology.MAX_BACKOFF_S}s"
    (dead,) = resource["dead_letter_policy"]
    assert dead["dead_letter_topic"] == "${google_pubsub_topic.topic[local.dead_letter_topic].id}"
    assert tf.locals["dead_letter_topic"] == topology.DEAD_LETTER
    assert only_expression(dead["max_delivery_attempts"]) == "each.value.max_delivery_attempts"
    assert tf.locals["max_delivery_attempts"] == topology.MAX_DELIVERY_ATTEMPTS
    for name, spec in _push_specs().items():
        attempts = tf.locals["push_functions"][name]["max_delivery_attempts"]
        assert render(attempts, {}, locals_=tf.locals) == str(spec.max_delivery_attempts), name


def test_a_render_push_refused_at_capacity_waits_rather_than_dead_letters():
    """Cloud Run answers 429 when every instance is busy, and Pub/Sub counts that push as a
    delivery: a render subscription retries for hours (backoff doubling from the minimum to
    the maximum) before it could dead-letter a task for capacity."""
    for name, spec in _push_specs().items():
        if not name.startswith("render_"):
            continue
        waits = [
            min(topology.MAX_BACKOFF_S, topology.MIN_BACKOFF_S * 2**i)
            for i in range(spec.max_delivery_attempts - 1)
        ]
        assert sum(waits) >= 12 * 3600, (name, sum(waits))


def test_the_dead_letter_topic_has_its_own_subscription(tf):
    # GIVEN the pull subscriptions deployed
    resource = tf.resource("google_pubsub_subscription", "pull")
    assert only_expression(resource["for_each"]) == "local.pull_subscriptions"

    # THEN they are the topology's pull subscriptions on the dead-letter topic (the events
    # tap is for local tools only: users create their own filtered subscriptions)
    wanted = {n: t for n, t in topology.PULL_SUBSCRIPTIONS.items() if t == topology.DEAD_LETTER}
    assert wanted and tf.locals["pull_subscriptions"] == wanted
    for name in wanted:
        assert render(resource["name"], {"prefix": "aiprod-"}, name) == f"aiprod-{name}"


def test_the_pubsub_agent_may_dead_letter(tf):
    publisher = tf.resource("google_pubsub_topic_iam_member", "dead_letter_publisher")
    assert publisher["topic"] == "${google_pubsub_topic.topic[local.dead_letter_topic].name}"
    assert publisher["role"] == "roles/pubsub.publisher"
    assert only_expression(publisher["member"]) == "local.pubsub_agent"
    subscriber = tf.resource("google_pubsub_subscription_iam_member", "dead_letter_source")
    assert only_expression(subscriber["for_each"]) == "google_pubsub_subscription.push"
    assert subscriber["role"] == "roles/pubsub.subscriber"
    assert only_expression(subscriber["member"]) == "local.pubsub_agent"
    assert "gcp-sa-pubsub.iam.gserviceaccount.com" in tf.locals["pubsub_agent"]


def test_functions_are_the_topology_functions_both_ways(tf):
    assert tf.locals["functions"] == "${merge(local.push_functions, local.scheduled_functions)}"
    functions = {**tf.locals["push_functions"], **tf.locals["scheduled_functions"]}
    assert set(functions) == {spec.name for spec in topology.FUNCTIONS}
    for name, f in functions.items():
        spec = topology.function(name)
        assert deployed_name("", name) == f["service"]
        assert f["timeout_s"] == spec.timeout_s
        assert f["topic"] == spec.topic
        assert f["schedule"] == spec.schedule
        assert set(f["publishes"]) <= set(topology.all_topics()), name


def test_each_function_has_its_own_service_account(tf):
    resource = tf.resource("google_service_account", "function")
    assert only_expression(resource["for_each"]) == "local.functions"
    functions = {**tf.locals["push_functions"], **tf.locals["scheduled_functions"]}
    for prefix in PREFIXES:
        ids = {
            render(resource["account_id"], {"prefix": prefix}, n, f) for n, f in functions.items()
        }
        assert ids == {deployed_name(prefix, spec.name) for spec in topology.FUNCTIONS}
        assert all(6 <= len(i) <= 30 for i in ids), ids


def test_each_render_function_reads_only_its_own_provider_key(tf):
    secrets = tf.locals["provider_secrets"]
    assert set(secrets) <= set(topology.BACKENDS)
    env_names = {"runway": config.RUNWAY_KEY_ENV, "replicate": config.REPLICATE_KEY_ENV}
    assert {b: s["env"] for b, s in secrets.items()} == env_names
    functions = {**tf.locals["push_functions"], **tf.locals["scheduled_functions"]}
    for name, f in functions.items():
        own = {b for b in topology.function(name).extras if b in secrets}
        assert set(f["secrets"]) == own, name
    assert "roles/aiplatform.user" in functions["render_veo"]["roles"]


def test_control_job_publishes_and_reaches_what_a_cancel_needs(tf):
    # GIVEN the control function (a cancel closes the job's attempt and announces the job)
    control = tf.locals["push_functions"]["control_job"]

    # THEN it is fed by job-control, may publish a render task (a stopped task is handed to
    # a render function to watch its end), an outcome, a job event or a dead letter, reads
    # the keys of the providers it can cancel on, and, since it looks at a task it cannot
    # stop (Veo's) and keeps a finished render, has Vertex AI user and the output bucket
    assert control["topic"] == topology.JOB_CONTROL == tf.locals["job_control_topic"]
    assert set(control["publishes"]) == {
        *map(topology.render_topic, topology.BACKENDS),
        topology.RENDER_OUTCOMES,
        topology.JOB_EVENTS,
        topology.DEAD_LETTER,
    }
    assert set(control["secrets"]) == {"runway", "replicate"}
    assert (control["bucket"], control["roles"]) == (True, ["roles/aiplatform.user"])
    assert control["timeout_s"] == topology.function("control_job").timeout_s == 300


def test_only_the_listed_control_publishers_may_publish_control_messages(tf):
    # GIVEN the variable of principals allowed to send control messages without the CLI
    assert tf.variables["control_publishers"]["default"] == []

    # THEN each is granted publisher on the job-control topic alone
    binding = tf.resource("google_pubsub_topic_iam_member", "control_publisher")
    assert only_expression(binding["for_each"]) == "toset(var.control_publishers)"
    assert binding["topic"] == "${google_pubsub_topic.topic[local.job_control_topic].name}"
    assert binding["role"] == "roles/pubsub.publisher"
    assert only_expression(binding["member"]) == "each.value"


def test_scheduled_functions_get_a_scheduler_job_with_oidc(tf):
    assert set(tf.locals["scheduled_functions"]) == {s.name for s in topology.scheduled_functions()}
    job = tf.resource("google_cloud_scheduler_job", "function")
    assert only_expression(job["for_each"]) == "local.scheduled_functions"
    assert only_expression(job["schedule"]) == "each.value.schedule"
    (target,) = job["http_target"]
    assert target["uri"] == "${local.function_urls[each.key]}"
    (oidc,) = target["oidc_token"]
    assert oidc["service_account_email"] == "${google_service_account.scheduler_invoker.email}"


def test_firestore_bucket_and_outputs(tf):
    tf.resource("google_firestore_database", "main")
    bucket = tf.resource("google_storage_bucket", "outputs")
    assert any(rule["action"][0]["type"] == "Delete" for rule in bucket["lifecycle_rule"])
    assert bucket["public_access_prevention"] == "enforced"
    assert {"topics", "jobs_topic", "build_substitutions"} <= set(tf.outputs)


def test_every_reference_names_something_declared(tf):
    text = "\n".join(tf.expressions())
    for name in set(re.findall(r"\blocal\.([a-z_]+)", text)):
        assert name in tf.locals, f"local.{name} is not declared"
    for name in set(re.findall(r"\bvar\.([a-z_]+)", text)):
        assert name in tf.variables, f"var.{name} is not declared"
    for kind, name in set(re.findall(r"(?<![.\w])(google_[a-z0-9_]+)\.([a-z_]+)", text)):
        assert (kind, name) in tf.resources, f"{kind}.{name} is not declared"
    for kind, name in set(re.findall(r"\bdata\.([a-z0-9_]+)\.([a-z_]+)", text)):
        assert (kind, name) in tf.data, f"data.{kind}.{name} is not declared"


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
def test_terraform_fmt_check_passes():
    done = subprocess.run(
        ["terraform", "fmt", "-check", "-diff", "-recursive", str(terraform.INFRA)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_only_the_image_reading_render_functions_read_only_the_listed_image_buckets(tf):
    # GIVEN the buckets gs:// input images may come from (none by default: no gs:// images)
    assert tf.variables["image_buckets"]["default"] == []
    assert "var.image_buckets" in tf.variables["image_buckets"]["validation"][0]["condition"]

    # THEN each listed bucket is granted read-only, bucket by bucket (never project-wide),
    # to the render function whose backend reads an image by reference (Veo) alone
    grant = tf.resource("google_storage_bucket_iam_member", "render_reads_images")
    assert only_expression(grant["for_each"]) == "local.image_bucket_grants"
    assert grant["bucket"] == "${each.value.bucket}"
    assert grant["role"] == "roles/storage.objectViewer"
    account = "${google_service_account.function[each.value.function].email}"
    assert grant["member"] == f"serviceAccount:{account}"
    assert tf.locals["image_reading_functions"] == ["render_veo"]
    grants = tf.locals["image_bucket_grants"]
    assert "setproduct(var.image_buckets, local.image_reading_functions)" in grants
    assert not any(
        r.get("role") == "roles/storage.objectViewer"
        for (kind, _), r in tf.resources.items()
        if kind == "google_project_iam_member"
    )

    # AND the deploy passes the same list to the functions (AIPROD_IMAGE_BUCKETS)
    subs = tf.outputs["build_substitutions"]["value"]
    assert '"_IMAGE_BUCKETS=${join(";", var.image_buckets)}"' in subs
    assert "AIPROD_IMAGE_BUCKETS" in config.SETTINGS_BY_GROUP["gcp"]
