# The services' namespace, locked down: Pod Security `restricted` enforced, a default-deny
# NetworkPolicy (each service's chart then allows only its own traffic), and the secrets the
# services mount: per service the application user's database password (<service>-db) and, for
# the release, the migration user's (<service>-db-migration). The passwords are write-only: they
# reach the cluster (where GKE encrypts Secrets with the KMS key) but never Terraform's plan or state.

resource "kubernetes_namespace_v1" "this" {
  metadata {
    name = var.namespace
    labels = merge(var.labels, {
      "pod-security.kubernetes.io/enforce"         = "restricted"
      "pod-security.kubernetes.io/enforce-version" = "latest"
      "pod-security.kubernetes.io/audit"           = "restricted"
      "pod-security.kubernetes.io/warn"            = "restricted"
    })
  }
}

resource "kubernetes_network_policy_v1" "default_deny" {
  metadata {
    name      = "default-deny-all"
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = var.labels
  }

  spec {
    pod_selector {}
    policy_types = ["Ingress", "Egress"]
  }
}

resource "kubernetes_secret_v1" "database" {
  for_each = var.database_users

  metadata {
    name      = "${each.key}-db"
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = merge(var.labels, { "io.fintech-release/service" = each.key })
  }

  # Only the password: user, database and host are not secret and come with the chart's values.
  data_wo          = { password = var.database_passwords["${each.key}/application"] }
  data_wo_revision = var.database_password_version
}

resource "kubernetes_secret_v1" "migration" {
  for_each = var.database_users

  metadata {
    name      = "${each.key}-db-migration"
    namespace = kubernetes_namespace_v1.this.metadata[0].name
    labels    = merge(var.labels, { "io.fintech-release/service" = each.key })
  }

  data_wo          = { password = var.database_passwords["${each.key}/migration"] }
  data_wo_revision = var.database_password_version
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
