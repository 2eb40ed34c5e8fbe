# One environment's infrastructure, for ci, staging and production alike: network, GKE, Cloud SQL,
# Redis, Pub/Sub, the application bucket, alerts, Cloud Endpoints, the optional Cloud Armor policy,
# one workload identity per service, then, inside the new cluster, the services' namespace and
# secrets. What differs per environment is ../environments/<env>.tfvars and the state prefix given
# at init. Shared by every environment and created by ../bootstrap: the state bucket, the Artifact
# Registry repository and each environment's KMS key.
#
# Passwords never enter the plan or the state: the admin user's comes from the ephemeral variable
# cloudsql_proxy_password, the services' are ephemeral random passwords written only to Cloud SQL
# and the Kubernetes secrets (write-only attributes; raise database_password_version to rotate).

locals {
  name   = "${var.name_prefix}-${var.environment}"
  labels = merge(var.labels, { environment = var.environment, managed-by = "terraform" })
  # Services with a database get a migration and an application user, each with its own password.
  databases = { for service, spec in var.services : service => spec.database if spec.database != null }
  database_user_keys = toset(flatten([
    for service in keys(local.databases) : ["${service}/migration", "${service}/application"]
  ]))
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
  private_endpoint           = var.gke_private_endpoint
  database_encryption_key    = var.gke_database_encryption_key
  release_channel            = var.gke_release_channel
  min_nodes                  = var.gke_min_nodes
  max_nodes                  = var.gke_max_nodes
  machine_type               = var.gke_machine_type
  labels                     = local.labels
  deletion_protection        = var.deletion_protection
}

# The nodes pull the services' images from the shared repository (and nothing else there).
resource "google_artifact_registry_repository_iam_member" "nodes" {
  project    = split("/", var.artifact_registry_repository)[1]
  location   = split("/", var.artifact_registry_repository)[3]
  repository = split("/", var.artifact_registry_repository)[5]
  role       = "roles/artifactregistry.reader"
  member     = "serviceAccount:${module.gke.nodes_service_account_email}"
}

ephemeral "random_password" "database" {
  for_each = local.database_user_keys
  length   = 40
  special  = false
}

module "cloudsql" {
  source                   = "../modules/cloudsql"
  project_id               = var.project_id
  region                   = var.region
  name                     = local.name
  network_id               = module.network.network_id
  tier                     = var.cloudsql_tier
  database_version         = var.cloudsql_database_version
  deletion_protection      = var.deletion_protection
  high_availability        = var.cloudsql_high_availability
  backups_enabled          = var.cloudsql_backups_enabled
  backup_start_time        = var.cloudsql_backup_start_time
  retained_backups         = var.cloudsql_retained_backups
  failover_replica         = var.cloudsql_failover_replica
  failover_replica_zone    = var.cloudsql_failover_replica_zone
  labels                   = local.labels
  admin_user               = var.cloudsql_proxy_user
  admin_password           = var.cloudsql_proxy_password
  admin_password_version   = var.cloudsql_proxy_password_version
  service_databases        = local.databases
  service_passwords        = { for key, password in ephemeral.random_password.database : key => password.result }
  service_password_version = var.database_password_version

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

module "app_bucket" {
  source        = "../modules/app_bucket"
  project_id    = var.project_id
  name          = var.app_bucket_name
  location      = var.region
  force_destroy = !var.deletion_protection
  labels        = local.labels
}

module "workload_identity" {
  source                 = "../modules/workload_identity"
  project_id             = var.project_id
  name                   = local.name
  namespace              = var.k8s_namespace
  cloudsql_instance_name = module.cloudsql.instance_name
  topics                 = module.pubsub.topics
  subscriptions          = module.pubsub.subscriptions
  bucket_name            = module.app_bucket.name
  services = {
    for service, spec in var.services : service => {
      database   = spec.database != null
      bucket     = spec.bucket
      publishes  = spec.publishes
      subscribes = spec.subscribes
      endpoints  = spec.endpoints
    }
  }
}

module "monitoring" {
  source      = "../modules/monitoring"
  project_id  = var.project_id
  environment = var.environment
  namespace   = var.k8s_namespace
  emails      = var.alert_emails
  labels      = local.labels
}

module "endpoints" {
  source      = "../modules/endpoints"
  project_id  = var.project_id
  services    = [for service, spec in var.services : service if spec.endpoints]
  openapi_dir = "${path.module}/../openapi"
}

module "cloud_armor" {
  source     = "../modules/cloud_armor"
  count      = var.cloud_armor ? 1 : 0
  project_id = var.project_id
  name       = local.name
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
  database_users            = module.cloudsql.service_users
  database_passwords        = { for key, password in ephemeral.random_password.database : key => password.result }
  database_password_version = var.database_password_version
  pubsub_topics             = module.pubsub.topics
  pubsub_subscriptions      = module.pubsub.subscriptions
  labels                    = local.labels
}
