# The runtime reads these after every converge (TerraformRunner.outputs).

output "cluster_name" {
  description = "GKE cluster name."
  value       = module.gke.name
}

output "cluster_endpoint" {
  description = "GKE control plane IP."
  value       = module.gke.endpoint
  sensitive   = true
}

output "cluster_location" {
  description = "GKE cluster region or zone (gcloud container clusters get-credentials --location)."
  value       = module.gke.location
}

output "cloudsql_instance_connection_name" {
  description = "project:region:instance of the Cloud SQL primary, for the proxy and the connector."
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

output "k8s_namespace" {
  description = "Namespace of the services."
  value       = module.k8s_secrets.namespace
}

output "k8s_secret_names" {
  description = "Names of the Cloud SQL proxy and Pub/Sub secrets in that namespace."
  value       = module.k8s_secrets.secret_names
}
