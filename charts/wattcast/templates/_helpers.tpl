{{/* The operator's name: the release name, unless it already says wattcast. */}}
{{- define "wattcast.fullname" -}}
{{- if contains "wattcast" .Release.Name -}}
{{- printf "%s-operator" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-wattcast-operator" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "wattcast.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/part-of: wattcast
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{ include "wattcast.selectorLabels" . }}
{{- end -}}

{{/* Labels that select the operator's pods; the name is what experiments' NetworkPolicies admit. */}}
{{- define "wattcast.selectorLabels" -}}
app.kubernetes.io/name: wattcast-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "wattcast.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
