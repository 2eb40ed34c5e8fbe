variable "project_id" {
  description = "Google Cloud project of the instance."
  type        = string
}

variable "region" {
  description = "Region of the instance."
  type        = string
}

variable "name" {
  description = "Instance name prefix; a random suffix is appended because Cloud SQL reserves deleted names."
  type        = string
}

variable "network_id" {
  description = "VPC (with private service access) where the instance gets its private IP."
  type        = string
}

variable "tier" {
  description = "Machine tier, e.g. db-n1-standard-1."
  type        = string
}

variable "deletion_protection" {
  description = "Refuse to destroy the instance (true for long-lived environments)."
  type        = bool
}

variable "high_availability" {
  description = "REGIONAL availability: a standby in another zone with automatic failover."
  type        = bool
  default     = false
}

variable "backups_enabled" {
  description = "Daily automated backups and binary logging (point-in-time recovery, needed by replicas)."
  type        = bool
  default     = false
}

variable "backup_start_time" {
  description = "Start of the daily backup window, HH:MM in UTC."
  type        = string
  default     = "02:00"

  validation {
    condition     = can(regex("^([01][0-9]|2[0-3]):[0-5][0-9]$", var.backup_start_time))
    error_message = "backup_start_time must be HH:MM (UTC), e.g. 02:00."
  }
}

variable "retained_backups" {
  description = "Number of automated backups kept."
  type        = number
  default     = 7
}

variable "failover_replica" {
  description = "Create a replica of the primary in failover_replica_zone that can be promoted if the primary fails."
  type        = bool
  default     = false
}

variable "failover_replica_zone" {
  description = "Zone of the failover replica (another zone of the region than the primary's)."
  type        = string
  default     = null
}

variable "maintenance_day" {
  description = "Day of the maintenance window, 1 (Monday) to 7 (Sunday)."
  type        = number
  default     = 7
}

variable "maintenance_hour" {
  description = "Hour (UTC) of the maintenance window."
  type        = number
  default     = 3
}

variable "labels" {
  description = "Labels on the instances."
  type        = map(string)
  default     = {}
}

variable "root_password" {
  description = "Password of the MySQL root user (from Secret Manager; never in code or tfvars)."
  type        = string
  sensitive   = true
}

variable "proxy_user" {
  description = "MySQL user the services connect as through the Cloud SQL proxy."
  type        = string
  default     = "proxy"
}

variable "proxy_user_host" {
  description = "Host part of the proxy user ('%' or 'cloudsqlproxy~%')."
  type        = string
  default     = "%"
}

variable "proxy_password" {
  description = "Password of the proxy user (TF_VAR_ or Secret Manager; never in code or tfvars)."
  type        = string
  sensitive   = true
}
