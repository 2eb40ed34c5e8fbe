project_id  = "fintech-release-admin"
bucket_name = "fintech-release-terraform-state"
location    = "EU"
