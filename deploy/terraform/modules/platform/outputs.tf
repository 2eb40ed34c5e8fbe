output "cluster_name" {
  description = "GKE cluster name."
  value       = module.gke.name
}

output "cluster_location" {
  description = "GKE cluster region or zone."
  value       = module.gke.location
}

output "cluster_endpoint" {
  description = "GKE control plane IP."
  value       = module.gke.endpoint
  sensitive   = true
}

output "cluster_ca_certificate" {
  description = "Base64-encoded CA certificate of the GKE control plane."
  value       = module.gke.ca_certificate
  sensitive   = true
}

output "workload_service_account_email" {
  description = "Google service account of the services (Workload Identity)."
  value       = module.gke.workload_service_account_email
}

output "cloudsql_instance_connection_name" {
  description = "project:region:instance of the Cloud SQL primary."
  value       = module.cloudsql.connection_name
}

output "cloudsql_private_ip" {
  description = "Private IP of the Cloud SQL primary."
  value       = module.cloudsql.private_ip_address
}

output "cloudsql_failover_replica_name" {
  description = "Name of the Cloud SQL failover replica, null when there is none."
  value       = module.cloudsql.failover_replica_name
}

output "cloudsql_proxy_user" {
  description = "MySQL user of the services."
  value       = module.cloudsql.proxy_user
}

output "redis_host" {
  description = "Private IP of Memorystore."
  value       = module.redis.host
}

output "redis_port" {
  description = "Port of Memorystore."
  value       = module.redis.port
}

output "pubsub_topics" {
  description = "Full Pub/Sub topic names by short name."
  value       = module.pubsub.topics
}

output "pubsub_subscriptions" {
  description = "Full Pub/Sub subscription names by short name."
  value       = module.pubsub.subscriptions
}
