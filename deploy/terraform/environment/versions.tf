terraform {
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "~> 2.31"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # Partial configuration: one root for every environment, so the state location is given at init,
  #   terraform init -backend-config=bucket=<state bucket> -backend-config=prefix=fintech-release/<env>
  # (the bucket comes from ../bootstrap). Without the prefix, environments would share one state.
  backend "gcs" {}
}
