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
{{- $hint := "the wattcast images are published nowhere: build them (make images and load them into kind/k3d, or make images-local for the local node, or push them to your registry), then set image.repository (and image.tag) and images.wattcast; see the README" -}}
{{- $repository := required (printf "image.repository is not set: %s" $hint) .Values.image.repository -}}
{{- $_ := required (printf "images.wattcast is not set: %s" $hint) .Values.images.wattcast -}}
{{- printf "%s:%s" $repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
