variable "project" {
  description = "Google Cloud project id to deploy into."
  type        = string
}

variable "region" {
  description = "Region of the functions, the bucket and the scheduler job."
  type        = string
  default     = "europe-west1"
}

variable "prefix" {
  description = "Prefix of every topic, subscription, function, service account and secret (AIPROD_PREFIX)."
  type        = string
  default     = "aiprod-"

  validation {
    # Short enough for the longest service account id (prefix + "render-replicate" <= 30).
    condition     = can(regex("^[a-z][a-z0-9-]{0,11}-$", var.prefix))
    error_message = "prefix: a lowercase letter, then up to 11 lowercase letters, digits or hyphens, ending with a hyphen (e.g. aiprod- or aiprod-stg-)."
  }
}

variable "daily_budget_usd" {
  description = "Global daily spending limit in USD (AIPROD_DAILY_BUDGET_USD of the functions)."
  type        = number
  default     = 100

  validation {
    condition     = var.daily_budget_usd > 0
    error_message = "daily_budget_usd must be positive."
  }
}

variable "budget_timezone" {
  description = "IANA time zone whose midnight starts the budget day (AIPROD_BUDGET_TIMEZONE of the functions)."
  type        = string
  default     = "UTC"
}

variable "firestore_location" {
  description = "Firestore database location (a region such as europe-west1, or a multi-region such as eur3). Defaults to the region."
  type        = string
  default     = null
}

variable "output_retention_days" {
  description = "Rendered videos are deleted from the output bucket after this many days."
  type        = number
  default     = 30
}

variable "image_buckets" {
  description = "Buckets a job's gs:// input image may come from (AIPROD_IMAGE_BUCKETS); the render functions that read images get read-only access to these alone. Empty: no gs:// images."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for b in var.image_buckets : can(regex("^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$", b))])
    error_message = "image_buckets are bucket names (no gs://, no slashes)."
  }
}

variable "veo_location" {
  description = "Vertex AI location the Veo function calls (AIPROD_VEO_LOCATION)."
  type        = string
  default     = "us-central1"
}

variable "state_bucket" {
  description = "The bucket holding this configuration's state (terraform init -backend-config). The deployer reads it to apply monitoring. Defaults to <project>-tfstate."
  type        = string
  default     = null
}

variable "control_publishers" {
  description = "IAM members (e.g. serviceAccount:ops@example.iam.gserviceaccount.com) allowed to publish control messages (job cancel) to the shared job-control topic without the CLI: trusted, they may cancel any job (a tenant's publishers cancel on their own job-control--<tenant> topic instead). Granted roles/pubsub.publisher on that topic only."
  type        = list(string)
  default     = []
}

variable "tenants" {
  description = "Configured tenants by name: each gets the topics <prefix>jobs--<name> and <prefix>job-control--<name> (publish only for its publishers, IAM members), push subscriptions to route_job and control_job (its cancels reach only its own jobs), and (register_tenants) its registry entry and daily budget in USD."
  type = map(object({
    daily_budget_usd = number
    publishers       = optional(list(string), [])
  }))
  default = {}

  validation {
    condition = alltrue([
      for name, t in var.tenants :
      can(regex("^[a-z0-9][a-z0-9_-]{0,62}$", name)) && !startswith(name, "lane") && !strcontains(name, "--") && t.daily_budget_usd >= 0
    ])
    error_message = "tenants: names of 1-63 lowercase letters, digits, '_' or '-', not starting with 'lane', with no '--'; budgets >= 0."
  }
}

variable "register_tenants" {
  description = "Write each tenant's registry document (tenants/<name>) and first daily budget (budget_limits/tenant:<name>) in Firestore. Off: register them with `aiprod tenant add`."
  type        = bool
  default     = true
}

variable "shared_jobs_topic_open" {
  description = "Whether clients may publish untenanted jobs on the shared jobs topic. false: only operators (project-level Pub/Sub roles) can."
  type        = bool
  default     = true
}

variable "shared_jobs_publishers" {
  description = "IAM members granted publish on the shared jobs topic while shared_jobs_topic_open (untenanted jobs: global budget only)."
  type        = list(string)
  default     = []
}

variable "retention_days" {
  description = "Finished jobs and dead letters are deleted this many days after they end (AIPROD_RETENTION_DAYS; Firestore TTL on expire_at). A job's document is its job_id's idempotency record: a message re-sent within this window is recognized; after it, the same job_id is a new job."
  type        = number
  default     = 30

  validation {
    condition     = var.retention_days >= 1
    error_message = "retention_days must be at least 1 (a redelivered job message must still find its job)."
  }
}

variable "ledger_retention_days" {
  description = "A budget day's ledger documents are deleted this many days after the day ends (AIPROD_LEDGER_RETENTION_DAYS): aiprod spend --days reaches this far back. BigQuery keeps the job events for longer history."
  type        = number
  default     = 400

  validation {
    condition     = var.ledger_retention_days >= 1
    error_message = "ledger_retention_days must be at least 1."
  }
}

# Semantic output QA (README, "Semantic QA"): off by default. "gemini" grants what the rating
# needs (semantic_qa.tf) and reaches the functions as AIPROD_QA_SEMANTIC.
variable "qa_semantic" {
  description = "Semantic output QA (AIPROD_QA_SEMANTIC): \"\" off, or \"gemini\": every function that keeps outputs has Gemini on Vertex AI rate them, and gets roles/aiplatform.user for it."
  type        = string
  default     = ""

  validation {
    condition     = contains(["", "gemini"], var.qa_semantic)
    error_message = "qa_semantic must be \"\" (off) or \"gemini\"."
  }
}

variable "qa_semantic_model" {
  description = "The rating model (AIPROD_QA_SEMANTIC_MODEL): only priced models (domain/semantic_qa.PRICES)."
  type        = string
  default     = "gemini-2.5-flash"

  validation {
    condition     = contains(["gemini-2.5-flash", "gemini-2.5-flash-lite"], var.qa_semantic_model)
    error_message = "qa_semantic_model must be a priced model: gemini-2.5-flash or gemini-2.5-flash-lite."
  }
}

variable "qa_semantic_min" {
  description = "The passing score of a rating, 0 to 1 (AIPROD_QA_SEMANTIC_MIN)."
  type        = number
  default     = 0.5

  validation {
    condition     = var.qa_semantic_min >= 0 && var.qa_semantic_min <= 1
    error_message = "qa_semantic_min must be between 0 and 1."
  }
}

variable "qa_policy" {
  description = "A rating below qa_semantic_min (AIPROD_QA_POLICY): flag (deliver it flagged) or fallback (fail the attempt, as a technical failure)."
  type        = string
  default     = "flag"

  validation {
    condition     = contains(["flag", "fallback"], var.qa_policy)
    error_message = "qa_policy must be flag or fallback."
  }
}
