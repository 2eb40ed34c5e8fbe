# A Cloud Armor policy for the environment's public entry point: Google's preconfigured WAF rules
# (SQL injection, cross-site scripting, local file inclusion, remote code execution, and the
# Log4Shell lookups of CVE-2021-44228: the services are Java) deny with 403,
# adaptive protection watches for layer 7 floods, everything else is allowed. Cloud Armor acts on
# Google's external Application Load Balancer: attach the policy through a BackendConfig of the
# Service that load balancer sends to (see deploy/terraform/README.md, "Edge").

resource "google_compute_security_policy" "edge" {
  project     = var.project_id
  name        = "${var.name}-edge"
  description = "WAF for the fintech-release ${var.name} entry point"

  adaptive_protection_config {
    layer_7_ddos_defense_config {
      enable = true
    }
  }

  dynamic "rule" {
    for_each = var.waf_rules
    content {
      action   = "deny(403)"
      priority = rule.value.priority
      match {
        expr {
          expression = "evaluatePreconfiguredWaf('${rule.key}', {'sensitivity': ${var.sensitivity}})"
        }
      }
      description = rule.value.description
    }
  }

  rule {
    action      = "deny(403)"
    priority    = 900
    description = "CVE-2021-44228 / CVE-2021-45046 (Log4Shell) lookups"
    match {
      expr {
        expression = "evaluatePreconfiguredExpr('cve-canary')"
      }
    }
  }

  rule {
    action   = "allow"
    priority = 2147483647
    match {
      versioned_expr = "SRC_IPS_V1"
      config {
        src_ip_ranges = ["*"]
      }
    }
    description = "default: allow"
  }
}
