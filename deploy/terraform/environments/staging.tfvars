# staging: long-lived, converged on every master build; backups on, no failover replica.
# Used with the one root ../environment: terraform plan -var-file=../environments/staging.tfvars
# No secrets here: the MySQL root password is read from Secret Manager (cloudsql_root_password_secret
# names the secret) and the proxy user's password comes from TF_VAR_cloudsql_proxy_password.

project_id  = "fintech-release-staging"
region      = "europe-west1"
environment = "staging"

deletion_protection = true

nodes_cidr    = "10.20.0.0/20"
pods_cidr     = "10.22.0.0/16"
services_cidr = "10.23.0.0/20"
master_cidr   = "172.16.0.16/28"

gke_location     = "europe-west1"
gke_min_nodes    = 1
gke_max_nodes    = 6
gke_machine_type = "e2-standard-4"

k8s_namespace       = "fintech"
k8s_service_account = "fintech-services"

cloudsql_tier                  = "db-n1-standard-1"
cloudsql_high_availability     = false
cloudsql_backups_enabled       = true
cloudsql_backup_start_time     = "02:00"
cloudsql_retained_backups      = 14
cloudsql_failover_replica      = false
cloudsql_failover_replica_zone = null
cloudsql_root_password_secret  = "fintech-staging-mysql-root-password"
cloudsql_proxy_user            = "proxy"

redis_tier           = "BASIC"
redis_memory_size_gb = 1

pubsub_topics = {
  payment-events = {
    subscriptions = ["accounts-payment-events"]
  }
  notifications = {
    subscriptions = ["contact-us-notifications"]
  }
}
