# Every job event in BigQuery with no code: a BigQuery subscription on the job-events topic
# writes each message's JSON fields into the columns of the same name (use_table_schema; the
# topic has no Pub/Sub schema, so use_topic_schema is off) and the message's metadata
# (subscription, message id, publish time, attributes) into its own columns. The table's
# schema is infra/bigquery/job_events.json; tests/deploy/test_terraform.py checks it against
# the event payload (aiprod.domain.messages.JobEvent) both ways. Delivery is at least once:
# count distinct (job_id, type) or message_id (README, "Spend history in BigQuery").
locals {
  events_topic   = "job-events"
  events_dataset = replace("${var.prefix}events", "-", "_") # dataset ids take no '-'
}

resource "google_bigquery_dataset" "events" {
  dataset_id                 = local.events_dataset
  location                   = var.region
  description                = "aiprod job events, written by a Pub/Sub BigQuery subscription"
  delete_contents_on_destroy = false

  depends_on = [google_project_service.api]
}

resource "google_bigquery_table" "job_events" {
  dataset_id          = google_bigquery_dataset.events.dataset_id
  table_id            = "job_events"
  deletion_protection = true
  schema              = file("${path.module}/bigquery/job_events.json")
  clustering          = ["tenant", "type"]

  time_partitioning {
    type  = "DAY"
    field = "publish_time"
  }
}

# The Pub/Sub service agent writes the rows (and reads the table's metadata to map them).
resource "google_bigquery_dataset_iam_member" "pubsub_writes_events" {
  dataset_id = google_bigquery_dataset.events.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = local.pubsub_agent
}

resource "google_pubsub_subscription" "events_to_bigquery" {
  name  = "${var.prefix}${local.events_topic}--bigquery"
  topic = google_pubsub_topic.topic[local.events_topic].id

  # A row that cannot be written stays in the backlog (the subscription's backlog metric
  # shows it); a field the table lacks is dropped, so a new event field never stalls it.
  message_retention_duration = "604800s"

  bigquery_config {
    table               = "${google_bigquery_table.job_events.project}.${google_bigquery_table.job_events.dataset_id}.${google_bigquery_table.job_events.table_id}"
    use_topic_schema    = false
    use_table_schema    = true
    write_metadata      = true
    drop_unknown_fields = true
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [google_bigquery_dataset_iam_member.pubsub_writes_events]
}
