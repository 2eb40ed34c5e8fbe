terraform {
  required_version = ">= 1.11.0" # write-only attributes and ephemeral values

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 7.0"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = ">= 2.36, < 4.0" # data_wo: secrets out of the state
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7" # ephemeral random_password
    }
  }

  # Partial configuration: one root for every environment, so the state location is given at init,
  #   terraform init -backend-config=bucket=<state bucket> -backend-config=prefix=fintech-release/<env>
  # (the bucket comes from ../bootstrap). Without the prefix, environments would share one state.
  backend "gcs" {}
}
