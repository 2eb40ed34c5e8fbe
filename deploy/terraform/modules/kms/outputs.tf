output "gke_secrets_keys" {
  description = "Key id by environment: set it as gke_database_encryption_key in environments/<env>.tfvars."
  value       = { for environment, key in google_kms_crypto_key.gke_secrets : environment => key.id }
}
