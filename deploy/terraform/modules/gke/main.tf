# A private, VPC-native GKE cluster on Dataplane V2 (network policies enforced), with Workload
# Identity, Shielded Nodes with Secure Boot, Kubernetes Secrets encrypted with a Cloud KMS key and
# Binary Authorization, and one node pool that the cluster autoscaler grows and shrinks between
# min_nodes and max_nodes (pods scale with HPAs on top). The control plane is reachable only from
# the authorized networks, or only privately.

data "google_project" "this" {
  project_id = var.project_id
}

resource "google_service_account" "nodes" {
  project      = var.project_id
  account_id   = "${var.name}-nodes"
  display_name = "GKE nodes of ${var.name}"
}

# What a node needs and nothing more (Google's least-privilege node service account). Image pulls
# are granted on the Artifact Registry repository itself (environment root).
resource "google_project_iam_member" "nodes" {
  for_each = toset([
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
  ])
  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.nodes.email}"
}

# GKE's service agent encrypts and decrypts the cluster's Secrets (application-layer encryption).
resource "google_kms_crypto_key_iam_member" "secrets" {
  crypto_key_id = var.database_encryption_key
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = "serviceAccount:service-${data.google_project.this.number}@container-engine-robot.iam.gserviceaccount.com"
}

resource "google_container_cluster" "this" {
  project             = var.project_id
  name                = var.name
  location            = var.location
  network             = var.network_name
  subnetwork          = var.subnetwork_name
  deletion_protection = var.deletion_protection
  networking_mode     = "VPC_NATIVE"
  resource_labels     = var.labels

  # Dataplane V2 (eBPF) enforces NetworkPolicies itself; the legacy Calico add-on stays off.
  datapath_provider = "ADVANCED_DATAPATH"
  network_policy {
    enabled = false
  }

  enable_shielded_nodes = true

  # The default pool cannot autoscale the way we want; GKE needs one node to create the cluster.
  # That temporary node is hardened like the real ones.
  remove_default_node_pool = true
  initial_node_count       = 1
  node_config {
    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]
    image_type      = "COS_CONTAINERD"

    workload_metadata_config {
      mode = "GKE_METADATA"
    }

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
  }

  release_channel {
    channel = var.release_channel
  }

  ip_allocation_policy {
    cluster_secondary_range_name  = var.pods_range_name
    services_secondary_range_name = var.services_range_name
  }

  workload_identity_config {
    workload_pool = "${var.project_id}.svc.id.goog"
  }

  database_encryption {
    state    = "ENCRYPTED"
    key_name = var.database_encryption_key
  }

  binary_authorization {
    evaluation_mode = "PROJECT_SINGLETON_POLICY_ENFORCE"
  }

  master_auth {
    client_certificate_config {
      issue_client_certificate = false
    }
  }

  private_cluster_config {
    enable_private_nodes    = true
    enable_private_endpoint = var.private_endpoint
    master_ipv4_cidr_block  = var.master_cidr
  }

  master_authorized_networks_config {
    dynamic "cidr_blocks" {
      for_each = var.master_authorized_networks
      content {
        cidr_block   = cidr_blocks.value
        display_name = cidr_blocks.key
      }
    }
  }

  addons_config {
    horizontal_pod_autoscaling {
      disabled = false
    }
    http_load_balancing {
      disabled = false
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.secrets]
}

resource "google_container_node_pool" "default" {
  project  = var.project_id
  name     = "${var.name}-default"
  location = var.location
  cluster  = google_container_cluster.this.id

  autoscaling {
    total_min_node_count = var.min_nodes
    total_max_node_count = var.max_nodes
    location_policy      = "BALANCED"
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  node_config {
    machine_type    = var.machine_type
    disk_size_gb    = var.disk_size_gb
    image_type      = "COS_CONTAINERD"
    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]
    labels          = var.labels

    workload_metadata_config {
      mode = "GKE_METADATA"
    }

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
  }
}
