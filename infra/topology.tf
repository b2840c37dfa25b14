# The deployed shape of shared/aiprod/topology.py: topics, the function each one feeds, the
# dead-letter inbox and the scheduled functions. Names here are without the prefix.
# tests/deploy/test_terraform.py checks this file against the topology module both ways, so a
# topic or function added there and not here (or the reverse) fails `make test`.

locals {
  topics = [
    "jobs",
    "render-runway",
    "render-veo",
    "render-replicate",
    "render-outcomes",
    "job-events",
    "dead-letter",
    "job-control",
  ]

  dead_letter_topic = "dead-letter"
  job_control_topic = "job-control"

  # Every push subscription: deliveries before a message goes to the dead-letter topic, and
  # the exponential backoff between them (topology.MAX_DELIVERY_ATTEMPTS, MIN/MAX_BACKOFF_S).
  max_delivery_attempts = 5
  # Render subscriptions: a push Cloud Run refuses at capacity (429) counts as a delivery,
  # so they allow the most Pub/Sub does (topology.RENDER_MAX_DELIVERY_ATTEMPTS).
  render_max_delivery_attempts = 100
  min_backoff_s                = 10
  max_backoff_s                = 600

  # The pull subscriptions deployed (topology.PULL_SUBSCRIPTIONS minus the local-only tap):
  # `aiprod dlq` reads the dead-letter inbox.
  pull_subscriptions = {
    "dead-letter--inbox" = "dead-letter"
  }

  # Each function: `service` is its deployed name after the prefix (Cloud Run allows no
  # underscore), `topic` feeds it through a push subscription named "<topic>--<function>"
  # (null: an HTTP function that Cloud Scheduler calls on `schedule`), `publishes` are the
  # topics its service account may publish to, `secrets` the provider keys it reads,
  # `bucket` whether it writes rendered videos, `roles` any further project roles.
  push_functions = {
    route_job = {
      service               = "route-job"
      topic                 = "jobs"
      schedule              = null
      timeout_s             = 60
      max_delivery_attempts = local.max_delivery_attempts
      publishes             = ["render-runway", "render-veo", "render-replicate", "job-events", "dead-letter"]
      secrets               = []
      bucket                = false
      roles                 = []
    }
    render_runway = {
      service               = "render-runway"
      topic                 = "render-runway"
      schedule              = null
      timeout_s             = 540
      max_delivery_attempts = local.render_max_delivery_attempts
      publishes             = ["render-outcomes", "dead-letter"]
      secrets               = ["runway"]
      bucket                = true
      roles                 = []
    }
    render_veo = {
      service               = "render-veo"
      topic                 = "render-veo"
      schedule              = null
      timeout_s             = 540
      max_delivery_attempts = local.render_max_delivery_attempts
      publishes             = ["render-outcomes", "dead-letter"]
      secrets               = []
      bucket                = true
      roles                 = ["roles/aiplatform.user"] # Veo on Vertex AI: the function's own identity, no key
    }
    render_replicate = {
      service               = "render-replicate"
      topic                 = "render-replicate"
      schedule              = null
      timeout_s             = 540
      max_delivery_attempts = local.render_max_delivery_attempts
      publishes             = ["render-outcomes", "dead-letter"]
      secrets               = ["replicate"]
      bucket                = true
      roles                 = []
    }
    handle_outcome = {
      service               = "handle-outcome"
      topic                 = "render-outcomes"
      schedule              = null
      timeout_s             = 60
      max_delivery_attempts = local.max_delivery_attempts
      publishes             = ["render-runway", "render-veo", "render-replicate", "job-events", "dead-letter"]
      secrets               = []
      bucket                = false
      roles                 = []
    }
    # Control messages (first: cancel a job). Cancelling a running attempt asks its provider
    # to cancel the task, so it reads the Runway and Replicate keys. No Vertex AI role: Veo
    # has no public call to cancel a running generation, so it never calls Vertex AI.
    control_job = {
      service               = "control-job"
      topic                 = "job-control"
      schedule              = null
      timeout_s             = 300
      max_delivery_attempts = local.max_delivery_attempts
      publishes             = ["render-runway", "render-veo", "render-replicate", "render-outcomes", "job-events", "dead-letter"]
      secrets               = ["runway", "replicate"]
      bucket                = true                      # a cancel looks at a task it cannot stop: a finished render is kept
      roles                 = ["roles/aiplatform.user"] # Veo's task (no cancel call) is looked at, as reconcile polls it
    }
  }

  scheduled_functions = {
    reconcile = {
      service   = "reconcile"
      topic     = null
      schedule  = "* * * * *"
      timeout_s = 300
      publishes = ["render-runway", "render-veo", "render-replicate", "render-outcomes"]
      secrets   = ["runway", "replicate"]
      bucket    = true                      # keeps polled outputs; the hourly spend audit lists Veo's videos
      roles     = ["roles/aiplatform.user"] # polls stored provider tasks, as the render functions do
    }
  }

  functions = merge(local.push_functions, local.scheduled_functions)

  # Provider keys in Secret Manager (values are added by hand, never by Terraform) and the
  # environment variable each reaches its function as (cloudbuild.yaml --set-secrets).
  provider_secrets = {
    runway    = { secret = "runway-api-key", env = "RUNWAYML_API_SECRET" }
    replicate = { secret = "replicate-api-token", env = "REPLICATE_API_TOKEN" }
  }
}
