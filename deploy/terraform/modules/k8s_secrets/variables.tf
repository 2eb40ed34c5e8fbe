variable "project_id" {
  description = "Google Cloud project of the Pub/Sub topics."
  type        = string
}

variable "namespace" {
  description = "Kubernetes namespace of the services (created here)."
  type        = string
}

variable "database_users" {
  description = "MySQL users by service: {migration, application} (the cloudsql module's service_users)."
  type        = map(object({ migration = string, application = string }))
}

variable "database_passwords" {
  description = "Passwords by '<service>/migration' and '<service>/application' (ephemeral, write-only)."
  type        = map(string)
  sensitive   = true
  ephemeral   = true
}

variable "database_password_version" {
  description = "Raise by one to write new passwords into the secrets (with the Cloud SQL users)."
  type        = number
  default     = 1
}

variable "pubsub_secret_name" {
  description = "Name of the secret with the Pub/Sub project, topics and subscriptions."
  type        = string
  default     = "pubsub"
}

variable "pubsub_topics" {
  description = "Full topic names by short name."
  type        = map(string)
}

variable "pubsub_subscriptions" {
  description = "Full subscription names by short name."
  type        = map(string)
}

variable "labels" {
  description = "Labels on every Kubernetes object created here."
  type        = map(string)
  default     = {}
}
