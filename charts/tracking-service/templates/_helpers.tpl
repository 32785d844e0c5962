{{/* Names */}}
{{- define "tracking-service.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
A name cut to a length limit without losing uniqueness: kept whole when it fits, otherwise its first
characters plus a hash of the whole (two long release names sharing a prefix still get two names).
Args: name, max.
*/}}
{{- define "tracking-service.shorten" -}}
{{- if le (len .name) (int .max) }}
{{- .name }}
{{- else }}
{{- printf "%s-%s" (.name | trunc (int (sub .max 9)) | trimSuffix "-") (sha256sum .name | trunc 8) }}
{{- end }}
{{- end }}

{{- define "tracking-service.fullname" -}}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- $full := .Values.fullnameOverride }}
{{- if not $full }}
{{- $full = ternary .Release.Name (printf "%s-%s" .Release.Name $name) (contains $name .Release.Name) }}
{{- end }}
{{- include "tracking-service.shorten" (dict "name" $full "max" 63) }}
{{- end }}

{{/* Names of the Fluent Bit objects: <fullname> shortened so the suffix always fits. */}}
{{- define "tracking-service.fluentBitName" -}}
{{- include "tracking-service.shorten" (dict "name" (printf "%s-fluent-bit" (include "tracking-service.fullname" .)) "max" 63) }}
{{- end }}

{{- define "tracking-service.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels */}}
{{- define "tracking-service.labels" -}}
helm.sh/chart: {{ include "tracking-service.chart" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: {{ include "tracking-service.name" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
{{- end }}

{{- define "tracking-service.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tracking-service.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: app
{{- end }}

{{- define "tracking-service.fluentBitSelectorLabels" -}}
app.kubernetes.io/name: {{ include "tracking-service.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: fluent-bit
{{- end }}

{{- define "tracking-service.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tracking-service.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tracking-service.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The app container's name. */}}
{{- define "tracking-service.containerName" -}}app{{- end }}

{{/*
A container securityContext that passes the "restricted" Pod Security Standard.
Argument: the UID (and GID) to run as.
*/}}
{{- define "tracking-service.restrictedSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .gid }}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Is an output selected? Usage: include "tracking-service.hasOutput" (list . "es") */}}
{{- define "tracking-service.hasOutput" -}}
{{- $root := index . 0 }}
{{- if and (eq $root.Values.collection.mode "sidecar") (has (index . 1) $root.Values.fluentBit.outputs) }}true{{ end }}
{{- end }}

{{/* The file output needs its claim; its name. */}}
{{- define "tracking-service.outputClaimName" -}}
{{- default (printf "%s-logs" (include "tracking-service.fullname" .)) .Values.fluentBit.file.persistence.existingClaim }}
{{- end }}

{{/* Checks that a JSON schema cannot express; each fails the render with a clear message. */}}
{{- define "tracking-service.validate" -}}
{{- $app := .Values.app }}
{{- $needed := add $app.preStopSleepSeconds $app.gracefulTimeoutSeconds }}
{{- if le (int $app.terminationGracePeriodSeconds) (int $needed) }}
{{- fail (printf "app.terminationGracePeriodSeconds (%v) must be greater than app.preStopSleepSeconds + app.gracefulTimeoutSeconds (%v), or the app is killed before its log queue drains" $app.terminationGracePeriodSeconds $needed) }}
{{- end }}
{{- if and (include "tracking-service.hasOutput" (list . "file")) (not .Values.fluentBit.file.persistence.existingClaim) (not (has "ReadWriteMany" .Values.fluentBit.file.persistence.accessModes)) }}
{{- fail "fluentBit.file.persistence.accessModes must include ReadWriteMany: every replica's sidecar, a rolling update's new pods and the retention CronJob mount the claim at once, from any node (ReadWriteOnce deadlocks on a multi-node cluster)" }}
{{- end }}
{{- if and (eq .Values.collection.mode "sidecar") (has "es" .Values.fluentBit.outputs) .Values.fluentBit.es.auth.apiKeyKey (not .Values.fluentBit.es.auth.existingSecret) }}
{{- fail "fluentBit.es.auth.apiKeyKey needs fluentBit.es.auth.existingSecret (the Secret holding the API key)" }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled (not (kindIs "invalid" .Values.podDisruptionBudget.maxUnavailable)) (not (kindIs "invalid" .Values.podDisruptionBudget.minAvailable)) }}
{{- fail "podDisruptionBudget: set only one of minAvailable and maxUnavailable (set the other to null)" }}
{{- end }}
{{- end }}

{{/* An HTTP probe on the "http" port from {path, initialDelaySeconds, periodSeconds, timeoutSeconds, failureThreshold}. */}}
{{- define "tracking-service.httpProbe" -}}
httpGet:
  path: {{ .path }}
  port: http
initialDelaySeconds: {{ .initialDelaySeconds }}
periodSeconds: {{ .periodSeconds }}
timeoutSeconds: {{ .timeoutSeconds }}
failureThreshold: {{ .failureThreshold }}
{{- end }}

{{/* The daily index prefix of an es/opensearch output: its indexPrefix, or the fullname (one per release). Args: root, cfg. */}}
{{- define "tracking-service.indexPrefix" -}}
{{- default (include "tracking-service.fullname" .root) .cfg.indexPrefix }}
{{- end }}

{{/* The app container's command: app.command, or `python -m service serve` for app.module. */}}
{{- define "tracking-service.command" -}}
{{- $app := .Values.app }}
{{- if $app.command }}
{{- toJson (concat $app.command $app.args) }}
{{- else }}
{{- toJson (concat (list "python" "-m" "service" "serve" (printf "--app=%s" $app.module) "--host=0.0.0.0" (printf "--port=%v" $app.port) (printf "--graceful-timeout=%v" $app.gracefulTimeoutSeconds)) $app.args) }}
{{- end }}
{{- end }}

{{/*
The index-policy Job of a backend: an ordinary Job, not a hook, so Helm never waits for it and its outcome
cannot fail a release. Its spec is immutable, so its name carries a hash of what it applies: a changed
policy is a new Job (Helm removes the old one), an unchanged one is left alone. Args: root, backend.
*/}}
{{- define "tracking-service.indexPolicyJobName" -}}
{{- $cfg := index .root.Values.fluentBit .backend }}
{{- $spec := list $cfg (include "tracking-service.indexPrefix" (dict "root" .root "cfg" $cfg)) .root.Values.retention.days .root.Values.retention.indexPolicy .root.Values.imagePullSecrets | toJson }}
{{- include "tracking-service.shorten" (dict "name" (printf "%s-%s-retention-%s" (include "tracking-service.fullname" .root) .backend (sha256sum $spec | trunc 6)) "max" 63) }}
{{- end }}
