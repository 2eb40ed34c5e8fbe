variable "project_id" {
  description = "Google Cloud project of the environment."
  type        = string
}

variable "environment" {
  description = "Environment name, in metric and alert names."
  type        = string
}

variable "namespace" {
  description = "Kubernetes namespace of the services."
  type        = string
}

variable "emails" {
  description = "Who is notified: the release's email group (release.yaml notifications / the environment's notify)."
  type        = list(string)
}

variable "http_5xx_threshold" {
  description = "5xx answers of one service within the window that make a burst."
  type        = number
  default     = 20
}

variable "crash_loop_threshold" {
  description = "Back-off restarts of one pod within the window that raise the alert."
  type        = number
  default     = 2
}

variable "window" {
  description = "Alignment window of both alerts, e.g. 300s."
  type        = string
  default     = "300s"
}

variable "labels" {
  description = "User labels on the alert policies."
  type        = map(string)
  default     = {}
}
