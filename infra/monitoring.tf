# ---------------------------------------------------------------------------------------------
# MONITORING: metric descriptors, alert policies, dashboards and SLOs, each read from its
# definition in infra/monitoring/ (nothing is invented here). Every dashboard JSON file in
# infra/monitoring/dashboards/ becomes a dashboard. cloudbuild.yaml applies monitoring last,
# after the functions that write the metrics are deployed (its `monitoring` step).
# ---------------------------------------------------------------------------------------------

locals {
  monitoring_dir  = "${path.module}/monitoring"
  dashboard_files = fileset(local.monitoring_dir, "dashboards/*.json")
}

resource "google_monitoring_dashboard" "from_file" {
  for_each       = local.dashboard_files
  dashboard_json = file("${local.monitoring_dir}/${each.value}")

  depends_on = [google_project_service.api]
}

# The rest of infra/monitoring/, written and tested with the code: tests/unit/
# test_monitoring_files.py loads each file into the Monitoring API's own types and checks
# every metric it names against shared/aiprod/domain/metric_set.py, both ways. The JSON files are in the REST shapes, so
# they also apply with gcloud (infra/monitoring/README.md); here they are decoded into the
# provider's blocks. Descriptors come first: a policy, chart or SLO on an unknown metric type
# is refused.

variable "alert_notification_channels" {
  description = "Notification channel ids (projects/P/notificationChannels/N) the alert policies notify."
  type        = list(string)
  default     = []
}

locals {
  metric_descriptors = {
    for d in jsondecode(file("${local.monitoring_dir}/metric_descriptors.json")) : d.type => d
  }
  alert_policies = {
    for f in fileset(local.monitoring_dir, "alerts/*.json") :
    trimsuffix(basename(f), ".json") => jsondecode(file("${local.monitoring_dir}/${f}"))
  }
  slos = {
    for f in fileset(local.monitoring_dir, "slo/*.json") :
    trimsuffix(basename(f), ".json") => jsondecode(file("${local.monitoring_dir}/${f}"))
    if basename(f) != "service.json"
  }
  slo_service = jsondecode(file("${local.monitoring_dir}/slo/service.json"))
}

resource "google_monitoring_metric_descriptor" "aiprod" {
  for_each     = local.metric_descriptors
  type         = each.value.type
  metric_kind  = each.value.metricKind
  value_type   = each.value.valueType
  unit         = each.value.unit
  description  = each.value.description
  display_name = each.value.displayName

  dynamic "labels" {
    for_each = each.value.labels
    content {
      key         = labels.value.key
      value_type  = labels.value.valueType
      description = labels.value.description
    }
  }

  depends_on = [google_project_service.api]
}

resource "google_monitoring_alert_policy" "from_file" {
  for_each              = local.alert_policies
  display_name          = each.value.displayName
  combiner              = each.value.combiner
  enabled               = each.value.enabled
  severity              = each.value.severity
  user_labels           = each.value.userLabels
  notification_channels = var.alert_notification_channels

  documentation {
    content   = each.value.documentation.content
    mime_type = each.value.documentation.mimeType
  }

  alert_strategy {
    auto_close = each.value.alertStrategy.autoClose
  }

  dynamic "conditions" {
    for_each = each.value.conditions
    content {
      display_name = conditions.value.displayName
      condition_threshold {
        filter          = conditions.value.conditionThreshold.filter
        comparison      = conditions.value.conditionThreshold.comparison
        threshold_value = conditions.value.conditionThreshold.thresholdValue
        duration        = conditions.value.conditionThreshold.duration
        trigger {
          count = conditions.value.conditionThreshold.trigger.count
        }
        dynamic "aggregations" {
          for_each = conditions.value.conditionThreshold.aggregations
          content {
            alignment_period     = aggregations.value.alignmentPeriod
            per_series_aligner   = aggregations.value.perSeriesAligner
            cross_series_reducer = lookup(aggregations.value, "crossSeriesReducer", null)
            group_by_fields      = lookup(aggregations.value, "groupByFields", null)
          }
        }
      }
    }
  }

  depends_on = [google_monitoring_metric_descriptor.aiprod]
}

resource "google_monitoring_custom_service" "aiprod" {
  service_id   = "${var.prefix}pipeline"
  display_name = local.slo_service.displayName
}

resource "google_monitoring_slo" "from_file" {
  for_each            = local.slos
  service             = google_monitoring_custom_service.aiprod.service_id
  slo_id              = each.key
  display_name        = each.value.displayName
  goal                = each.value.goal
  rolling_period_days = tonumber(trimsuffix(each.value.rollingPeriod, "s")) / 86400
  user_labels         = each.value.userLabels

  request_based_sli {
    good_total_ratio {
      good_service_filter  = each.value.serviceLevelIndicator.requestBased.goodTotalRatio.goodServiceFilter
      total_service_filter = each.value.serviceLevelIndicator.requestBased.goodTotalRatio.totalServiceFilter
    }
  }

  depends_on = [google_monitoring_metric_descriptor.aiprod]
}
