{{/*
Fluent Bit outputs: the FLB_* variables the output-*.yaml files of fluent-bit/ read, and the Secret volumes
their TLS files come from. The collector chart carries the same definitions (tests compare the two).
Every definition takes (dict "root" $ "fb" <the values holding outputs, es, opensearch, loki, forward>).
*/}}

{{- define "tracking-service.tlsDir" -}}/fluent-bit/tls{{- end }}

{{/* An env var from a Secret key. Args: name, secret, key. */}}
{{- define "tracking-service.secretKeyEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
{{- end }}

{{/* host/port/TLS (+ basic auth or an API key from a Secret) of one backend. Args: prefix, cfg, backend. */}}
{{- define "tracking-service.backendEnv" -}}
{{- $p := .prefix }}
{{- $c := .cfg -}}
{{- $dir := printf "%s/%s" (include "tracking-service.tlsDir" .) .backend -}}
- name: {{ $p }}_HOST
  value: {{ $c.host | quote }}
- name: {{ $p }}_PORT
  value: {{ $c.port | quote }}
- name: {{ $p }}_TLS
  value: {{ ternary "on" "off" $c.tls.enabled | quote }}
- name: {{ $p }}_TLS_VERIFY
  value: {{ ternary "on" "off" $c.tls.verify | quote }}
{{- if $c.tls.ca.existingSecret }}
- name: {{ $p }}_TLS_CA_FILE
  value: {{ printf "%s/ca/%s" $dir $c.tls.ca.key | quote }}
{{- end }}
{{- if $c.tls.clientCert.existingSecret }}
- name: {{ $p }}_TLS_CRT_FILE
  value: {{ printf "%s/client/tls.crt" $dir | quote }}
- name: {{ $p }}_TLS_KEY_FILE
  value: {{ printf "%s/client/tls.key" $dir | quote }}
{{- end }}
{{- with $c.auth }}
{{- if and .existingSecret .apiKeyKey }}
{{ include "tracking-service.secretKeyEnv" (dict "name" (printf "%s_API_KEY" $p) "secret" .existingSecret "key" .apiKeyKey) }}
{{- else if .existingSecret }}
{{ include "tracking-service.secretKeyEnv" (dict "name" (printf "%s_USER" $p) "secret" .existingSecret "key" .usernameKey) }}
{{ include "tracking-service.secretKeyEnv" (dict "name" (printf "%s_PASSWORD" $p) "secret" .existingSecret "key" .passwordKey) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The backends among the selected outputs, as name -> (prefix, values). */}}
{{- define "tracking-service.backends" -}}
{{- $fb := .fb }}
{{- $all := dict "es" "FLB_ES" "opensearch" "FLB_OS" "loki" "FLB_LOKI" "forward" "FLB_FORWARD" }}
{{- $out := dict }}
{{- range $name := $fb.outputs }}
{{- if hasKey $all $name }}
{{- $_ := set $out $name (index $all $name) }}
{{- end }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/* FLB_* variables of the selected outputs. Args: root, fb, indexPrefix (es/opensearch default), lokiJob. */}}
{{- define "tracking-service.outputEnv" -}}
{{- $fb := .fb }}
{{- $ctx := . -}}
- name: FLB_RETRY_LIMIT
  value: {{ $fb.retryLimit | quote }}
{{- range $backend, $prefix := (include "tracking-service.backends" . | fromJson) }}
{{- $cfg := index $fb $backend }}
{{ include "tracking-service.backendEnv" (dict "prefix" $prefix "cfg" $cfg "backend" $backend) }}
{{- if has $backend (list "es" "opensearch") }}
- name: {{ $prefix }}_INDEX_PREFIX
  value: {{ default $ctx.indexPrefix $cfg.indexPrefix | quote }}
{{- end }}
{{- if eq $backend "loki" }}
- name: FLB_LOKI_URI
  value: {{ $cfg.uri | quote }}
- name: FLB_LOKI_JOB
  value: {{ default $ctx.lokiJob $cfg.job | quote }}
{{- with $cfg.tenantId }}
- name: FLB_LOKI_TENANT_ID
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- if and (eq $backend "forward") $cfg.sharedKey.existingSecret }}
{{ include "tracking-service.secretKeyEnv" (dict "name" "FLB_FORWARD_SHARED_KEY" "secret" $cfg.sharedKey.existingSecret "key" $cfg.sharedKey.key) }}
{{- end }}
{{- end }}
{{- end }}

{{/* Secret volumes holding the selected backends' CA bundles and client certificates. Args: root, fb. */}}
{{- define "tracking-service.tlsVolumes" -}}
{{- $fb := .fb }}
{{- range $backend, $prefix := (include "tracking-service.backends" . | fromJson) }}
{{- $tls := (index $fb $backend).tls }}
{{- if $tls.ca.existingSecret }}
- name: tls-{{ $backend }}-ca
  secret:
    secretName: {{ $tls.ca.existingSecret }}
    items:
      - key: {{ $tls.ca.key }}
        path: {{ $tls.ca.key }}
{{- end }}
{{- if $tls.clientCert.existingSecret }}
- name: tls-{{ $backend }}-client
  secret:
    secretName: {{ $tls.clientCert.existingSecret }}
    items:
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
{{- end }}
{{- end }}
{{- end }}

{{/* Their mounts in the Fluent Bit container. Args: root, fb. */}}
{{- define "tracking-service.tlsVolumeMounts" -}}
{{- $fb := .fb }}
{{- range $backend, $prefix := (include "tracking-service.backends" . | fromJson) }}
{{- $tls := (index $fb $backend).tls }}
{{- if $tls.ca.existingSecret }}
- name: tls-{{ $backend }}-ca
  mountPath: {{ printf "%s/%s/ca" (include "tracking-service.tlsDir" $) $backend }}
  readOnly: true
{{- end }}
{{- if $tls.clientCert.existingSecret }}
- name: tls-{{ $backend }}-client
  mountPath: {{ printf "%s/%s/client" (include "tracking-service.tlsDir" $) $backend }}
  readOnly: true
{{- end }}
{{- end }}
{{- end }}
