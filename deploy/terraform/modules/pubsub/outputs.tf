output "topics" {
  description = "Full topic names by short name."
  value       = { for key, topic in google_pubsub_topic.this : key => topic.name }
}

output "subscriptions" {
  description = "Full subscription names by short name."
  value       = { for key, subscription in google_pubsub_subscription.this : key => subscription.name }
}
