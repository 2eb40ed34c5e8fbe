variable "project_id" {
  description = "Google Cloud project of the managed services."
  type        = string
}

variable "services" {
  description = "Services with a public API behind Cloud Endpoints."
  type        = list(string)
}

variable "openapi_dir" {
  description = "Folder of the OpenAPI 2.0 files, one <service>.yaml each with host: \"$${host}\"."
  type        = string
}
