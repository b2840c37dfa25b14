data "google_project" "this" {
  project_id = var.project
}

locals {
  project_number = data.google_project.this.number
  state_bucket   = coalesce(var.state_bucket, "${var.project}-tfstate")

  # Where `gcloud builds submit` uploads the source each build starts from.
  build_source_bucket = "${var.project}_cloudbuild"
  firestore_database  = "projects/${var.project}/databases/${google_firestore_database.main.name}"

  # Google-managed identities that act for Pub/Sub (dead-lettering, OIDC tokens for pushes).
  pubsub_agent = "serviceAccount:service-${local.project_number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  # Vertex AI's: it reads a request's gs:// inputs (semantic QA: storage.tf).
  aiplatform_agent = "serviceAccount:service-${local.project_number}@gcp-sa-aiplatform.iam.gserviceaccount.com"

  # Deployed function name = Cloud Run service name, and its deterministic run.app URL: push
  # subscriptions and the scheduler target it before the function exists, and an
  # internal-only function accepts Pub/Sub and Cloud Scheduler traffic only on run.app.
  function_names = { for name, f in local.functions : name => "${var.prefix}${f.service}" }
  function_urls = {
    for name, service in local.function_names :
    name => "https://${service}-${local.project_number}.${var.region}.run.app"
  }

  apis = [
    "aiplatform.googleapis.com",
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ]
}

resource "google_project_service" "api" {
  for_each           = toset(local.apis)
  service            = each.value
  disable_on_destroy = false
}
