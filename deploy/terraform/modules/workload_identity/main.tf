# One Google service account per service, acting for the Kubernetes service account the
# microservice chart creates for it (<namespace>/<service>), with only what that service needs:
# connect to the environment's Cloud SQL instance (its database privileges are MySQL's), publish to
# its own Pub/Sub topics, pull from its own subscriptions, read and write the application bucket,
# and, with Cloud Endpoints, report to Service Control. No keys: Workload Identity only.

locals {
  publishes = merge([
    for service, spec in var.services : { for topic in spec.publishes : "${service}/${topic}" => { service = service, topic = topic } }
  ]...)
  subscribes = merge([
    for service, spec in var.services : {
      for subscription in spec.subscribes : "${service}/${subscription}" => { service = service, subscription = subscription }
    }
  ]...)
  endpoints_roles = ["roles/servicemanagement.serviceController", "roles/cloudtrace.agent"]
  endpoints = merge([
    for service, spec in var.services : { for role in local.endpoints_roles : "${service}/${role}" => { service = service, role = role } }
    if spec.endpoints
  ]...)
}

resource "google_service_account" "service" {
  for_each     = var.services
  project      = var.project_id
  account_id   = "${var.name}-${each.key}"
  display_name = "${each.key} in ${var.name} (Workload Identity)"

  lifecycle {
    precondition {
      condition     = length("${var.name}-${each.key}") <= 30
      error_message = "Service account id ${var.name}-${each.key} is longer than 30 characters: shorten name_prefix or the service name."
    }
  }
}

resource "google_service_account_iam_member" "workload_identity" {
  for_each           = var.services
  service_account_id = google_service_account.service[each.key].name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.project_id}.svc.id.goog[${var.namespace}/${each.key}]"
}

# Cloud SQL client on this environment's instance only (an IAM condition on the instance's name).
resource "google_project_iam_member" "cloudsql_client" {
  for_each = { for service, spec in var.services : service => spec if spec.database }
  project  = var.project_id
  role     = "roles/cloudsql.client"
  member   = "serviceAccount:${google_service_account.service[each.key].email}"

  condition {
    title      = "only-${var.cloudsql_instance_name}"
    expression = "resource.name == \"projects/${var.project_id}/instances/${var.cloudsql_instance_name}\""
  }
}

resource "google_pubsub_topic_iam_member" "publisher" {
  for_each = local.publishes
  project  = var.project_id
  topic    = var.topics[each.value.topic]
  role     = "roles/pubsub.publisher"
  member   = "serviceAccount:${google_service_account.service[each.value.service].email}"
}

resource "google_pubsub_subscription_iam_member" "subscriber" {
  for_each     = local.subscribes
  project      = var.project_id
  subscription = var.subscriptions[each.value.subscription]
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${google_service_account.service[each.value.service].email}"
}

resource "google_storage_bucket_iam_member" "objects" {
  for_each = { for service, spec in var.services : service => spec if spec.bucket }
  bucket   = var.bucket_name
  role     = "roles/storage.objectUser"
  member   = "serviceAccount:${google_service_account.service[each.key].email}"
}

resource "google_project_iam_member" "endpoints" {
  for_each = local.endpoints
  project  = var.project_id
  role     = each.value.role
  member   = "serviceAccount:${google_service_account.service[each.value.service].email}"
}
