# The job, ledger and circuit documents. Optimistic concurrency: the store's transactions
# are a read, then one batch written with update-time preconditions (adapters/firestore_store).
resource "google_firestore_database" "main" {
  name                    = "(default)"
  location_id             = coalesce(var.firestore_location, var.region)
  type                    = "FIRESTORE_NATIVE"
  concurrency_mode        = "OPTIMISTIC"
  delete_protection_state = "DELETE_PROTECTION_ENABLED"
  deletion_policy         = "ABANDON"

  depends_on = [google_project_service.api]
}

# TTL: Firestore deletes a document once the Timestamp in its expire_at field has passed
# (typically within a day after). The functions write expire_at only on what is finished:
# a job once it is over (+ retention_days), a dead letter (+ retention_days from when it was
# seen), a budget day's pool and shards (+ ledger_retention_days after the day); a running
# job has none. The field is never queried, so it is not indexed (a timestamp index that
# grows in order would only hot-spot writes).
locals {
  expiring_collections = ["jobs", "dead_letters", "budget_pools", "ledger"]
}

resource "google_firestore_field" "expire_at" {
  for_each   = toset(local.expiring_collections)
  project    = var.project
  database   = google_firestore_database.main.name
  collection = each.key
  field      = "expire_at"

  ttl_config {}
  index_config {}
}

# Rendered videos, copied here before a job is declared a success (provider URLs expire).
resource "google_storage_bucket" "outputs" {
  name                        = "${var.project}-${var.prefix}outputs"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  lifecycle_rule {
    condition {
      age = var.output_retention_days
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  depends_on = [google_project_service.api]
}

resource "google_storage_bucket_iam_member" "render_writes_outputs" {
  for_each = { for name, f in local.functions : name => f if f.bucket }
  bucket   = google_storage_bucket.outputs.name
  role     = "roles/storage.objectUser"
  member   = "serviceAccount:${google_service_account.function[each.key].email}"
}

# Semantic QA on (semantic_qa.tf): Gemini reads each kept video by its gs:// URI. The rating
# function's own account may already read the bucket (render_writes_outputs); Vertex AI reads
# a request's Cloud Storage inputs as its service agent (its API errors page: a 403 on an
# input means granting that agent access), so the agent may read the outputs, this bucket
# alone, read-only, and only while semantic QA is on. The agent must exist: README, Deploying.
resource "google_storage_bucket_iam_member" "vertex_agent_reads_outputs" {
  count  = local.semantic_qa_on ? 1 : 0
  bucket = google_storage_bucket.outputs.name
  role   = "roles/storage.objectViewer"
  member = local.aiplatform_agent

  depends_on = [google_project_service.api]
}

# Input images named gs://<bucket>/… are read only from var.image_buckets, and only by the
# render functions whose backend takes an image by bucket reference (Veo; the Runway and
# Replicate adapters send https images only): read-only, those buckets alone.
locals {
  image_reading_functions = ["render_veo"]
  image_bucket_grants = {
    for pair in setproduct(var.image_buckets, local.image_reading_functions) :
    "${pair[0]}/${pair[1]}" => { bucket = pair[0], function = pair[1] }
  }
}

resource "google_storage_bucket_iam_member" "render_reads_images" {
  for_each = local.image_bucket_grants
  bucket   = each.value.bucket
  role     = "roles/storage.objectViewer"
  member   = "serviceAccount:${google_service_account.function[each.value.function].email}"
}
