# One service account per function, holding only what that function does:
# - every function reads and writes the aiprod Firestore database (only that one) and
#   writes its custom metrics;
# - it publishes only to the topics it names (pubsub.tf), reads only its provider's key
#   (secrets.tf) and, for the render functions, writes only to the output bucket (storage.tf);
# - render_veo calls Vertex AI with its own identity, and so does every function that keeps
#   outputs while semantic QA is on (semantic_qa.tf).
resource "google_service_account" "function" {
  for_each     = local.functions
  account_id   = "${var.prefix}${each.value.service}"
  display_name = "aiprod ${each.key}"
  description  = "Runtime identity of the ${local.function_names[each.key]} function."

  depends_on = [google_project_service.api]
}

locals {
  # Firestore is granted apart (function_firestore), on the aiprod database only. Semantic
  # QA's Vertex AI role (semantic_qa.tf) is granted once, also to those already holding it.
  base_roles = ["roles/monitoring.metricWriter"]
  project_grants = merge([
    for name, f in local.functions : {
      for role in distinct(concat(local.base_roles, f.roles, local.qa_roles[name])) : "${name}/${role}" => {
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

# Firestore IAM has no per-collection roles; the narrowest grant is one database, by an IAM
# condition on its name: a function can read and write the jobs, ledger and circuit documents
# of this database, and nothing of another database in the project (infra/README.md).
resource "google_project_iam_member" "function_firestore" {
  for_each = local.functions
  project  = var.project
  role     = "roles/datastore.user"
  member   = "serviceAccount:${google_service_account.function[each.key].email}"

  condition {
    title      = "aiprod database only"
    expression = "resource.name == \"${local.firestore_database}\""
  }
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
