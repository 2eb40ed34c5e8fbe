output "service_names" {
  description = "Endpoints service name by service (the chart's esp.serviceName)."
  value       = { for service, api in google_endpoints_service.api : service => api.service_name }
}

output "config_ids" {
  description = "Active service configuration id by service."
  value       = { for service, api in google_endpoints_service.api : service => api.config_id }
}
