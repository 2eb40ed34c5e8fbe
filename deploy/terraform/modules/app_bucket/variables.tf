variable "project_id" {
  description = "Google Cloud project of the bucket."
  type        = string
}

variable "name" {
  description = "Globally unique bucket name."
  type        = string
}

variable "location" {
  description = "Bucket location (the environment's region)."
  type        = string
}

variable "noncurrent_days" {
  description = "Days an overwritten or deleted object version is kept before it is deleted."
  type        = number
  default     = 30
}

variable "force_destroy" {
  description = "Delete the objects with the bucket on destroy (only for ephemeral environments)."
  type        = bool
  default     = false
}

variable "kms_key_name" {
  description = "Cloud KMS key for customer-managed encryption (null: Google-managed keys)."
  type        = string
  default     = null
}

variable "labels" {
  description = "Labels on the bucket."
  type        = map(string)
  default     = {}
}
