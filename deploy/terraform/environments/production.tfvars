# production: regional cluster, Cloud SQL with backups, a backup window, regional availability and a failover replica.
# Used with the one root ../environment: terraform plan -var-file=../environments/production.tfvars
# No secrets here: the MySQL root password is read from Secret Manager (cloudsql_root_password_secret
# names the secret) and the proxy user's password comes from TF_VAR_cloudsql_proxy_password.

project_id  = "fintech-release-prod"
region      = "europe-west1"
environment = "production"

deletion_protection = true

nodes_cidr    = "10.30.0.0/20"
pods_cidr     = "10.32.0.0/16"
services_cidr = "10.33.0.0/20"
master_cidr   = "172.16.0.32/28"

gke_location     = "europe-west1"
gke_min_nodes    = 3
gke_max_nodes    = 12
gke_machine_type = "e2-standard-4"

k8s_namespace       = "fintech"
k8s_service_account = "fintech-services"

cloudsql_tier                  = "db-n1-standard-2"
cloudsql_high_availability     = true
cloudsql_backups_enabled       = true
cloudsql_backup_start_time     = "02:00"
cloudsql_retained_backups      = 14
cloudsql_failover_replica      = true
cloudsql_failover_replica_zone = "europe-west1-c"
cloudsql_root_password_secret  = "fintech-production-mysql-root-password"
cloudsql_proxy_user            = "proxy"

redis_tier           = "STANDARD_HA"
redis_memory_size_gb = 2

pubsub_topics = {
  payment-events = {
    subscriptions = ["accounts-payment-events"]
  }
  notifications = {
    subscriptions = ["contact-us-notifications"]
  }
}
