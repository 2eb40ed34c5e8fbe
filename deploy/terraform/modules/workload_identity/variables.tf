variable "project_id" {
  description = "Google Cloud project of the environment."
  type        = string
}

variable "name" {
  description = "Prefix of the service accounts (<name>-<service>, at most 30 characters)."
  type        = string
}

variable "namespace" {
  description = "Kubernetes namespace of the services; each service's Kubernetes service account is named after it."
  type        = string
}

variable "services" {
  description = "Per service: whether it uses the database and the bucket, its topics, subscriptions and Endpoints."
  type = map(object({
    database   = bool
    bucket     = bool
    publishes  = list(string)
    subscribes = list(string)
    endpoints  = bool
  }))
}

variable "cloudsql_instance_name" {
  description = "Name of the Cloud SQL instance the services may connect to."
  type        = string
}

variable "topics" {
  description = "Full Pub/Sub topic names by short name."
  type        = map(string)
}

variable "subscriptions" {
  description = "Full Pub/Sub subscription names by short name."
  type        = map(string)
}

variable "bucket_name" {
  description = "The environment's application bucket."
  type        = string
}
