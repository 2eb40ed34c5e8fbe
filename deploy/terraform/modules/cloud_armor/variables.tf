variable "project_id" {
  description = "Google Cloud project of the policy."
  type        = string
}

variable "name" {
  description = "Prefix of the policy name."
  type        = string
}

variable "sensitivity" {
  description = "Sensitivity of the preconfigured WAF rules, 1 (fewest false positives) to 4."
  type        = number
  default     = 1
}

variable "waf_rules" {
  description = "Preconfigured WAF rule sets that deny, by name, with their priority."
  type        = map(object({ priority = number, description = string }))
  default = {
    "sqli-v33-stable" = { priority = 1000, description = "SQL injection" }
    "xss-v33-stable"  = { priority = 1001, description = "cross-site scripting" }
    "lfi-v33-stable"  = { priority = 1002, description = "local file inclusion" }
    "rce-v33-stable"  = { priority = 1003, description = "remote code execution" }
  }
}
