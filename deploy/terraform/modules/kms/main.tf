# Per environment, a key ring and the key GKE encrypts Kubernetes Secrets with (application-layer
# Secrets encryption). Created once by the bootstrap, not by the environments: a key ring can never
# be deleted, so an environment that is torn down and rebuilt (ci) reuses its key. Keys rotate
# every rotation_period and are protected from `terraform destroy`.

resource "google_kms_key_ring" "environment" {
  for_each = toset(var.environments)
  project  = var.project_id
  name     = "${var.name_prefix}-${each.key}"
  location = var.location

  lifecycle {
    prevent_destroy = true
  }
}

resource "google_kms_crypto_key" "gke_secrets" {
  for_each        = google_kms_key_ring.environment
  name            = "gke-secrets"
  key_ring        = each.value.id
  rotation_period = var.rotation_period
  purpose         = "ENCRYPT_DECRYPT"
  labels          = var.labels

  lifecycle {
    prevent_destroy = true
  }
}
