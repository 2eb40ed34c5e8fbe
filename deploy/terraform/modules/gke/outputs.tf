output "name" {
  description = "Cluster name."
  value       = google_container_cluster.this.name
}

output "location" {
  description = "Region or zone of the cluster."
  value       = google_container_cluster.this.location
}

output "endpoint" {
  description = "IP address of the control plane."
  value       = google_container_cluster.this.endpoint
  sensitive   = true
}

output "ca_certificate" {
  description = "Base64-encoded CA certificate of the control plane."
  value       = google_container_cluster.this.master_auth[0].cluster_ca_certificate
  sensitive   = true
}

output "nodes_service_account_email" {
  description = "Google service account of the nodes (pulls images)."
  value       = google_service_account.nodes.email
}

output "node_pool_autoscaling" {
  description = "Autoscaling bounds of the node pool."
  value = {
    min_nodes = var.min_nodes
    max_nodes = var.max_nodes
  }
}
