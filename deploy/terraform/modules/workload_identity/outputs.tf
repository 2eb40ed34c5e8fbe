output "emails" {
  description = "Google service account of each service (the chart's serviceAccount.gcpServiceAccount)."
  value       = { for service, account in google_service_account.service : service => account.email }
}
