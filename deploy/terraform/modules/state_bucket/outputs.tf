output "name" {
  description = "Bucket name, for backend \"gcs\" (terraform init -backend-config=bucket=...)."
  value       = google_storage_bucket.state.name
}

output "url" {
  description = "gs:// URL of the bucket."
  value       = google_storage_bucket.state.url
}
