# Cloud Scheduler calls each scheduled function (the reconciler) over HTTP with an OIDC
# token; the function is internal-only, which admits Cloud Scheduler of the same project
# on its run.app URL.
resource "google_cloud_scheduler_job" "function" {
  for_each         = local.scheduled_functions
  name             = "${var.prefix}${each.value.service}"
  description      = "Calls ${local.function_names[each.key]} (lease sweep)."
  schedule         = each.value.schedule
  time_zone        = "Etc/UTC"
  region           = var.region
  attempt_deadline = "${each.value.timeout_s}s"

  retry_config {
    retry_count = 0 # the next run is a minute away, and a sweep is safe to repeat
  }

  http_target {
    http_method = "POST"
    uri         = local.function_urls[each.key]

    oidc_token {
      service_account_email = google_service_account.scheduler_invoker.email
      audience              = local.function_urls[each.key]
    }
  }

  depends_on = [google_project_service.api]
}
