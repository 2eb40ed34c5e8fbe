# Cloud SQL for MySQL 5.7 on a private IP only, with a root and a proxy user. Backups, the backup
# window, binary logging (point-in-time recovery), regional availability and a failover replica
# are switched by variables: production turns them on, ci leaves them off.

# Cloud SQL keeps a deleted instance's name reserved for up to a week: a suffix lets ci recreate.
resource "random_id" "suffix" {
  byte_length = 2
  keepers = {
    name = var.name
  }
}

locals {
  instance_name = "${var.name}-${random_id.suffix.hex}"
}

resource "google_sql_database_instance" "primary" {
  project             = var.project_id
  name                = local.instance_name
  region              = var.region
  database_version    = "MYSQL_5_7"
  deletion_protection = var.deletion_protection

  settings {
    tier              = var.tier
    availability_type = var.high_availability ? "REGIONAL" : "ZONAL"
    disk_autoresize   = true
    user_labels       = var.labels

    ip_configuration {
      ipv4_enabled    = false
      private_network = var.network_id
    }

    backup_configuration {
      enabled            = var.backups_enabled
      binary_log_enabled = var.backups_enabled
      start_time         = var.backup_start_time

      backup_retention_settings {
        retained_backups = var.retained_backups
      }
    }

    maintenance_window {
      day  = var.maintenance_day
      hour = var.maintenance_hour
    }
  }
}

resource "google_sql_database_instance" "failover_replica" {
  count                = var.failover_replica ? 1 : 0
  project              = var.project_id
  name                 = "${local.instance_name}-failover"
  region               = var.region
  database_version     = "MYSQL_5_7"
  master_instance_name = google_sql_database_instance.primary.name
  deletion_protection  = var.deletion_protection

  replica_configuration {
    failover_target = false
  }

  settings {
    tier              = var.tier
    availability_type = "ZONAL"
    disk_autoresize   = true
    user_labels       = var.labels

    ip_configuration {
      ipv4_enabled    = false
      private_network = var.network_id
    }

    location_preference {
      zone = var.failover_replica_zone
    }
  }

  lifecycle {
    precondition {
      condition     = var.backups_enabled
      error_message = "A failover replica needs backups_enabled = true (binary logging) on the primary."
    }
  }
}

resource "google_sql_user" "root" {
  project  = var.project_id
  instance = google_sql_database_instance.primary.name
  name     = "root"
  host     = "%"
  password = var.root_password
}

resource "google_sql_user" "proxy" {
  project  = var.project_id
  instance = google_sql_database_instance.primary.name
  name     = var.proxy_user
  host     = var.proxy_user_host
  password = var.proxy_password
}
