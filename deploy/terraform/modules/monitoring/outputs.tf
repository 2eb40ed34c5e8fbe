output "alert_policies" {
  description = "Alert policy names by kind."
  value = {
    http_5xx   = google_monitoring_alert_policy.http_5xx.name
    crash_loop = google_monitoring_alert_policy.crash_loop.name
  }
}
