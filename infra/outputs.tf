output "topics" {
  description = "Topic names (with the prefix), by their topology name."
  value       = { for name, topic in google_pubsub_topic.topic : name => topic.name }
}

output "jobs_topic" {
  description = "Publish JobRequests here."
  value       = google_pubsub_topic.topic["jobs"].name
}

output "job_control_topic" {
  description = "Publish control messages (job cancel) here; var.control_publishers may."
  value       = google_pubsub_topic.topic[local.job_control_topic].name
}

output "subscriptions" {
  description = "Push subscriptions by function, and the dead-letter inbox."
  value = merge(
    { for name, sub in google_pubsub_subscription.push : name => sub.name },
    { for name, sub in google_pubsub_subscription.pull : name => sub.name },
  )
}

output "function_urls" {
  description = "The run.app URL each function will have once deployed."
  value       = local.function_urls
}

output "output_bucket" {
  value = google_storage_bucket.outputs.name
}

output "tester_service_account" {
  description = "Pass to gcloud builds submit --config cloudbuild.test.yaml --service-account."
  value       = google_service_account.tester.id
}

output "deployer_service_account" {
  description = "Pass to gcloud builds submit --service-account."
  value       = google_service_account.deployer.id
}

output "build_substitutions" {
  description = "Pass to gcloud builds submit --substitutions (README, Deploying)."
  value = join(",", [
    "_REGION=${var.region}",
    "_PREFIX=${var.prefix}",
    "_DAILY_BUDGET_USD=${var.daily_budget_usd}",
    "_BUDGET_TIMEZONE=${var.budget_timezone}",
    "_RETENTION_DAYS=${var.retention_days}",
    "_LEDGER_RETENTION_DAYS=${var.ledger_retention_days}",
    "_OUTPUT_BUCKET=${google_storage_bucket.outputs.name}",
    "_VEO_LOCATION=${var.veo_location}",
    "_IMAGE_BUCKETS=${join(";", var.image_buckets)}",
    "_QA_SEMANTIC=${var.qa_semantic}",
    "_QA_SEMANTIC_MODEL=${var.qa_semantic_model}",
    "_QA_SEMANTIC_MIN=${var.qa_semantic_min}",
    "_QA_POLICY=${var.qa_policy}",
    "_TF_STATE_BUCKET=${local.state_bucket}",
  ])
}

output "job_events_table" {
  description = "Every job event, written by the BigQuery subscription (README: spend SQL)."
  value       = "${google_bigquery_table.job_events.project}.${google_bigquery_table.job_events.dataset_id}.${google_bigquery_table.job_events.table_id}"
}

output "tenant_topics" {
  description = "Each configured tenant's jobs topic (its publishers publish here)."
  value       = { for name, topic in google_pubsub_topic.tenant_jobs : name => topic.name }
}

output "tenant_control_topics" {
  description = "Each configured tenant's control topic (its publishers cancel its own jobs here)."
  value       = { for name, topic in google_pubsub_topic.tenant_control : name => topic.name }
}
