variable "project_id" {
  description = "Google Cloud project that holds the keys."
  type        = string
}

variable "environments" {
  description = "Environments that get a key ring (ci, staging, production)."
  type        = list(string)
}

variable "name_prefix" {
  description = "Prefix of the key ring names (<prefix>-<environment>)."
  type        = string
  default     = "fintech"
}

variable "location" {
  description = "Location of the key rings: the region of the environments' clusters."
  type        = string
}

variable "rotation_period" {
  description = "How often a new key version becomes primary, in seconds with an s suffix (90 days)."
  type        = string
  default     = "7776000s"
}

variable "labels" {
  description = "Labels on the keys."
  type        = map(string)
  default     = {}
}
