# Run once per organisation, before any environment: creates the GCS bucket that holds every
# environment's Terraform state. Its own (tiny) state stays local; keep it with the bucket's
# project administrators, or import the bucket again with `terraform import` if lost.

provider "google" {
  project = var.project_id
}

module "state_bucket" {
  source     = "../modules/state_bucket"
  project_id = var.project_id
  name       = var.bucket_name
  location   = var.location
  labels     = { managed-by = "terraform", purpose = "terraform-state" }
}
