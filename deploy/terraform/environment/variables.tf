variable "project_id" {
  description = "Google Cloud project of the environment."
  type        = string
}

variable "region" {
  description = "Region of the network, Cloud SQL and Redis."
  type        = string
}

variable "environment" {
  description = "Environment name (ci, staging, production); part of every resource name."
  type        = string

  validation {
    condition     = contains(["ci", "staging", "production"], var.environment)
    error_message = "environment must be ci, staging or production."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name."
  type        = string
  default     = "fintech"
}

variable "labels" {
  description = "Labels on every resource that takes labels (environment and managed-by are added)."
  type        = map(string)
  default     = {}
}

variable "deletion_protection" {
  description = "Protect the cluster and the database from destroy (false for ci, which is torn down)."
  type        = bool
}

variable "nodes_cidr" {
  description = "Primary range of the nodes subnet."
  type        = string
}

variable "pods_cidr" {
  description = "Secondary range for pods."
  type        = string
}

variable "services_cidr" {
  description = "Secondary range for services."
  type        = string
}

variable "master_cidr" {
  description = "A /28 for the GKE control plane."
  type        = string
}

variable "master_authorized_networks" {
  description = "CIDR blocks allowed to reach the GKE control plane, keyed by a display name ({} with a private endpoint)."
  type        = map(string)

  validation {
    condition     = var.environment != "production" || var.gke_private_endpoint || length(var.master_authorized_networks) > 0
    error_message = "production needs gke_private_endpoint = true or at least one master_authorized_networks entry: its control plane is never open to the internet."
  }
}

variable "gke_private_endpoint" {
  description = "Serve the GKE control plane on its private endpoint only (reach it from the VPC or a peered network)."
  type        = bool
}

variable "gke_database_encryption_key" {
  description = "Cloud KMS key that encrypts the cluster's Secrets (../bootstrap output gke_secrets_keys[<env>])."
  type        = string
}

variable "artifact_registry_repository" {
  description = "The shared Docker repository the nodes pull from: projects/<p>/locations/<l>/repositories/<r> (../bootstrap)."
  type        = string

  validation {
    condition     = can(regex("^projects/[^/]+/locations/[^/]+/repositories/[^/]+$", var.artifact_registry_repository))
    error_message = "artifact_registry_repository must be projects/<project>/locations/<location>/repositories/<name>."
  }
}

variable "gke_location" {
  description = "Region (regional cluster) or zone (zonal cluster) of GKE."
  type        = string
}

variable "gke_release_channel" {
  description = "GKE release channel."
  type        = string
  default     = "REGULAR"
}

variable "gke_min_nodes" {
  description = "Fewest nodes of the autoscaled node pool."
  type        = number
}

variable "gke_max_nodes" {
  description = "Most nodes of the autoscaled node pool."
  type        = number
}

variable "gke_machine_type" {
  description = "Machine type of the nodes."
  type        = string
}

variable "k8s_namespace" {
  description = "Kubernetes namespace of the services."
  type        = string
}

variable "cloudsql_tier" {
  description = "Cloud SQL machine tier."
  type        = string
}

variable "cloudsql_database_version" {
  description = "MYSQL_8_0 (default) or MYSQL_8_4; MYSQL_5_7 only for an estate not migrated yet (end of life)."
  type        = string
  default     = "MYSQL_8_0"
}

variable "cloudsql_high_availability" {
  description = "REGIONAL availability for the Cloud SQL primary."
  type        = bool
}

variable "cloudsql_backups_enabled" {
  description = "Automated backups and binary logging on the Cloud SQL primary."
  type        = bool
}

variable "cloudsql_backup_start_time" {
  description = "Start of the daily backup window, HH:MM UTC."
  type        = string
}

variable "cloudsql_retained_backups" {
  description = "Automated backups kept."
  type        = number
}

variable "cloudsql_failover_replica" {
  description = "Create a Cloud SQL failover replica."
  type        = bool
}

variable "cloudsql_failover_replica_zone" {
  description = "Zone of the failover replica."
  type        = string
  default     = null
}

variable "cloudsql_proxy_user" {
  description = "The release's MySQL admin user (databases, grants, migrations), through the Cloud SQL connector."
  type        = string
}

variable "cloudsql_proxy_password" {
  description = "Password of the admin user: set TF_VAR_cloudsql_proxy_password, never in tfvars (kept out of plan and state)."
  type        = string
  sensitive   = true
  ephemeral   = true
}

variable "cloudsql_proxy_password_version" {
  description = "Raise by one when cloudsql_proxy_password changes: only then is it sent to Cloud SQL again."
  type        = number
  default     = 1
}

variable "database_password_version" {
  description = "Raise by one to give every service user a new random password (Cloud SQL and the secrets together)."
  type        = number
  default     = 1
}

variable "redis_tier" {
  description = "Memorystore tier: BASIC or STANDARD_HA."
  type        = string
}

variable "redis_memory_size_gb" {
  description = "Memorystore memory in GB."
  type        = number
}

variable "pubsub_topics" {
  description = "Pub/Sub topics by short name, each with its subscriptions' short names."
  type = map(object({
    subscriptions              = optional(list(string), [])
    message_retention_duration = optional(string, "86400s")
  }))
}

variable "services" {
  description = "The services of release.yaml: database short name (null: none), bucket, Pub/Sub use, Cloud Endpoints."
  type = map(object({
    database   = optional(string)
    bucket     = optional(bool, false)
    publishes  = optional(list(string), [])
    subscribes = optional(list(string), [])
    endpoints  = optional(bool, false)
  }))
}

variable "app_bucket_name" {
  description = "Globally unique name of the environment's application bucket."
  type        = string
}

variable "alert_emails" {
  description = "Who gets the 5xx and crash-loop alerts: the release's email group."
  type        = list(string)
}

variable "cloud_armor" {
  description = "Create the Cloud Armor WAF policy for the entry point (attach it as deploy/terraform/README.md says)."
  type        = bool
  default     = false
}
