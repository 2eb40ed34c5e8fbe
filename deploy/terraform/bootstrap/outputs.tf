output "state_bucket" {
  description = "Name of the state bucket: terraform init -backend-config=bucket=<this> in each environment."
  value       = module.state_bucket.name
}
