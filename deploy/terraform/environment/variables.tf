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
  description = "CIDR blocks allowed to reach the GKE control plane, keyed by a display name."
  type        = map(string)
  default     = {}
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

variable "k8s_service_account" {
  description = "Kubernetes service account of the services (Workload Identity)."
  type        = string
}

variable "cloudsql_tier" {
  description = "Cloud SQL machine tier."
  type        = string
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

variable "cloudsql_root_password_secret" {
  description = "Secret Manager secret (id or projects/*/secrets/* name) holding the MySQL root password."
  type        = string
}

variable "cloudsql_proxy_user" {
  description = "MySQL user the services connect as through the Cloud SQL proxy."
  type        = string
}

variable "cloudsql_proxy_password" {
  description = "Password of the proxy user: set TF_VAR_cloudsql_proxy_password, never in tfvars."
  type        = string
  sensitive   = true
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
