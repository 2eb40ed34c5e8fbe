{{/* The service name: names every object of the release (a DNS label, checked by the schema). */}}
{{- define "microservice.name" -}}
{{- required "values: service is required (the service's name from release.yaml)" .Values.service -}}
{{- end -}}

{{/* Labels on every object; the selector labels are the stable subset used by the Service and PDB. */}}
{{- define "microservice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "microservice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "microservice.labels" -}}
{{ include "microservice.selectorLabels" . }}
app.kubernetes.io/version: {{ trunc 63 (trimPrefix "sha256:" .Values.image.digest) | quote }}
app.kubernetes.io/component: service
app.kubernetes.io/part-of: fintech-release
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
io.fintech-release/environment: {{ required "values: environment is required (ci, staging, production, ...)" .Values.environment }}
io.fintech-release/service: {{ include "microservice.name" . }}
{{- end -}}

{{/*
The image, always by digest. The schema checks this too; the template repeats the check so a
release can never go out by tag, even with schema validation skipped.
*/}}
{{- define "microservice.image" -}}
{{- $image := .Values.image -}}
{{- if not $image.repository -}}
{{- fail "values: image.repository is required (registry/path of the image, without a tag)" -}}
{{- end -}}
{{- if not (regexMatch "^sha256:[a-f0-9]{64}$" (toString $image.digest)) -}}
{{- fail (printf "values: image.digest must be sha256:<64 hex digits>, got %q - images are deployed by digest, never by tag" (toString $image.digest)) -}}
{{- end -}}
{{- if regexMatch "[@]|:[^/]*$" $image.repository -}}
{{- fail (printf "values: image.repository %q must not carry a tag or digest; put the digest in image.digest" $image.repository) -}}
{{- end -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- end -}}

{{/* Every container of the pod: no privilege, no capability, nothing written outside its volumes. */}}
{{- define "microservice.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
privileged: false
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* Where the database password file is mounted (DB_PASSWORD_FILE is <this>/password). */}}
{{- define "microservice.databaseSecretDir" -}}
/var/run/secrets/fintech-release/database
{{- end -}}
