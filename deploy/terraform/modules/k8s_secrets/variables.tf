variable "project_id" {
  description = "Google Cloud project of the Pub/Sub topics."
  type        = string
}

variable "namespace" {
  description = "Kubernetes namespace of the services (created here)."
  type        = string
}

variable "service_account_name" {
  description = "Kubernetes service account of the services, annotated for Workload Identity."
  type        = string
}

variable "gcp_service_account_email" {
  description = "Google service account the Kubernetes service account acts as."
  type        = string
}

variable "cloudsql_secret_name" {
  description = "Name of the secret with the Cloud SQL proxy's connection name and credentials."
  type        = string
  default     = "cloudsql-proxy"
}

variable "cloudsql_connection_name" {
  description = "project:region:instance of the Cloud SQL primary."
  type        = string
}

variable "cloudsql_user" {
  description = "MySQL user the services connect as."
  type        = string
}

variable "cloudsql_password" {
  description = "Password of that user."
  type        = string
  sensitive   = true
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
