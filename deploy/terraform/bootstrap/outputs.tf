output "state_bucket" {
  description = "Name of the state bucket: terraform init -backend-config=bucket=<this> in each environment."
  value       = module.state_bucket.name
}

output "gke_secrets_keys" {
  description = "KMS key by environment: gke_database_encryption_key in environments/<env>.tfvars."
  value       = module.kms.gke_secrets_keys
}

output "artifact_registry_repository" {
  description = "Repository id: artifact_registry_repository in environments/<env>.tfvars."
  value       = module.artifact_registry.id
}

output "image_repository_url" {
  description = "Where images are pushed: <location>-docker.pkg.dev/<project>/<repository>/<service>."
  value       = module.artifact_registry.url
}
