{{/*
The optional watcher (`tidemark watch`): it records the cluster's changes as
change events in this release's server. See docs/kubernetes.md.
*/}}

{{/* The watcher's name: "<fullname>-watcher". */}}
{{- define "tidemark.watcher.fullname" -}}
{{- printf "%s-watcher" (include "tidemark.fullname" . | trunc 55 | trimSuffix "-") }}
{{- end }}

{{/* Labels that select the watcher's pod (not the server's Service). */}}
{{- define "tidemark.watcher.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tidemark.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: watcher
{{- end }}

{{/* Labels of every watcher resource. */}}
{{- define "tidemark.watcher.labels" -}}
helm.sh/chart: {{ include "tidemark.chart" . }}
{{ include "tidemark.watcher.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tidemark
{{- end }}

{{/* The watcher's ServiceAccount. */}}
{{- define "tidemark.watcher.serviceAccountName" -}}
{{- if .Values.watcher.serviceAccount.create }}
{{- default (include "tidemark.watcher.fullname" .) .Values.watcher.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.watcher.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The token the watcher writes with, as YAML {org, name, scope, key}: the
token named by watcher.token ("name" or "org/name"), else the first token of
scope write, else the first of scope admin. Fails the render when there is
none, so that a watcher never starts without a token.
*/}}
{{- define "tidemark.watcher.token" -}}
{{- $tokens := include "tidemark.tokens" . | fromYamlArray }}
{{- $want := .Values.watcher.token | default "" | toString }}
{{- $found := dict }}
{{- if $want }}
  {{- range $tokens }}
    {{- if and (not $found) (or (eq $want .name) (eq $want (printf "%s/%s" .org .name))) }}
      {{- $found = . }}
    {{- end }}
  {{- end }}
  {{- if not $found }}
    {{- fail (printf "watcher.token %q is not a token declared in organizations; name one as \"name\" or \"org/name\"" $want) }}
  {{- end }}
  {{- if not (has $found.scope (list "write" "admin")) }}
    {{- fail (printf "watcher.token %q has scope %s; the watcher writes change events: use a token of scope write (or admin)" $want $found.scope) }}
  {{- end }}
{{- else }}
  {{- range $tokens }}
    {{- if and (not $found) (eq .scope "write") }}{{ $found = . }}{{ end }}
  {{- end }}
  {{- range $tokens }}
    {{- if and (not $found) (eq .scope "admin") }}{{ $found = . }}{{ end }}
  {{- end }}
  {{- if not $found }}
    {{- fail "watcher.enabled needs a token of scope write: declare one under organizations (e.g. {name: watcher, scope: write}) and, if you have several, name it in watcher.token" }}
  {{- end }}
{{- end }}
{{- toYaml (dict "org" $found.org "name" $found.name "scope" $found.scope "key" $found.key) }}
{{- end }}

{{/*
The RBAC rules: get, list and watch on the watched kinds, nothing else.
*/}}
{{- define "tidemark.watcher.rules" -}}
{{- $known := dict "deployments" "apps" "statefulsets" "apps" "daemonsets" "apps" "horizontalpodautoscalers" "autoscaling" "configmaps" "" "secrets" "" "rollouts" "argoproj.io" }}
{{- $kinds := .Values.watcher.kinds | default (list "deployments" "statefulsets" "daemonsets" "rollouts" "horizontalpodautoscalers" "configmaps" "secrets") }}
{{- $byGroup := dict }}
{{- range $kinds }}
  {{- if not (hasKey $known .) }}
    {{- fail (printf "watcher.kinds: %q is not accepted; use deployments, statefulsets, daemonsets, rollouts, horizontalpodautoscalers, configmaps, secrets" .) }}
  {{- end }}
  {{- $g := get $known . }}
  {{- $_ := set $byGroup $g (append (get $byGroup $g | default list) .) }}
{{- end }}
{{- $rules := list }}
{{- range $g := list "" "apps" "autoscaling" "argoproj.io" }}
  {{- with get $byGroup $g }}
    {{- $rules = append $rules (dict "apiGroups" (list $g) "resources" . "verbs" (list "get" "list" "watch")) }}
  {{- end }}
{{- end }}
{{- toYaml $rules }}
{{- end }}
