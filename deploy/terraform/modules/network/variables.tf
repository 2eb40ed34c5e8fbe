variable "project_id" {
  description = "Google Cloud project that owns the network."
  type        = string
}

variable "region" {
  description = "Region of the subnet, router and NAT."
  type        = string
}

variable "name" {
  description = "Name of the VPC; subnet, ranges, router and NAT are named after it."
  type        = string
}

variable "nodes_cidr" {
  description = "Primary range of the subnet (GKE nodes)."
  type        = string
}

variable "pods_cidr" {
  description = "Secondary range for GKE pods."
  type        = string
}

variable "services_cidr" {
  description = "Secondary range for GKE services."
  type        = string
}

variable "private_services_prefix_length" {
  description = "Prefix length of the range reserved for private service access (Cloud SQL, Memorystore)."
  type        = number
  default     = 20
}

variable "flow_log_sampling" {
  description = "Share of the subnet's flows kept in VPC flow logs (0 to 1)."
  type        = number
  default     = 0.5
}
