{{/* Chart name, overridable. */}}
{{- define "kam.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name; components append -web, -worker, -beat, -migrate. */}}
{{- define "kam.fullname" -}}
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

{{- define "kam.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kam.labels" -}}
helm.sh/chart: {{ include "kam.chart" . }}
app.kubernetes.io/name: {{ include "kam.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component: include "kam.selectorLabels" (dict "ctx" $ "component" "web") */}}
{{- define "kam.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kam.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* All labels of one component, same argument as kam.selectorLabels. */}}
{{- define "kam.componentLabels" -}}
{{ include "kam.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "kam.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "kam.secretName" -}}
{{- default (include "kam.fullname" .) .Values.secret.existingSecret }}
{{- end }}

{{/* Pod annotations that roll the pods when the environment changes. */}}
{{- define "kam.checksums" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}

{{/* Pod-level settings every KAM pod shares. */}}
{{- define "kam.podCommon" -}}
automountServiceAccountToken: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end }}

{{/* The environment of every KAM container: the ConfigMap and the Secret. */}}
{{- define "kam.envFrom" -}}
- configMapRef:
    name: {{ include "kam.fullname" . }}
- secretRef:
    name: {{ include "kam.secretName" . }}
{{- end }}

{{/* Writable places under a read-only root: /tmp and KAM_VAR_DIR (beat's schedule file). */}}
{{- define "kam.volumes" -}}
- name: tmp
  emptyDir: {}
- name: var
  emptyDir: {}
{{- end }}

{{- define "kam.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: var
  mountPath: /var/lib/kam
{{- end }}

{{/* nodeSelector, tolerations and affinity of one component's values. */}}
{{- define "kam.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Hook annotations for what the migrations job needs before the release's own resources exist. */}}
{{- define "kam.preHookAnnotations" -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: "-10"
helm.sh/hook-delete-policy: before-hook-creation
{{- end }}
