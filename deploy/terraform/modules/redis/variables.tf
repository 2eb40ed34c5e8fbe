variable "project_id" {
  description = "Google Cloud project of the instance."
  type        = string
}

variable "region" {
  description = "Region of the instance."
  type        = string
}

variable "name" {
  description = "Instance name."
  type        = string
}

variable "network_id" {
  description = "VPC (with private service access) the instance is reachable from."
  type        = string
}

variable "tier" {
  description = "BASIC (one node) or STANDARD_HA (replicated, automatic failover)."
  type        = string
  default     = "BASIC"

  validation {
    condition     = contains(["BASIC", "STANDARD_HA"], var.tier)
    error_message = "tier must be BASIC or STANDARD_HA."
  }
}

variable "memory_size_gb" {
  description = "Memory of the instance in GB."
  type        = number
  default     = 1
}

variable "redis_version" {
  description = "Redis version, e.g. REDIS_7_0."
  type        = string
  default     = "REDIS_7_0"
}

variable "labels" {
  description = "Labels on the instance."
  type        = map(string)
  default     = {}
}
