output "host" {
  description = "Private IP of the instance."
  value       = google_redis_instance.this.host
}

output "port" {
  description = "Port of the instance."
  value       = google_redis_instance.this.port
}

output "server_ca_certs" {
  description = "PEM certificates of the CA that signed the instance's TLS certificate."
  value       = [for cert in google_redis_instance.this.server_ca_certs : cert.cert]
}
