# Alerts of one environment, sent to the release's email group: a burst of 5xx answers, and pods
# that crash-loop. Both are log-based metrics labelled by service, so the alert names the service.
#
# 5xx: log entries of the environment's namespace whose httpRequest.status is 500 or more, i.e.
# structured request logs in Cloud Logging's format (the services', and ingress-nginx's when its
# log-format is JSON with an httpRequest object). Crash loops: the kubelet's BackOff events
# ("Back-off restarting failed container"), which GKE exports to Cloud Logging.

locals {
  namespace_filter = "resource.labels.namespace_name=\"${var.namespace}\""
  service_label    = "EXTRACT(labels.\"k8s-pod/app_kubernetes_io/name\")"
}

resource "google_monitoring_notification_channel" "email" {
  for_each     = toset(var.emails)
  project      = var.project_id
  display_name = "fintech-release ${var.environment}: ${each.value}"
  type         = "email"
  labels = {
    email_address = each.value
  }
}

resource "google_logging_metric" "http_5xx" {
  project = var.project_id
  name    = "fintech-${var.environment}-http-5xx"
  filter  = "resource.type=\"k8s_container\" AND ${local.namespace_filter} AND httpRequest.status>=500"

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key         = "service"
      value_type  = "STRING"
      description = "The service (app.kubernetes.io/name) that answered."
    }
  }

  label_extractors = {
    service = local.service_label
  }
}

resource "google_logging_metric" "crash_loop" {
  project = var.project_id
  name    = "fintech-${var.environment}-crash-loop"
  filter = join(" AND ", [
    "resource.type=\"k8s_pod\"",
    local.namespace_filter,
    "log_id(\"events\")",
    "jsonPayload.reason=\"BackOff\"",
    "jsonPayload.message=~\"Back-off restarting failed container\"",
  ])

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key         = "pod"
      value_type  = "STRING"
      description = "The crash-looping pod."
    }
  }

  label_extractors = {
    pod = "EXTRACT(resource.labels.pod_name)"
  }
}

resource "google_monitoring_alert_policy" "http_5xx" {
  project               = var.project_id
  display_name          = "fintech-release ${var.environment}: 5xx burst"
  combiner              = "OR"
  notification_channels = [for channel in google_monitoring_notification_channel.email : channel.id]
  user_labels           = var.labels

  conditions {
    display_name = "more than ${var.http_5xx_threshold} 5xx answers of one service in ${var.window}"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.http_5xx.name}\" AND resource.type=\"k8s_container\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.http_5xx_threshold
      duration        = "0s"
      aggregations {
        alignment_period     = var.window
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.service"]
      }
    }
  }

  documentation {
    content   = "Services in ${var.environment} answer with 5xx. Check pod_health (fintech-release releases ${var.environment}) and the service's logs; roll back with fintech-release rollback ${var.environment}."
    mime_type = "text/markdown"
  }
}

resource "google_monitoring_alert_policy" "crash_loop" {
  project               = var.project_id
  display_name          = "fintech-release ${var.environment}: crash-looping pods"
  combiner              = "OR"
  notification_channels = [for channel in google_monitoring_notification_channel.email : channel.id]
  user_labels           = var.labels

  conditions {
    display_name = "a pod restarted with back-off more than ${var.crash_loop_threshold} times in ${var.window}"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.crash_loop.name}\" AND resource.type=\"k8s_pod\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.crash_loop_threshold
      duration        = "0s"
      aggregations {
        alignment_period     = var.window
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.pod"]
      }
    }
  }

  documentation {
    content   = "A pod in ${var.environment} is crash-looping. The release's pod_health check names it; the previous version keeps serving after a failed rollout."
    mime_type = "text/markdown"
  }
}
