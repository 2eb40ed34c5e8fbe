# Cloud Endpoints in front of each service's public API: a managed service
# <service>.endpoints.<project>.cloud.goog configured from the service's OpenAPI 2.0 file
# (<openapi_dir>/<service>.yaml, its host filled in here). The ESPv2 sidecar of the microservice chart
# (esp.enabled) checks requests against it and reports to Service Control.

resource "google_endpoints_service" "api" {
  for_each     = toset(var.services)
  project      = var.project_id
  service_name = "${each.key}.endpoints.${var.project_id}.cloud.goog"
  openapi_config = templatefile("${var.openapi_dir}/${each.key}.yaml", {
    host = "${each.key}.endpoints.${var.project_id}.cloud.goog"
  })
}
