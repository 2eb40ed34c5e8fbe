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

output "admin_user" {
  description = "MySQL user of the release (databases, grants, migrations)."
  value       = google_sql_user.admin.name
}

output "service_users" {
  description = "MySQL users by service: {migration, application}."
  value = {
    for service in keys(var.service_databases) : service => {
      migration   = google_sql_user.service["${service}/migration"].name
      application = google_sql_user.service["${service}/application"].name
    }
  }
}
