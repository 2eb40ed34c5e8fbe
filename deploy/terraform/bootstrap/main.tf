# Run once per organisation, before any environment: creates what every environment shares and
# what must outlive an environment that is torn down and rebuilt (ci): the GCS bucket that holds
# every environment's Terraform state, the Artifact Registry repository images are pushed to and
# promoted from, and each environment's KMS key for GKE Secrets encryption. Its own (tiny) state
# stays local; keep it with the admin project's administrators, or import again with
# `terraform import` if lost.

locals {
  labels = { managed-by = "terraform", part-of = "fintech-release" }
}

provider "google" {
  project = var.project_id
}

module "state_bucket" {
  source     = "../modules/state_bucket"
  project_id = var.project_id
  name       = var.bucket_name
  location   = var.location
  labels     = merge(local.labels, { purpose = "terraform-state" })
}

module "kms" {
  source       = "../modules/kms"
  project_id   = var.project_id
  environments = var.environments
  location     = var.region
  labels       = local.labels
}

module "artifact_registry" {
  source     = "../modules/artifact_registry"
  project_id = var.project_id
  location   = var.region
  writers    = var.image_pushers
  labels     = local.labels
}
