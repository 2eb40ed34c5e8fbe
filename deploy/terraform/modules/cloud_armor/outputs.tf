output "policy_name" {
  description = "Name of the security policy (BackendConfig spec.securityPolicy.name)."
  value       = google_compute_security_policy.edge.name
}
