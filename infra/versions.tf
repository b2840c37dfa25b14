terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 5.40, < 7.0"
    }
  }

  # State lives in a Cloud Storage bucket you create once (README, "Deploying"):
  #   terraform -chdir=infra init -backend-config="bucket=<project>-tfstate"
  backend "gcs" {
    prefix = "aiprod"
  }
}

provider "google" {
  project = var.project
  region  = var.region
}
