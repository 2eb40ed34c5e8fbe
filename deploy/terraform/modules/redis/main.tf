# A Memorystore for Redis instance reachable only from the environment's VPC (private service access).

resource "google_redis_instance" "this" {
  project            = var.project_id
  name               = var.name
  region             = var.region
  tier               = var.tier
  memory_size_gb     = var.memory_size_gb
  redis_version      = var.redis_version
  authorized_network = var.network_id
  connect_mode       = "PRIVATE_SERVICE_ACCESS"
  labels             = var.labels
}
