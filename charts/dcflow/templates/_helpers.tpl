{{/* Names, labels and the values the templates share. */}}

{{- define "dcflow.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "dcflow.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "dcflow.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "dcflow.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "dcflow.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "dcflow.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. */}}
{{- define "dcflow.s3Secret" -}}
{{- .Values.s3.existingSecret | default .Values.secretName -}}
{{- end -}}

{{- define "dcflow.minioHost" -}}
{{- printf "%s-minio" (include "dcflow.fullname" .) -}}
{{- end -}}

{{- define "dcflow.s3Endpoint" -}}
{{- if .Values.s3.endpoint -}}
{{- .Values.s3.endpoint -}}
{{- else if .Values.minio.enabled -}}
{{- printf "http://%s.%s.svc:9000" (include "dcflow.minioHost" .) .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{- define "dcflow.mlflowHost" -}}
{{- printf "%s-mlflow" (include "dcflow.fullname" .) -}}
{{- end -}}

{{- define "dcflow.mlflowUri" -}}
{{- if .Values.mlflow.enabled -}}
{{- printf "http://%s.%s.svc:%d" (include "dcflow.mlflowHost" .) .Release.Namespace (int .Values.mlflow.port) -}}
{{- else -}}
{{- .Values.mlflow.trackingUri -}}
{{- end -}}
{{- end -}}

{{- define "dcflow.pipelineRoot" -}}
{{- printf "s3://%s/%s" .Values.s3.bucket .Values.s3.pipelineRootPrefix -}}
{{- end -}}

{{/* Env from the Secret, for pods of this chart (pipeline stages get it via kfp-kubernetes). */}}
{{- define "dcflow.s3Env" -}}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ include "dcflow.s3Secret" . }}
      key: AWS_ACCESS_KEY_ID
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "dcflow.s3Secret" . }}
      key: AWS_SECRET_ACCESS_KEY
{{- end -}}
