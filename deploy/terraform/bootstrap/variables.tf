variable "project_id" {
  description = "Google Cloud project that owns the state bucket."
  type        = string
}

variable "bucket_name" {
  description = "Globally unique name of the state bucket (given to each environment at terraform init)."
  type        = string
}

variable "location" {
  description = "Location of the state bucket (region or multi-region)."
  type        = string
  default     = "EU"
}

variable "region" {
  description = "Region of the Artifact Registry repository and the KMS key rings (the clusters' region)."
  type        = string
}

variable "environments" {
  description = "Environments that get a KMS key for their cluster's Secrets."
  type        = list(string)
  default     = ["ci", "staging", "production"]
}

variable "image_pushers" {
  description = "IAM members that push images (the orchestrator's service account); the environments' nodes only pull."
  type        = list(string)
  default     = []
}
