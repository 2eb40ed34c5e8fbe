# One environment's infrastructure, for ci, staging and production alike: network, GKE, Cloud SQL
# (root password from Secret Manager), Redis and Pub/Sub, then, inside the new cluster, the services'
# namespace and secrets. What differs per environment is ../environments/<env>.tfvars and the state
# prefix given at init.

locals {
  name   = "${var.name_prefix}-${var.environment}"
  labels = merge(var.labels, { environment = var.environment, managed-by = "terraform" })
}

provider "google" {
  project = var.project_id
  region  = var.region
}

module "network" {
  source        = "../modules/network"
  project_id    = var.project_id
  region        = var.region
  name          = local.name
  nodes_cidr    = var.nodes_cidr
  pods_cidr     = var.pods_cidr
  services_cidr = var.services_cidr
}

module "gke" {
  source                     = "../modules/gke"
  project_id                 = var.project_id
  name                       = local.name
  location                   = var.gke_location
  network_name               = module.network.network_name
  subnetwork_name            = module.network.subnetwork_name
  pods_range_name            = module.network.pods_range_name
  services_range_name        = module.network.services_range_name
  master_cidr                = var.master_cidr
  master_authorized_networks = var.master_authorized_networks
  release_channel            = var.gke_release_channel
  min_nodes                  = var.gke_min_nodes
  max_nodes                  = var.gke_max_nodes
  machine_type               = var.gke_machine_type
  labels                     = local.labels
  deletion_protection        = var.deletion_protection
  workload_namespace         = var.k8s_namespace
  workload_service_account   = var.k8s_service_account
}

data "google_secret_manager_secret_version" "cloudsql_root_password" {
  project = var.project_id
  secret  = var.cloudsql_root_password_secret
}

module "cloudsql" {
  source                = "../modules/cloudsql"
  project_id            = var.project_id
  region                = var.region
  name                  = local.name
  network_id            = module.network.network_id
  tier                  = var.cloudsql_tier
  deletion_protection   = var.deletion_protection
  high_availability     = var.cloudsql_high_availability
  backups_enabled       = var.cloudsql_backups_enabled
  backup_start_time     = var.cloudsql_backup_start_time
  retained_backups      = var.cloudsql_retained_backups
  failover_replica      = var.cloudsql_failover_replica
  failover_replica_zone = var.cloudsql_failover_replica_zone
  labels                = local.labels
  root_password         = data.google_secret_manager_secret_version.cloudsql_root_password.secret_data
  proxy_user            = var.cloudsql_proxy_user
  proxy_password        = var.cloudsql_proxy_password

  # The private IP needs the private service access peering (in the network module) first.
  depends_on = [module.network]
}

module "redis" {
  source         = "../modules/redis"
  project_id     = var.project_id
  region         = var.region
  name           = local.name
  network_id     = module.network.network_id
  tier           = var.redis_tier
  memory_size_gb = var.redis_memory_size_gb
  labels         = local.labels

  depends_on = [module.network]
}

module "pubsub" {
  source      = "../modules/pubsub"
  project_id  = var.project_id
  name_prefix = local.name
  topics      = var.pubsub_topics
  labels      = local.labels
}

data "google_client_config" "current" {}

provider "kubernetes" {
  host                   = "https://${module.gke.endpoint}"
  token                  = data.google_client_config.current.access_token
  cluster_ca_certificate = base64decode(module.gke.ca_certificate)
}

module "k8s_secrets" {
  source                    = "../modules/k8s_secrets"
  project_id                = var.project_id
  namespace                 = var.k8s_namespace
  service_account_name      = var.k8s_service_account
  gcp_service_account_email = module.gke.workload_service_account_email
  cloudsql_connection_name  = module.cloudsql.connection_name
  cloudsql_user             = module.cloudsql.proxy_user
  cloudsql_password         = var.cloudsql_proxy_password
  pubsub_topics             = module.pubsub.topics
  pubsub_subscriptions      = module.pubsub.subscriptions
  labels                    = local.labels
}
