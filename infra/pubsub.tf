resource "google_pubsub_topic" "topic" {
  for_each = toset(local.topics)
  name     = "${var.prefix}${each.key}"

  depends_on = [google_project_service.api]
}

# One push subscription per Pub/Sub-triggered function, to its HTTP endpoint, authenticated
# with an OIDC token of the push invoker (granted run.invoker on each function at deploy).
resource "google_pubsub_subscription" "push" {
  for_each = local.push_functions
  name     = "${var.prefix}${each.value.topic}--${each.key}"
  topic    = google_pubsub_topic.topic[each.value.topic].id

  # Pub/Sub waits this long for the function's answer before redelivering: at least the
  # function's timeout (600 s is the maximum, hence topology timeouts stay below it).
  ack_deadline_seconds       = min(600, each.value.timeout_s + 30)
  message_retention_duration = "604800s"

  push_config {
    push_endpoint = local.function_urls[each.key]

    oidc_token {
      service_account_email = google_service_account.push_invoker.email
      audience              = local.function_urls[each.key]
    }
  }

  retry_policy {
    minimum_backoff = "${local.min_backoff_s}s"
    maximum_backoff = "${local.max_backoff_s}s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.topic[local.dead_letter_topic].id
    max_delivery_attempts = each.value.max_delivery_attempts
  }

  expiration_policy {
    ttl = "" # never expires, however quiet the topic
  }
}

# The dead-letter topic's own subscription: `aiprod dlq list` pulls it.
resource "google_pubsub_subscription" "pull" {
  for_each = local.pull_subscriptions
  name     = "${var.prefix}${each.key}"
  topic    = google_pubsub_topic.topic[each.value].id

  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"

  expiration_policy {
    ttl = ""
  }
}

# The Pub/Sub service agent forwards undeliverable messages: it must publish to the
# dead-letter topic and acknowledge them on each source subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  topic  = google_pubsub_topic.topic[local.dead_letter_topic].name
  role   = "roles/pubsub.publisher"
  member = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_source" {
  for_each     = google_pubsub_subscription.push
  subscription = each.value.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# Each function publishes only to the topics it names in local.functions.
locals {
  publisher_grants = merge([
    for name, f in local.functions : {
      for topic in f.publishes : "${name}/${topic}" => { function = name, topic = topic }
    }
  ]...)
}

resource "google_pubsub_topic_iam_member" "function_publisher" {
  for_each = local.publisher_grants
  topic    = google_pubsub_topic.topic[each.value.topic].name
  role     = "roles/pubsub.publisher"
  member   = "serviceAccount:${google_service_account.function[each.value.function].email}"
}

# Clients that send control messages (job cancel) with their own identity, rather than
# through the CLI run by an operator: publish on the job-control topic, nothing else.
resource "google_pubsub_topic_iam_member" "control_publisher" {
  for_each = toset(var.control_publishers)
  topic    = google_pubsub_topic.topic[local.job_control_topic].name
  role     = "roles/pubsub.publisher"
  member   = each.value
}
