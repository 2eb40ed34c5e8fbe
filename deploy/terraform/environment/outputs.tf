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
  description = "Per service its database password secrets (application, migration), and the Pub/Sub secret."
  value       = module.k8s_secrets.secret_names
}

output "cloudsql_users" {
  description = "MySQL users: the release's admin, and per service {migration, application}."
  value = {
    admin    = module.cloudsql.admin_user
    services = module.cloudsql.service_users
  }
}

output "workload_service_accounts" {
  description = "Google service account of each service (the microservice chart's serviceAccount.gcpServiceAccount)."
  value       = module.workload_identity.emails
}

output "app_bucket" {
  description = "Name of the application bucket."
  value       = module.app_bucket.name
}

output "endpoints_services" {
  description = "Cloud Endpoints service name by service (the chart's esp.serviceName)."
  value       = module.endpoints.service_names
}

output "cloud_armor_policy" {
  description = "Name of the Cloud Armor policy, null when cloud_armor is false."
  value       = one(module.cloud_armor[*].policy_name)
}

output "redis_server_ca_certs" {
  description = "CA certificates a Redis client verifies the TLS connection with."
  value       = module.redis.server_ca_certs
}
