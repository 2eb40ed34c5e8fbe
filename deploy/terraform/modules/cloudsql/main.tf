# Cloud SQL for MySQL (8.0 by default) on a private IP only, reached only through the Cloud SQL Auth
# Proxy or a Cloud SQL connector (mutual TLS with a client certificate, IAM-authorised). Users: the
# release's admin user and, per service, a migration user and an application user. Their passwords
# are write-only: they reach Cloud SQL but never the Terraform plan or state. Backups, binary
# logging, regional availability and a failover replica are switched by variables.
#
# Cloud SQL gives users created through its API broad privileges (cloudsqlsuperuser on MySQL 8.0):
# the release narrows the service users to their own database with SQL (GRANT/REVOKE) in the
# <env>/database step, connected as the admin user, before it migrates as <database>_mig;
# Terraform cannot issue SQL (see ../../README.md, "Database users").

# Cloud SQL keeps a deleted instance's name reserved for up to a week: a suffix lets ci recreate.
resource "random_id" "suffix" {
  byte_length = 2
  keepers = {
    name = var.name
  }
}

locals {
  instance_name = "${var.name}-${random_id.suffix.hex}"
  # CIS MySQL / Google hardening: no LOAD DATA LOCAL, no SHOW DATABASES for users without the
  # privilege, and the Cloud SQL audit plugin (its rules are the bank's, set with SQL).
  hardening_flags = {
    local_infile         = "off"
    skip_show_database   = "on"
    cloudsql_mysql_audit = "ON"
  }
  database_flags = merge(local.hardening_flags, var.database_flags)
  # One migration and one application user per service, named after the service's database.
  service_users = merge([
    for service, database in var.service_databases : {
      "${service}/migration"   = { service = service, role = "migration", name = "${database}_mig" }
      "${service}/application" = { service = service, role = "application", name = "${database}_app" }
    }
  ]...)
}

resource "google_sql_database_instance" "primary" {
  project             = var.project_id
  name                = local.instance_name
  region              = var.region
  database_version    = var.database_version
  deletion_protection = var.deletion_protection

  settings {
    tier                        = var.tier
    availability_type           = var.high_availability ? "REGIONAL" : "ZONAL"
    disk_autoresize             = true
    user_labels                 = var.labels
    deletion_protection_enabled = var.deletion_protection
    # Every connection through the Auth Proxy or a connector: no password-only path to the database.
    connector_enforcement = "REQUIRED"

    ip_configuration {
      ipv4_enabled    = false
      private_network = var.network_id
      ssl_mode        = "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"
    }

    dynamic "database_flags" {
      for_each = local.database_flags
      content {
        name  = database_flags.key
        value = database_flags.value
      }
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
  database_version     = var.database_version
  master_instance_name = google_sql_database_instance.primary.name
  deletion_protection  = var.deletion_protection

  replica_configuration {
    failover_target = false
  }

  settings {
    tier                        = var.tier
    availability_type           = "ZONAL"
    disk_autoresize             = true
    user_labels                 = var.labels
    deletion_protection_enabled = var.deletion_protection
    connector_enforcement       = "REQUIRED"

    ip_configuration {
      ipv4_enabled    = false
      private_network = var.network_id
      ssl_mode        = "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"
    }

    dynamic "database_flags" {
      for_each = local.database_flags
      content {
        name  = database_flags.key
        value = database_flags.value
      }
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

# The release's admin user: creates the environment's databases and narrows the service users'
# privileges (the migrations run as <database>_mig). No root@'%': the provider deletes the default root user
# right after creating the instance, and every user here connects only through the proxy.
resource "google_sql_user" "admin" {
  project             = var.project_id
  instance            = google_sql_database_instance.primary.name
  name                = var.admin_user
  host                = var.user_host
  password_wo         = var.admin_password
  password_wo_version = var.admin_password_version
}

resource "google_sql_user" "service" {
  for_each            = local.service_users
  project             = var.project_id
  instance            = google_sql_database_instance.primary.name
  name                = each.value.name
  host                = var.user_host
  password_wo         = var.service_passwords[each.key]
  password_wo_version = var.service_password_version

  lifecycle {
    precondition {
      condition     = length(each.value.name) <= 32
      error_message = "MySQL user ${each.value.name} is longer than 32 characters: shorten the service's database name."
    }
  }
}
