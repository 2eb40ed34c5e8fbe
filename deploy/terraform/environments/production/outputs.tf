# The runtime reads these after every converge (TerraformRunner.outputs).

output "cluster_name" {
  description = "GKE cluster name."
  value       = module.platform.cluster_name
}

output "cluster_endpoint" {
  description = "GKE control plane IP."
  value       = module.platform.cluster_endpoint
  sensitive   = true
}

output "cluster_location" {
  description = "GKE cluster region or zone (gcloud container clusters get-credentials --location)."
  value       = module.platform.cluster_location
}

output "cloudsql_instance_connection_name" {
  description = "project:region:instance of the Cloud SQL primary, for the proxy and the connector."
  value       = module.platform.cloudsql_instance_connection_name
}

output "cloudsql_failover_replica_name" {
  description = "Name of the Cloud SQL failover replica, null when there is none."
  value       = module.platform.cloudsql_failover_replica_name
}

output "redis_host" {
  description = "Private IP of Memorystore."
  value       = module.platform.redis_host
}

output "redis_port" {
  description = "Port of Memorystore."
  value       = module.platform.redis_port
}

output "pubsub_topics" {
  description = "Full Pub/Sub topic names by short name."
  value       = module.platform.pubsub_topics
}

output "pubsub_subscriptions" {
  description = "Full Pub/Sub subscription names by short name."
  value       = module.platform.pubsub_subscriptions
}

output "k8s_namespace" {
  description = "Namespace of the services."
  value       = module.k8s_secrets.namespace
}

output "k8s_secret_names" {
  description = "Names of the Cloud SQL proxy and Pub/Sub secrets in that namespace."
  value       = module.k8s_secrets.secret_names
}
