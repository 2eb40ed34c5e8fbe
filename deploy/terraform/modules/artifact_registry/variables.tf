variable "project_id" {
  description = "Google Cloud project of the repository."
  type        = string
}

variable "location" {
  description = "Region or multi-region of the repository, e.g. europe-west1."
  type        = string
}

variable "repository_id" {
  description = "Repository name: images are <location>-docker.pkg.dev/<project>/<repository_id>/<service>."
  type        = string
  default     = "fintech-release"
}

variable "kms_key_name" {
  description = "Cloud KMS key for customer-managed encryption (null: Google-managed keys)."
  type        = string
  default     = null
}

variable "keep_recent" {
  description = "Versions of each image kept whatever their tags."
  type        = number
  default     = 20
}

variable "untagged_retention" {
  description = "Age after which an untagged version is deleted, e.g. 1209600s (14 days)."
  type        = string
  default     = "1209600s"
}

variable "cleanup_dry_run" {
  description = "Only log what the cleanup policies would delete."
  type        = bool
  default     = false
}

variable "writers" {
  description = "IAM members that push: the orchestrator's service account (Workload Identity of run pods)."
  type        = list(string)
  default     = []
}

variable "labels" {
  description = "Labels on the repository."
  type        = map(string)
  default     = {}
}
