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
