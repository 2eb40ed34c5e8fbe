# The services' namespace and Kubernetes service account (bound to the workload Google service
# account through Workload Identity), and the two secrets the Helm charts mount: the Cloud SQL
# proxy's connection settings and credentials, and the Pub/Sub settings.

resource "kubernetes_namespace_v1" "this" {
  metadata {
    name   = var.namespace
    labels = var.labels
  }
}

resource "kubernetes_service_account_v1" "workload" {
  metadata {
    name      = var.service_account_name
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = var.labels
    annotations = {
      "iam.gke.io/gcp-service-account" = var.gcp_service_account_email
    }
  }
}

resource "kubernetes_secret_v1" "cloudsql_proxy" {
  metadata {
    name      = var.cloudsql_secret_name
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = var.labels
  }

  data = {
    instance_connection_name = var.cloudsql_connection_name
    username                 = var.cloudsql_user
    password                 = var.cloudsql_password
  }
}

resource "kubernetes_secret_v1" "pubsub" {
  metadata {
    name      = var.pubsub_secret_name
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = var.labels
  }

  data = {
    project_id    = var.project_id
    topics        = jsonencode(var.pubsub_topics)
    subscriptions = jsonencode(var.pubsub_subscriptions)
  }
}
