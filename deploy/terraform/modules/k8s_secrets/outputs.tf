output "namespace" {
  description = "Namespace of the services."
  value       = kubernetes_namespace_v1.this.metadata[0].name
}

output "secret_names" {
  description = "Names of the secrets: per service its database password (application, migration), and Pub/Sub."
  value = {
    database  = { for service, secret in kubernetes_secret_v1.database : service => secret.metadata[0].name }
    migration = { for service, secret in kubernetes_secret_v1.migration : service => secret.metadata[0].name }
    pubsub    = kubernetes_secret_v1.pubsub.metadata[0].name
  }
}
