{{- define "mediagate.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mediagate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "mediagate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "mediagate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "mediagate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mediagate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "mediagate.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "mediagate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "mediagate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "mediagate.secretName" -}}
{{- default (include "mediagate.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{/* An external database: a URL in values or in an existing Secret. */}}
{{- define "mediagate.externalDatabase" -}}
{{- if or .Values.database.url .Values.database.existingSecret -}}true{{- end -}}
{{- end -}}

{{/* Migrations run in a hook Job only against an external database (it exists before install). */}}
{{- define "mediagate.migrationJob" -}}
{{- if and .Values.migrations.job (include "mediagate.externalDatabase" .) -}}true{{- end -}}
{{- end -}}

{{- define "mediagate.postgresqlHost" -}}
{{- printf "%s-postgresql" (include "mediagate.fullname" .) -}}
{{- end -}}

{{/* A value kept from the release's existing Secret, else the given one, else generated. */}}
{{- define "mediagate.keptSecret" -}}
{{- $existing := (lookup "v1" "Secret" .namespace .secret) | default dict -}}
{{- $data := (get $existing "data") | default dict -}}
{{- if .value -}}
{{- .value -}}
{{- else if hasKey $data .key -}}
{{- index $data .key | b64dec -}}
{{- else -}}
{{- randAlphaNum 48 -}}
{{- end -}}
{{- end -}}

{{/* The env every mediagate container gets (the server and the migration Job). */}}
{{- define "mediagate.databaseEnv" -}}
{{- if .Values.database.existingSecret }}
- name: MEDIAGATE_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.existingSecret }}
      key: {{ .Values.database.existingSecretKey }}
{{- end }}
{{- end -}}
