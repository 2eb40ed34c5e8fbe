output "host" {
  description = "Private IP of the instance."
  value       = google_redis_instance.this.host
}

output "port" {
  description = "Port of the instance."
  value       = google_redis_instance.this.port
}
