# One service account per function, holding only what that function does:
# - every function reads and writes Firestore and writes its custom metrics;
# - it publishes only to the topics it names (pubsub.tf), reads only its provider's key
#   (secrets.tf) and, for the render functions, writes only to the output bucket (storage.tf);
# - render_veo calls Vertex AI with its own identity.
resource "google_service_account" "function" {
  for_each     = local.functions
  account_id   = "${var.prefix}${each.value.service}"
  display_name = "aiprod ${each.key}"
  description  = "Runtime identity of the ${local.function_names[each.key]} function."

  depends_on = [google_project_service.api]
}

locals {
  base_roles = ["roles/datastore.user", "roles/monitoring.metricWriter"]
  project_grants = merge([
    for name, f in local.functions : {
      for role in concat(local.base_roles, f.roles) : "${name}/${role}" => {
        function = name
        role     = role
      }
    }
  ]...)
}

resource "google_project_iam_member" "function" {
  for_each = local.project_grants
  project  = var.project
  role     = each.value.role
  member   = "serviceAccount:${google_service_account.function[each.value.function].email}"
}

# Who may call the functions (all deployed --no-allow-unauthenticated): Pub/Sub pushes with
# this account's OIDC token, Cloud Scheduler with the next one. cloudbuild.yaml grants each
# run.invoker on exactly the functions it calls, once they exist.
resource "google_service_account" "push_invoker" {
  account_id   = "${var.prefix}push-invoker"
  display_name = "aiprod Pub/Sub push invoker"

  depends_on = [google_project_service.api]
}

resource "google_service_account" "scheduler_invoker" {
  account_id   = "${var.prefix}scheduler"
  display_name = "aiprod Cloud Scheduler invoker"

  depends_on = [google_project_service.api]
}

# Pub/Sub mints the push OIDC tokens as the push invoker.
resource "google_service_account_iam_member" "pubsub_mints_push_tokens" {
  service_account_id = google_service_account.push_invoker.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

# Cloud Build runs cloudbuild.yaml as this account: it deploys the functions as their own
# service accounts (actAs on those only), sets who may invoke them, and writes build logs.
resource "google_service_account" "deployer" {
  account_id   = "${var.prefix}deployer"
  display_name = "aiprod Cloud Build deployer"

  depends_on = [google_project_service.api]
}

resource "google_project_iam_member" "deployer" {
  for_each = toset([
    "roles/cloudfunctions.developer",
    "roles/run.admin", # run.invoker bindings on the functions' Cloud Run services
    "roles/logging.logWriter",
    "roles/monitoring.editor",               # the monitoring step, last in cloudbuild.yaml
    "roles/serviceusage.serviceUsageViewer", # ... which refreshes the APIs it depends on
  ])
  project = var.project
  role    = each.value
  member  = "serviceAccount:${google_service_account.deployer.email}"
}

# Cloud Functions builds each function's image as this account (--build-service-account),
# rather than a project default that may hold broad roles or none.
resource "google_service_account" "builder" {
  account_id   = "${var.prefix}builder"
  display_name = "aiprod function image builder"

  depends_on = [google_project_service.api]
}

resource "google_project_iam_member" "builder" {
  project = var.project
  role    = "roles/cloudbuild.builds.builder"
  member  = "serviceAccount:${google_service_account.builder.email}"
}

resource "google_service_account_iam_member" "deployer_acts_as_builder" {
  service_account_id = google_service_account.builder.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.deployer.email}"
}

resource "google_service_account_iam_member" "deployer_acts_as_function" {
  for_each           = google_service_account.function
  service_account_id = each.value.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.deployer.email}"
}

# The monitoring step runs Terraform on this configuration's state.
resource "google_storage_bucket_iam_member" "deployer_reads_state" {
  bucket = local.state_bucket
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.deployer.email}"
}
