variable "project_id" {
  description = "Google Cloud project of the cluster."
  type        = string
}

variable "name" {
  description = "Cluster name; the node pool and service accounts are named after it (at most 21 characters)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,20}$", var.name))
    error_message = "name: lower-case letters, digits and dashes, starting with a letter, at most 21 characters."
  }
}

variable "location" {
  description = "A region (regional cluster, nodes in three zones) or a zone (zonal cluster, e.g. for ci)."
  type        = string
}

variable "network_name" {
  description = "VPC the cluster joins."
  type        = string
}

variable "subnetwork_name" {
  description = "Subnet of the nodes."
  type        = string
}

variable "pods_range_name" {
  description = "Secondary range of the subnet used for pods."
  type        = string
}

variable "services_range_name" {
  description = "Secondary range of the subnet used for services."
  type        = string
}

variable "master_cidr" {
  description = "A /28 for the control plane's private endpoint."
  type        = string
}

variable "master_authorized_networks" {
  description = "CIDR blocks allowed to reach the control plane, keyed by a display name."
  type        = map(string)
  default     = {}
}

variable "release_channel" {
  description = "GKE release channel: RAPID, REGULAR or STABLE."
  type        = string
  default     = "REGULAR"
}

variable "min_nodes" {
  description = "Fewest nodes in the pool across all its zones (cluster autoscaler floor)."
  type        = number

  validation {
    condition     = var.min_nodes >= 0
    error_message = "min_nodes must be 0 or more."
  }
}

variable "max_nodes" {
  description = "Most nodes in the pool across all its zones (cluster autoscaler ceiling)."
  type        = number

  validation {
    condition     = var.max_nodes >= 1
    error_message = "max_nodes must be at least 1."
  }
}

variable "machine_type" {
  description = "Machine type of the nodes."
  type        = string
  default     = "e2-standard-4"
}

variable "disk_size_gb" {
  description = "Boot disk size of each node in GB."
  type        = number
  default     = 50
}

variable "labels" {
  description = "Kubernetes labels put on every node."
  type        = map(string)
  default     = {}
}

variable "deletion_protection" {
  description = "Refuse to destroy the cluster (true for long-lived environments)."
  type        = bool
}

variable "private_endpoint" {
  description = "Control plane on its private endpoint only (reached from the VPC or a peered network)."
  type        = bool
  default     = false
}

variable "database_encryption_key" {
  description = "Cloud KMS key (projects/*/locations/*/keyRings/*/cryptoKeys/*) that encrypts Kubernetes Secrets."
  type        = string
}
