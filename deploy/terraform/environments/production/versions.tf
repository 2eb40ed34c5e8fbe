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

  # Partial configuration: the bucket (created by ../../bootstrap) is given at init,
  # terraform init -backend-config=bucket=<state bucket>.
  backend "gcs" {
    prefix = "fintech-release/production"
  }
}
