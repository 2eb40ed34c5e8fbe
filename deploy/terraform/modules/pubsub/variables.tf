variable "project_id" {
  description = "Google Cloud project of the topics."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of every topic and subscription name (the environment's name)."
  type        = string
}

variable "topics" {
  description = "Topics by short name, each with the short names of its subscriptions (unique across topics)."
  type = map(object({
    subscriptions              = optional(list(string), [])
    message_retention_duration = optional(string, "86400s")
  }))
}

variable "ack_deadline_seconds" {
  description = "Acknowledgement deadline of every subscription."
  type        = number
  default     = 20
}

variable "subscription_retention_duration" {
  description = "How long subscriptions keep unacknowledged messages."
  type        = string
  default     = "604800s"
}

variable "labels" {
  description = "Labels on topics and subscriptions."
  type        = map(string)
  default     = {}
}
