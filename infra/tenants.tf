# Tenants (issue 13; README "Tenants"). Each configured tenant publishes its jobs on its own
# topic, "<prefix>jobs--<tenant>", where only its publishers may publish. One push
# subscription per tenant topic, named "<prefix>jobs--<tenant>--route_job", feeds route_job:
# the router reads the tenant back from that name (Pub/Sub writes it in every push; a
# publisher cannot), so a message can never charge a tenant whose topic it did not come
# through. Names here match shared/aiprod/topology.py (tenant_topic, tenant_subscription);
# tests/deploy/test_terraform_tenants.py checks them.
#
# Each tenant also sends control messages (job cancel) on its own topic,
# "<prefix>job-control--<tenant>", pushed by "<prefix>job-control--<tenant>--control_job" to
# control_job, which reads the tenant back from that name (topology.tenant_control_topic,
# tenant_control_subscription) and cancels only that tenant's jobs. The shared "job-control"
# topic stays for operators and var.control_publishers (trusted: any job).
#
# The shared "jobs" topic carries untenanted jobs (global budget only). Clients get publish
# on it only when shared_jobs_topic_open and listed in shared_jobs_publishers; otherwise only
# operators (project-level roles such as roles/pubsub.editor or owner) can publish there.

locals {
  tenant_publishers = merge([
    for name, t in var.tenants : {
      for member in t.publishers : "${name}/${member}" => { tenant = name, member = member }
    }
  ]...)
  shared_jobs_publishers = var.shared_jobs_topic_open ? toset(var.shared_jobs_publishers) : toset([])
}

resource "google_pubsub_topic" "tenant_jobs" {
  for_each = var.tenants
  name     = "${var.prefix}jobs--${each.key}"

  depends_on = [google_project_service.api]
}

# Same delivery rules as the shared jobs topic's subscription (pubsub.tf, "push").
resource "google_pubsub_subscription" "tenant_jobs" {
  for_each = var.tenants
  name     = "${var.prefix}jobs--${each.key}--route_job"
  topic    = google_pubsub_topic.tenant_jobs[each.key].id

  ack_deadline_seconds       = min(600, local.push_functions.route_job.timeout_s + 30)
  message_retention_duration = "604800s"

  push_config {
    push_endpoint = local.function_urls["route_job"]

    oidc_token {
      service_account_email = google_service_account.push_invoker.email
      audience              = local.function_urls["route_job"]
    }
  }

  retry_policy {
    minimum_backoff = "${local.min_backoff_s}s"
    maximum_backoff = "${local.max_backoff_s}s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.topic[local.dead_letter_topic].id
    max_delivery_attempts = local.push_functions.route_job.max_delivery_attempts
  }

  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_subscription_iam_member" "tenant_dead_letter_source" {
  for_each     = google_pubsub_subscription.tenant_jobs
  subscription = each.value.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# A tenant's principals publish on their own topic, and nowhere else.
resource "google_pubsub_topic_iam_member" "tenant_publisher" {
  for_each = local.tenant_publishers
  topic    = google_pubsub_topic.tenant_jobs[each.value.tenant].name
  role     = "roles/pubsub.publisher"
  member   = each.value.member
}

resource "google_pubsub_topic" "tenant_control" {
  for_each = var.tenants
  name     = "${var.prefix}job-control--${each.key}"

  depends_on = [google_project_service.api]
}

# Same delivery rules as the shared job-control topic's subscription (pubsub.tf, "push").
resource "google_pubsub_subscription" "tenant_control" {
  for_each = var.tenants
  name     = "${var.prefix}job-control--${each.key}--control_job"
  topic    = google_pubsub_topic.tenant_control[each.key].id

  ack_deadline_seconds       = min(600, local.push_functions.control_job.timeout_s + 30)
  message_retention_duration = "604800s"

  push_config {
    push_endpoint = local.function_urls["control_job"]

    oidc_token {
      service_account_email = google_service_account.push_invoker.email
      audience              = local.function_urls["control_job"]
    }
  }

  retry_policy {
    minimum_backoff = "${local.min_backoff_s}s"
    maximum_backoff = "${local.max_backoff_s}s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.topic[local.dead_letter_topic].id
    max_delivery_attempts = local.push_functions.control_job.max_delivery_attempts
  }

  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_subscription_iam_member" "tenant_control_dead_letter_source" {
  for_each     = google_pubsub_subscription.tenant_control
  subscription = each.value.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# A tenant's principals send control messages on their own control topic only.
resource "google_pubsub_topic_iam_member" "tenant_control_publisher" {
  for_each = local.tenant_publishers
  topic    = google_pubsub_topic.tenant_control[each.value.tenant].name
  role     = "roles/pubsub.publisher"
  member   = each.value.member
}

resource "google_pubsub_topic_iam_member" "shared_jobs_publisher" {
  for_each = local.shared_jobs_publishers
  topic    = google_pubsub_topic.topic["jobs"].name
  role     = "roles/pubsub.publisher"
  member   = each.value
}

# The registry entries (collection "tenants", repositories/tenants.py) and each tenant's daily
# budget as the ledger's run-time limit (collection "budget_limits", repositories/ledger.py).
# The budget is written once: later changes are `aiprod tenant set-budget` (no apply), so
# Terraform ignores them rather than resetting the limit on every apply.
resource "google_firestore_document" "tenant" {
  for_each    = var.register_tenants ? var.tenants : {}
  project     = var.project
  database    = google_firestore_database.main.name
  collection  = "tenants"
  document_id = each.key
  fields = jsonencode({
    name       = { stringValue = each.key }
    publishers = { arrayValue = { values = [for m in each.value.publishers : { stringValue = m }] } }
  })
}

resource "google_firestore_document" "tenant_budget" {
  for_each    = var.register_tenants ? var.tenants : {}
  project     = var.project
  database    = google_firestore_database.main.name
  collection  = "budget_limits"
  document_id = "tenant:${each.key}"
  fields = jsonencode({
    scope        = { stringValue = "tenant:${each.key}" }
    limit_micros = { integerValue = tostring(floor(each.value.daily_budget_usd * 1000000 + 0.5)) }
    updated_at   = { stringValue = "terraform" }
  })

  lifecycle {
    ignore_changes = [fields]
  }
}
