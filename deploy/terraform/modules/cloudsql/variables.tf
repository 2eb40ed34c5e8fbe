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

variable "database_version" {
  description = "MYSQL_8_0 (default), MYSQL_8_4, or MYSQL_5_7 for an estate not yet migrated (past end of life)."
  type        = string
  default     = "MYSQL_8_0"

  validation {
    condition     = contains(["MYSQL_8_0", "MYSQL_8_4", "MYSQL_5_7"], var.database_version)
    error_message = "database_version must be MYSQL_8_0, MYSQL_8_4 or MYSQL_5_7."
  }
}

variable "database_flags" {
  description = "Extra MySQL flags; they override the hardening defaults (local_infile, skip_show_database, audit)."
  type        = map(string)
  default     = {}
}

variable "user_host" {
  description = "Host part of every user: 'cloudsqlproxy~%' admits only connections through the proxy/connectors."
  type        = string
  default     = "cloudsqlproxy~%"
}

variable "admin_user" {
  description = "MySQL user of the release: creates the databases, grants the service users, migrates."
  type        = string
  default     = "proxy"
}

variable "admin_password" {
  description = "Password of the admin user (ephemeral: written to Cloud SQL only, never to plan or state)."
  type        = string
  sensitive   = true
  ephemeral   = true
}

variable "admin_password_version" {
  description = "Raise by one to send a new admin_password to Cloud SQL (write-only attributes)."
  type        = number
  default     = 1
}

variable "service_databases" {
  description = "Each service's database short name (users <db>_mig and <db>_app), by service name."
  type        = map(string)
  default     = {}
}

variable "service_passwords" {
  description = "Passwords by '<service>/migration' and '<service>/application' (ephemeral, write-only)."
  type        = map(string)
  sensitive   = true
  ephemeral   = true
}

variable "service_password_version" {
  description = "Raise by one to write new service passwords to Cloud SQL (and to the Kubernetes secrets)."
  type        = number
  default     = 1
}
