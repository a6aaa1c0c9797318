{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "ladts.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Object name prefix: the release name when it already contains the chart name. */}}
{{- define "ladts.fullname" -}}
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

{{- define "ladts.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "ladts.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ladts
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "ladts.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ladts.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels selecting the scheduler pods only (not the helm test pod). */}}
{{- define "ladts.podSelectorLabels" -}}
{{ include "ladts.selectorLabels" . }}
app.kubernetes.io/component: scheduler
{{- end }}

{{/* ServiceAccount of the pod, used by the kube-scheduler container. */}}
{{- define "ladts.schedulerServiceAccount" -}}
{{- include "ladts.fullname" . }}
{{- end }}

{{/* ServiceAccount of the ladts serve container (its token Secret is mounted there only). */}}
{{- define "ladts.extenderServiceAccount" -}}
{{- printf "%s-extender" (include "ladts.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Cluster version as an image tag: v1.31.4+k3s1 and v1.30.4-eks-a737599 become vX.Y.Z. */}}
{{- define "ladts.clusterVersionTag" -}}
{{- $v := semver .Capabilities.KubeVersion.Version }}
{{- printf "v%d.%d.%d" $v.Major $v.Minor $v.Patch }}
{{- end }}

{{/* image reference: registry/repository[:tag][@digest] (args: dict "image" ... "tag" ...). */}}
{{- define "ladts.image" -}}
{{- $repo := .image.repository }}
{{- if .image.registry }}{{ $repo = printf "%s/%s" .image.registry .image.repository }}{{ end }}
{{- if .image.digest }}
{{- printf "%s@%s" $repo .image.digest }}
{{- else }}
{{- printf "%s:%s" $repo .tag }}
{{- end }}
{{- end }}

{{- define "ladts.schedulerImage" -}}
{{- include "ladts.image" (dict "image" .Values.scheduler.image "tag" (.Values.scheduler.image.tag | default (include "ladts.clusterVersionTag" .))) }}
{{- end }}

{{- define "ladts.serveImage" -}}
{{- include "ladts.image" (dict "image" .Values.serve.image "tag" (.Values.serve.image.tag | default .Chart.AppVersion)) }}
{{- end }}

{{/* Name of the ConfigMap holding the ONNX policy, empty when the bundled policy (or, with
serve.policy.bundled false, the heuristic) is served. */}}
{{- define "ladts.policyConfigMap" -}}
{{- if .Values.serve.policy.configMapName }}
{{- .Values.serve.policy.configMapName }}
{{- else if .Values.serve.policy.onnxBase64 }}
{{- printf "%s-policy" (include "ladts.fullname" .) }}
{{- end }}
{{- end }}

{{- define "ladts.leaderElect" -}}
{{- if gt (int .Values.replicaCount) 1 }}true{{ else }}false{{ end }}
{{- end }}

{{/* Paths inside the pod. */}}
{{- define "ladts.paths.schedulerConfig" -}}/etc/kubernetes/ladts-scheduler/scheduler-config.yaml{{- end }}
{{- define "ladts.paths.serveSettings" -}}/etc/ladts/serve/settings.yaml{{- end }}
{{- define "ladts.paths.policyDir" -}}/etc/ladts/policy{{- end }}
{{- define "ladts.paths.profiles" -}}/etc/ladts/gpu-profiles/gpu-profiles.yaml{{- end }}
{{- define "ladts.paths.traceDir" -}}/var/lib/ladts/trace{{- end }}
{{- define "ladts.paths.promToken" -}}/etc/ladts/prometheus-token/token{{- end }}
{{- define "ladts.paths.promCA" -}}/etc/ladts/prometheus-ca/ca.crt{{- end }}

{{/*
The `ladts serve` settings file (keys: the fields of ladts_operator.settings.ServeSettings).
Every setting the chart controls is here, so a renamed flag touches this one template.
*/}}
{{- define "ladts.serveSettings" -}}
{{- $s := dict
  "host" .Values.serve.listenAddress
  "port" (int .Values.serve.port)
  "heuristic" .Values.serve.heuristic
  "policy" (ternary "bundled" "none" (ne .Values.serve.policy.bundled false))
  "policy_threads" (int .Values.serve.policy.threads)
  "policy_poll_s" .Values.serve.policy.pollSeconds
  "debug_decisions" (int .Values.serve.debugDecisions)
  "write_decision" .Values.serve.writeDecision
  "log_level" .Values.serve.logLevel
  "prometheus_timeout_s" .Values.prometheus.timeoutSeconds
  "prometheus_interval_s" .Values.prometheus.intervalSeconds
  "metrics_ttl_s" .Values.prometheus.metricsTTLSeconds
  "require_fresh_metrics" .Values.prometheus.requireFreshMetrics
}}
{{- if include "ladts.policyConfigMap" . }}
{{- $_ := set $s "policy" (printf "%s/%s" (include "ladts.paths.policyDir" .) .Values.serve.policy.key) }}
{{- end }}
{{- if .Values.serve.gpuProfiles }}
{{- $_ := set $s "profiles" (include "ladts.paths.profiles" .) }}
{{- end }}
{{- if .Values.prometheus.url }}
{{- $_ := set $s "prometheus_url" .Values.prometheus.url }}
{{- end }}
{{- if .Values.prometheus.bearerTokenSecret.name }}
{{- $_ := set $s "prometheus_token_file" (include "ladts.paths.promToken" .) }}
{{- end }}
{{- if .Values.prometheus.caConfigMap.name }}
{{- $_ := set $s "prometheus_ca_file" (include "ladts.paths.promCA" .) }}
{{- end }}
{{- if .Values.serve.trace.enabled }}
{{- $_ := set $s "trace_path" (printf "%s/trace.jsonl" (include "ladts.paths.traceDir" .)) }}
{{- $_ := set $s "trace_max_bytes" (int64 .Values.serve.trace.maxBytes) }}
{{- $_ := set $s "trace_backups" (int .Values.serve.trace.backups) }}
{{- end }}
{{- toYaml (merge (deepCopy .Values.serve.extraSettings) $s) }}
{{- end }}

{{/* Fail early, with a message, on combinations the schema cannot express. */}}
{{- define "ladts.validate" -}}
{{- if eq .Values.schedulerName "default-scheduler" }}
{{- fail "schedulerName must not be default-scheduler: this chart runs a second scheduler beside the cluster's own" }}
{{- end }}
{{- if and .Values.serviceMonitor.enabled (eq .Values.serve.listenAddress "127.0.0.1") }}
{{- fail "serviceMonitor.enabled needs serve.listenAddress: 0.0.0.0 (a scrape cannot reach 127.0.0.1 in the pod); restrict access with networkPolicy.enabled" }}
{{- end }}
{{- $owned := dict "host" "serve.listenAddress" "port" "serve.port" "policy" "serve.policy.*" "profiles" "serve.gpuProfiles" "trace_path" "serve.trace.*" "prometheus_url" "prometheus.url" "prometheus_token_file" "prometheus.bearerTokenSecret" "prometheus_ca_file" "prometheus.caConfigMap" "kubeconfig" "(in-cluster login)" "offline" "(a real cluster)" }}
{{- range $key, $value := .Values.serve.extraSettings }}
{{- if hasKey $owned $key }}
{{- fail (printf "serve.extraSettings.%s is set by the chart: use %s" $key (get $owned $key)) }}
{{- end }}
{{- end }}
{{- if and .Values.serve.policy.configMapName .Values.serve.policy.onnxBase64 }}
{{- fail "set serve.policy.configMapName or serve.policy.onnxBase64, not both" }}
{{- end }}
{{- end }}
