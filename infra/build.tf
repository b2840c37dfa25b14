# The identities of a deploy, each with only what its part needs (infra/README.md, "Least
# privilege"):
# - tester: runs cloudbuild.test.yaml (the test suite, which installs and runs third-party
#   code) and can do nothing to the project but write its log;
# - deployer: runs cloudbuild.yaml (package, deploy, grant invokers, monitoring);
# - builder: builds each function's image for Cloud Functions (--build-service-account).
# Every build starts by fetching the source `gcloud builds submit` uploaded to
# <project>_cloudbuild, so both build identities may read that bucket.

resource "google_service_account" "tester" {
  account_id   = "${var.prefix}tester"
  display_name = "aiprod Cloud Build test runner"
  description  = "Runs the test build; holds no deploy right."

  depends_on = [google_project_service.api]
}

resource "google_project_iam_member" "tester_writes_logs" {
  project = var.project
  role    = "roles/logging.logWriter"
  member  = "serviceAccount:${google_service_account.tester.email}"
}

resource "google_service_account" "deployer" {
  account_id   = "${var.prefix}deployer"
  display_name = "aiprod Cloud Build deployer"

  depends_on = [google_project_service.api]
}

resource "google_storage_bucket_iam_member" "build_reads_source" {
  for_each = {
    tester   = google_service_account.tester.email
    deployer = google_service_account.deployer.email
  }
  bucket = local.build_source_bucket
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${each.value}"
}

resource "google_project_iam_member" "deployer" {
  for_each = toset([
    "roles/cloudfunctions.developer",
    "roles/logging.logWriter",
    "roles/monitoring.editor",               # the monitoring step, last in cloudbuild.yaml
    "roles/serviceusage.serviceUsageViewer", # ... which refreshes the APIs it depends on
  ])
  project = var.project
  role    = each.value
  member  = "serviceAccount:${google_service_account.deployer.email}"
}

# `gcloud functions add-invoker-policy-binding` edits the IAM policy of the function's Cloud
# Run service, which the deploy creates (so Terraform cannot bind on it beforehand): these
# three permissions, on the aiprod services alone, instead of project-wide run.admin.
resource "google_project_iam_custom_role" "invoker_granter" {
  role_id     = "${replace(trimsuffix(var.prefix, "-"), "-", "_")}_invoker_granter"
  title       = "aiprod invoker granter"
  description = "Reads and sets the IAM policy of a Cloud Run service."
  permissions = ["run.services.get", "run.services.getIamPolicy", "run.services.setIamPolicy"]
}

resource "google_project_iam_member" "deployer_grants_invokers" {
  project = var.project
  role    = google_project_iam_custom_role.invoker_granter.id
  member  = "serviceAccount:${google_service_account.deployer.email}"

  condition {
    title = "aiprod functions only"
    expression = join(" || ", [
      for service in values(local.function_names) : "resource.name.endsWith(\"/services/${service}\")"
    ])
  }
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

# Cloud Functions builds each function's image as this account, rather than a project default
# that may hold broad roles or none. Not roles/cloudbuild.builds.builder: that reads every
# bucket of the project, the Terraform state among them. Instead: its log, the images it
# pushes (gcf-artifacts) and the function sources Cloud Functions stages (gcf-v2-*).
resource "google_service_account" "builder" {
  account_id   = "${var.prefix}builder"
  display_name = "aiprod function image builder"

  depends_on = [google_project_service.api]
}

locals {
  builder_grants = {
    "roles/logging.logWriter"       = ""
    "roles/artifactregistry.writer" = "resource.name.startsWith(\"projects/${var.project}/locations/${var.region}/repositories/gcf-artifacts\")"
    "roles/storage.objectAdmin" = join(" || ", [
      "resource.name.startsWith(\"projects/_/buckets/gcf-v2-sources-${local.project_number}-${var.region}\")",
      "resource.name.startsWith(\"projects/_/buckets/gcf-v2-uploads-${local.project_number}-${var.region}\")",
    ])
  }
}

resource "google_project_iam_member" "builder" {
  for_each = local.builder_grants
  project  = var.project
  role     = each.key
  member   = "serviceAccount:${google_service_account.builder.email}"

  dynamic "condition" {
    for_each = each.value == "" ? [] : [each.value]
    content {
      title      = "aiprod function builds only"
      expression = condition.value
    }
  }
}
