{{/*
The server's pod template, shared by the StatefulSet (storage.backend
embedded) and the Deployment (storage.backend remote).
*/}}
{{- define "tidemark.podTemplate" -}}
{{- $tokens := include "tidemark.tokens" . | fromYamlArray }}
{{- $memoryLimit := dig "limits" "memory" "" (.Values.resources | default dict) }}
{{- $remote := eq (include "tidemark.backend" .) "remote" }}
{{- $state := include "tidemark.state" . | fromYaml -}}
metadata:
  annotations:
    # The server reads its config file and tokens on start: roll the pod
    # when they change.
    checksum/config: {{ include "tidemark.config" . | sha256sum }}
    {{- if and $tokens (not .Values.existingSecret) }}
    checksum/secret: {{ include (print $.Template.BasePath "/secret.yaml") . | sha256sum }}
    {{- end }}
    {{- if and $state (not (.Values.state | default dict).existingSecret) }}
    checksum/state: {{ include (print $.Template.BasePath "/state-secret.yaml") . | sha256sum }}
    {{- end }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  labels:
    {{- include "tidemark.labels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "tidemark.serviceAccountName" . }}
  automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
  # Service environment variables (TIDEMARK_PORT, ...) are not needed and
  # would crowd the TIDEMARK_* variables the client reads.
  enableServiceLinks: false
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with .Values.podSecurityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
  containers:
    - name: tidemark
      image: {{ include "tidemark.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
        - serve
        - --web.listen-address=:9470
        - --storage.path=/data
        {{- if $remote }}
        {{- with .Values.storage.remote }}
        - --storage.backend=remote
        - {{ printf "--storage.remote.write-url=%s" .writeURL | quote }}
        - {{ printf "--storage.remote.query-url=%s" .queryURL | quote }}
        - {{ printf "--storage.remote.tenant-header=%s" .tenantHeader | quote }}
        - {{ printf "--storage.remote.timeout=%v" .timeout | quote }}
        {{- end }}
        - {{ printf "--leases.ttl=%v" .Values.leases.ttl | quote }}
        - {{ printf "--leases.renew-interval=%v" .Values.leases.renewInterval | quote }}
        {{- else }}
        - --storage.retention={{ .Values.retention }}
        {{- end }}
        {{- if $state }}
        # Kubernetes expands $(TIDEMARK_STATE_URL) from the Secret: the URL
        # and its password are in no manifest.
        - --state.url=$(TIDEMARK_STATE_URL)
        {{- end }}
        - --config.file={{ include "tidemark.configDir" . }}/{{ include "tidemark.configFileName" . }}
        - --log.format={{ .Values.log.format }}
        - --log.level={{ .Values.log.level }}
        {{- range .Values.extraArgs }}
        - {{ . | quote }}
        {{- end }}
      {{- if or $memoryLimit $state .Values.extraEnv }}
      env:
        {{- if $state }}
        - name: TIDEMARK_STATE_URL
          valueFrom:
            secretKeyRef:
              name: {{ $state.secret }}
              key: {{ $state.key }}
        {{- end }}
        {{- if $memoryLimit }}
        - name: GOMEMLIMIT
          valueFrom:
            resourceFieldRef:
              containerName: tidemark
              resource: limits.memory
        {{- end }}
        {{- with .Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- end }}
      ports:
        - name: http
          containerPort: 9470
          protocol: TCP
      livenessProbe:
        httpGet:
          path: /-/healthy
          port: http
        {{- with .Values.livenessProbe }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      readinessProbe:
        httpGet:
          path: /-/ready
          port: http
        {{- with .Values.readinessProbe }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with .Values.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.securityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      volumeMounts:
        - name: data
          mountPath: /data
        - name: config
          mountPath: {{ include "tidemark.configDir" . }}
          readOnly: true
        {{- if $tokens }}
        - name: tokens
          mountPath: {{ .Values.tokensMountPath | trimSuffix "/" }}
          readOnly: true
        {{- end }}
        # The root filesystem is read-only; SQLite may need a temporary
        # directory.
        - name: tmp
          mountPath: /tmp
  volumes:
    - name: config
      configMap:
        name: {{ include "tidemark.fullname" . }}
    {{- if $tokens }}
    - name: tokens
      secret:
        secretName: {{ include "tidemark.secretName" . }}
        defaultMode: 288 # 0440: the owner and the fsGroup may read
    {{- end }}
    - name: tmp
      emptyDir: {}
    {{- if or $remote (not .Values.persistence.enabled) }}
    {{- if $remote }}
    # Nothing under /data needs to survive the pod: the samples are in the
    # remote engine and the state in PostgreSQL.
    {{- end }}
    - name: data
      emptyDir: {}
    {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if .Values.affinity }}
  affinity:
    {{- toYaml .Values.affinity | nindent 4 }}
  {{- else if and $remote .Values.podAntiAffinityPreset }}
  affinity:
    {{- include "tidemark.podAntiAffinity" . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
