{{/*
The chart's name, or nameOverride.
*/}}
{{- define "tidemark.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The fully qualified app name: "<release>-<chart>", or the release name when
it already contains the chart name, or fullnameOverride. Kubernetes names
are limited to 63 characters.
*/}}
{{- define "tidemark.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "tidemark.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every resource.
*/}}
{{- define "tidemark.labels" -}}
helm.sh/chart: {{ include "tidemark.chart" . }}
{{ include "tidemark.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tidemark
{{- end }}

{{/*
Labels that select the pod; they never change across upgrades.
*/}}
{{- define "tidemark.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tidemark.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{/*
The ServiceAccount's name.
*/}}
{{- define "tidemark.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tidemark.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The container image: repository:tag, or repository@digest.
*/}}
{{- define "tidemark.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
Name of the Secret holding the tokens: existingSecret, or the chart's own.
*/}}
{{- define "tidemark.secretName" -}}
{{- .Values.existingSecret | default (printf "%s-tokens" (include "tidemark.fullname" .) | trunc 63 | trimSuffix "-") }}
{{- end }}

{{/*
Where samples live: "embedded" (a StatefulSet of one with its volume) or
"remote" (a Deployment of stateless replicas on a remote engine).
*/}}
{{- define "tidemark.backend" -}}
{{- dig "backend" "embedded" (.Values.storage | default dict) }}
{{- end }}

{{/* The workload's kind, as kubectl names it. */}}
{{- define "tidemark.workload" -}}
{{- if eq (include "tidemark.backend" .) "remote" }}deployment{{ else }}statefulset{{ end }}
{{- end }}

{{/*
The Secret key holding the state database's URL, as YAML {secret, key}, or
nothing when the state is SQLite in the data directory.
*/}}
{{- define "tidemark.state" -}}
{{- $s := .Values.state | default dict }}
{{- if $s.existingSecret }}
{{- toYaml (dict "secret" $s.existingSecret "key" ($s.existingSecretKey | default "url")) }}
{{- else if $s.url }}
{{- toYaml (dict "secret" (printf "%s-state" (include "tidemark.fullname" .) | trunc 63 | trimSuffix "-") "key" "url") }}
{{- end }}
{{- end }}

{{/*
The replicas' anti-affinity (podAntiAffinityPreset): soft prefers, hard
requires, one replica per node.
*/}}
{{- define "tidemark.podAntiAffinity" -}}
{{- $term := dict "topologyKey" "kubernetes.io/hostname" "labelSelector" (dict "matchLabels" (include "tidemark.selectorLabels" . | fromYaml)) -}}
podAntiAffinity:
{{- if eq .Values.podAntiAffinityPreset "hard" }}
  requiredDuringSchedulingIgnoredDuringExecution:
    {{- toYaml (list $term) | nindent 4 }}
{{- else }}
  preferredDuringSchedulingIgnoredDuringExecution:
    {{- toYaml (list (dict "weight" 100 "podAffinityTerm" $term)) | nindent 4 }}
{{- end }}
{{- end }}

{{/* Paths in the container. */}}
{{- define "tidemark.configDir" -}}/etc/tidemark/config{{- end }}
{{- define "tidemark.configFileName" -}}tidemark.yml{{- end }}

{{/*
The declared tokens, validated, as YAML: a list of {org, name, scope, key,
value}. Fails the render on a value the server would refuse, so a mistake
shows at `helm install` rather than in a crash-looping pod.
*/}}
{{- define "tidemark.tokens" -}}
{{- $tokens := list }}
{{- $orgs := dict }}
{{- $keys := dict }}
{{- range $i, $org := .Values.organizations }}
  {{- $slug := $org.slug | default "" | toString }}
  {{- if not (regexMatch "^[a-z0-9][a-z0-9-]{0,62}$" $slug) }}
    {{- fail (printf "organizations[%d].slug %q is not accepted: use 1 to 63 characters of a-z, 0-9 and '-', starting with a letter or digit" $i $slug) }}
  {{- end }}
  {{- if hasKey $orgs $slug }}
    {{- fail (printf "organizations[%d].slug: organization %q is declared twice" $i $slug) }}
  {{- end }}
  {{- $_ := set $orgs $slug true }}
  {{- range $j, $t := $org.tokens }}
    {{- $where := printf "organizations[%d] (%s) tokens[%d]" $i $slug $j }}
    {{- $name := $t.name | default "" | toString }}
    {{- if not $name }}
      {{- fail (printf "%s.name: missing" $where) }}
    {{- end }}
    {{- if not (has ($t.scope | default "" | toString) (list "read" "write" "admin")) }}
      {{- fail (printf "%s.scope %q is not accepted: use read, write or admin" $where ($t.scope | default "" | toString)) }}
    {{- end }}
    {{- $key := $t.secretKey | default $name | toString }}
    {{- if not (regexMatch "^[-._a-zA-Z0-9]+$" $key) }}
      {{- fail (printf "%s: Secret key %q is not accepted: use a-z, A-Z, 0-9, '-', '_' and '.' (set secretKey)" $where $key) }}
    {{- end }}
    {{- if hasKey $keys $key }}
      {{- fail (printf "%s: Secret key %q is also used by %s; give one of them another secretKey" $where $key (get $keys $key)) }}
    {{- end }}
    {{- $_ := set $keys $key $where }}
    {{- $value := $t.value | default "" | toString }}
    {{- if and $value (not $.Values.existingSecret) }}
      {{- if lt (len $value) 16 }}
        {{- fail (printf "%s.value: the token is %d characters long; use at least 16 characters" $where (len $value)) }}
      {{- end }}
      {{- if regexMatch "\\s" $value }}
        {{- fail (printf "%s.value: the token contains whitespace" $where) }}
      {{- end }}
    {{- end }}
    {{- $tokens = append $tokens (dict "org" $slug "name" $name "scope" $t.scope "key" $key "value" $value) }}
  {{- end }}
{{- end }}
{{- toYaml $tokens }}
{{- end }}

{{/*
The server's config file.
*/}}
{{- define "tidemark.config" -}}
{{- $mount := .Values.tokensMountPath | trimSuffix "/" }}
{{- $tokens := include "tidemark.tokens" . | fromYamlArray }}
{{- $orgs := list }}
{{- range .Values.organizations }}
  {{- $slug := .slug }}
  {{- $declared := list }}
  {{- range $tokens }}
    {{- if eq .org $slug }}
      {{- $declared = append $declared (dict "name" .name "scope" .scope "value_file" (printf "%s/%s" $mount .key)) }}
    {{- end }}
  {{- end }}
  {{- $o := dict "slug" $slug "tokens" $declared }}
  {{- with .tenant }}{{ $_ := set $o "tenant" (toString .) }}{{ end }}
  {{- $orgs = append $orgs $o }}
{{- end }}
{{- $cfg := deepCopy (.Values.extraConfig | default dict) }}
{{- $_ := set $cfg "organizations" $orgs }}
{{- toYaml $cfg }}
{{- end }}
