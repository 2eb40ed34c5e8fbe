project_id    = "fintech-release-admin"
bucket_name   = "fintech-release-terraform-state"
location      = "EU"
region        = "europe-west1"
environments  = ["ci", "staging", "production"]
image_pushers = ["serviceAccount:fintech-release-orchestrator@fintech-release-admin.iam.gserviceaccount.com"]
