output "instance_name" {
  description = "Name of the primary instance."
  value       = google_sql_database_instance.primary.name
}

output "connection_name" {
  description = "project:region:instance, what the Cloud SQL proxy and connector connect to."
  value       = google_sql_database_instance.primary.connection_name
}

output "private_ip_address" {
  description = "Private IP of the primary inside the VPC."
  value       = google_sql_database_instance.primary.private_ip_address
}

output "failover_replica_name" {
  description = "Name of the failover replica, null when there is none."
  value       = one(google_sql_database_instance.failover_replica[*].name)
}

output "proxy_user" {
  description = "MySQL user of the services."
  value       = google_sql_user.proxy.name
}
