variable "project_id" {
  description = "Google Cloud project of the bucket."
  type        = string
}

variable "name" {
  description = "Globally unique bucket name."
  type        = string
}

variable "location" {
  description = "Bucket location (a region or multi-region)."
  type        = string
}

variable "kept_versions" {
  description = "Older versions of each state file kept before they are deleted."
  type        = number
  default     = 20
}

variable "labels" {
  description = "Labels on the bucket."
  type        = map(string)
  default     = {}
}
