# Pub/Sub topics and their pull subscriptions, named <prefix>-<topic> and <prefix>-<subscription>.

locals {
  subscriptions = merge([
    for topic, settings in var.topics : {
      for subscription in settings.subscriptions : subscription => topic
    }
  ]...)
}

resource "google_pubsub_topic" "this" {
  for_each                   = var.topics
  project                    = var.project_id
  name                       = "${var.name_prefix}-${each.key}"
  message_retention_duration = each.value.message_retention_duration
  labels                     = var.labels
}

resource "google_pubsub_subscription" "this" {
  for_each                   = local.subscriptions
  project                    = var.project_id
  name                       = "${var.name_prefix}-${each.key}"
  topic                      = google_pubsub_topic.this[each.value].id
  ack_deadline_seconds       = var.ack_deadline_seconds
  message_retention_duration = var.subscription_retention_duration
  labels                     = var.labels

  expiration_policy {
    ttl = ""
  }
}
