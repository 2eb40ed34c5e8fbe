# One environment's infrastructure: the platform module (network, GKE, Cloud SQL, Redis, Pub/Sub)
# and, inside the new cluster, the services' namespace and secrets. This file is the same in
# ci, staging and production; terraform.tfvars is what differs.

provider "google" {
  project = var.project_id
  region  = var.region
}

module "platform" {
  source                         = "../../modules/platform"
  project_id                     = var.project_id
  region                         = var.region
  environment                    = var.environment
  name_prefix                    = var.name_prefix
  labels                         = var.labels
  deletion_protection            = var.deletion_protection
  nodes_cidr                     = var.nodes_cidr
  pods_cidr                      = var.pods_cidr
  services_cidr                  = var.services_cidr
  master_cidr                    = var.master_cidr
  master_authorized_networks     = var.master_authorized_networks
  gke_location                   = var.gke_location
  gke_release_channel            = var.gke_release_channel
  gke_min_nodes                  = var.gke_min_nodes
  gke_max_nodes                  = var.gke_max_nodes
  gke_machine_type               = var.gke_machine_type
  k8s_namespace                  = var.k8s_namespace
  k8s_service_account            = var.k8s_service_account
  cloudsql_tier                  = var.cloudsql_tier
  cloudsql_high_availability     = var.cloudsql_high_availability
  cloudsql_backups_enabled       = var.cloudsql_backups_enabled
  cloudsql_backup_start_time     = var.cloudsql_backup_start_time
  cloudsql_retained_backups      = var.cloudsql_retained_backups
  cloudsql_failover_replica      = var.cloudsql_failover_replica
  cloudsql_failover_replica_zone = var.cloudsql_failover_replica_zone
  cloudsql_root_password_secret  = var.cloudsql_root_password_secret
  cloudsql_proxy_user            = var.cloudsql_proxy_user
  cloudsql_proxy_password        = var.cloudsql_proxy_password
  redis_tier                     = var.redis_tier
  redis_memory_size_gb           = var.redis_memory_size_gb
  pubsub_topics                  = var.pubsub_topics
}

data "google_client_config" "current" {}

provider "kubernetes" {
  host                   = "https://${module.platform.cluster_endpoint}"
  token                  = data.google_client_config.current.access_token
  cluster_ca_certificate = base64decode(module.platform.cluster_ca_certificate)
}

module "k8s_secrets" {
  source                    = "../../modules/k8s_secrets"
  project_id                = var.project_id
  namespace                 = var.k8s_namespace
  service_account_name      = var.k8s_service_account
  gcp_service_account_email = module.platform.workload_service_account_email
  cloudsql_connection_name  = module.platform.cloudsql_instance_connection_name
  cloudsql_user             = module.platform.cloudsql_proxy_user
  cloudsql_password         = var.cloudsql_proxy_password
  pubsub_topics             = module.platform.pubsub_topics
  pubsub_subscriptions      = module.platform.pubsub_subscriptions
  labels                    = { environment = var.environment, managed-by = "terraform" }
}
