# Provider keys: Terraform creates the secrets, never their values. Add a version by hand
# (README, "Provider keys"); cloudbuild.yaml mounts `latest` into the function that needs it.
resource "google_secret_manager_secret" "provider" {
  for_each  = local.provider_secrets
  secret_id = "${var.prefix}${each.value.secret}"

  replication {
    auto {}
  }

  depends_on = [google_project_service.api]
}

locals {
  secret_grants = merge([
    for name, f in local.functions : {
      for backend in f.secrets : "${name}/${backend}" => { function = name, backend = backend }
    }
  ]...)
}

resource "google_secret_manager_secret_iam_member" "function_reads_key" {
  for_each  = local.secret_grants
  secret_id = google_secret_manager_secret.provider[each.value.backend].id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.function[each.value.function].email}"
}
