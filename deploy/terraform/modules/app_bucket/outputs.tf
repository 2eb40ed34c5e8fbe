output "name" {
  description = "Bucket name."
  value       = google_storage_bucket.app.name
}
