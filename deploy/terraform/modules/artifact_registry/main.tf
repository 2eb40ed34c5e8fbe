# The Docker repository every environment pulls from: images are pushed once, tagged with their
# artifact version (immutable: a tag never moves to another digest), and promoted from staging to
# production by digest. Each environment grants its own nodes read access (environment root, main.tf).
#
# Cleanup never deletes an image an environment may run: every image a release deploys is tagged
# (its artifact version), and tagged versions are kept without limit (KEEP wins over DELETE).
# What is deleted is untagged (dangling) manifests older than untagged_retention, e.g. the remains of
# an interrupted push; the most recent keep_recent versions of each image are kept whatever else holds.

resource "google_artifact_registry_repository" "docker" {
  project       = var.project_id
  location      = var.location
  repository_id = var.repository_id
  description   = "fintech-release service images (immutable tags, promoted by digest)"
  format        = "DOCKER"
  labels        = var.labels
  kms_key_name  = var.kms_key_name

  docker_config {
    immutable_tags = true
  }

  cleanup_policy_dry_run = var.cleanup_dry_run

  cleanup_policies {
    id     = "keep-tagged-versions"
    action = "KEEP"
    condition {
      tag_state = "TAGGED"
    }
  }

  cleanup_policies {
    id     = "keep-most-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = var.keep_recent
    }
  }

  cleanup_policies {
    id     = "delete-old-untagged"
    action = "DELETE"
    condition {
      tag_state  = "UNTAGGED"
      older_than = var.untagged_retention
    }
  }
}

resource "google_artifact_registry_repository_iam_member" "writers" {
  for_each   = toset(var.writers)
  project    = var.project_id
  location   = google_artifact_registry_repository.docker.location
  repository = google_artifact_registry_repository.docker.name
  role       = "roles/artifactregistry.writer"
  member     = each.value
}
