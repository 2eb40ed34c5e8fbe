output "namespace" {
  description = "Namespace of the services."
  value       = kubernetes_namespace_v1.this.metadata[0].name
}

output "service_account_name" {
  description = "Kubernetes service account of the services."
  value       = kubernetes_service_account_v1.workload.metadata[0].name
}

output "secret_names" {
  description = "Names of the Cloud SQL proxy and Pub/Sub secrets."
  value = {
    cloudsql_proxy = kubernetes_secret_v1.cloudsql_proxy.metadata[0].name
    pubsub         = kubernetes_secret_v1.pubsub.metadata[0].name
  }
}
