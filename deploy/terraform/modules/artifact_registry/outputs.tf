output "id" {
  description = "Repository id, projects/<project>/locations/<location>/repositories/<name>."
  value       = google_artifact_registry_repository.docker.id
}

output "url" {
  description = "Image prefix for release.yaml's registry: <location>-docker.pkg.dev/<project>/<repository>."
  value       = "${google_artifact_registry_repository.docker.location}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.docker.repository_id}"
}
