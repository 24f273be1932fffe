{{/* Names: <release>-rbs (or the release name when it already says rbs), then -orchestrator / -worker. */}}
{{- define "rbs.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "rbs.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "rbs.labels" -}}
{{ include "rbs.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* "repository:tag" of an image value (index . 0), the tag defaulting to the chart's appVersion. */}}
{{- define "rbs.image" -}}
{{- $image := index . 0 -}}
{{- printf "%s:%s" $image.repository ($image.tag | default (index . 1).Chart.AppVersion) -}}
{{- end -}}

{{/* Stops the render naming every required value that is missing, all at once. */}}
{{- define "rbs.checkValues" -}}
{{- $v := .Values -}}
{{- $missing := list -}}
{{- range $name, $value := dict
  "image.repository" $v.image.repository
  "agents.image.repository" $v.agents.image.repository
  "agents.storageClass" $v.agents.storageClass
  "temporal.address" $v.temporal.address
  "spanner.projectId" $v.spanner.projectId
  "spanner.instanceId" $v.spanner.instanceId
  "spanner.databaseId" $v.spanner.databaseId
}}
{{- if not $value }}{{ $missing = append $missing $name }}{{ end -}}
{{- end -}}
{{- if not (or $v.ca.existingSecret (and $v.ca.certificate $v.ca.key)) -}}
{{- $missing = append $missing "ca.existingSecret (or both ca.certificate and ca.key)" -}}
{{- end -}}
{{- if and $v.orchestrator.ingress.enabled (not $v.orchestrator.ingress.host) -}}
{{- $missing = append $missing "orchestrator.ingress.host (TLS passthrough routes by SNI host)" -}}
{{- end -}}
{{- with $v.agents.gateway }}{{ if .enabled }}
{{- if not .domain }}{{ $missing = append $missing "agents.gateway.domain (sessions are <namespace>.<domain>)" }}{{ end -}}
{{- if not .className }}{{ $missing = append $missing "agents.gateway.className" }}{{ end -}}
{{- if not (or $v.agents.clients.namespaceLabels $v.agents.clients.cidrs) }}{{ $missing = append $missing "agents.clients.namespaceLabels or agents.clients.cidrs (where the gateway's proxies connect from: agents admit nobody else)" }}{{ end -}}
{{- if $v.agents.address }}{{ fail "agents.address and agents.gateway.enabled exclude each other: with the gateway, agents are <namespace>.<agents.gateway.domain>" }}{{ end -}}
{{- end }}{{ end -}}
{{- if $missing -}}
{{- fail (printf "missing required values (see values.yaml): %s" (join ", " $missing)) -}}
{{- end -}}
{{- end -}}

{{- define "rbs.caSecretName" -}}
{{- .Values.ca.existingSecret | default (printf "%s-ca" (include "rbs.fullname" .)) -}}
{{- end -}}

{{/* Where lib/config.ts puts RBS_HOME; lib/pki/ca.ts loads the CA from its pki/ directory. */}}
{{- define "rbs.home" -}}/var/lib/rbs{{- end -}}

{{/* Where the signer beside each service keeps that service's own certificate (RBS_SERVICE_TLS_DIR). */}}
{{- define "rbs.serviceTlsDir" -}}/etc/rbs/service-tls{{- end -}}

{{/* The signer beside each service: on the pod's loopback, so nothing outside the pod reaches it. */}}
{{- define "rbs.signerAddress" -}}127.0.0.1:7445{{- end -}}

{{/* The container security context of every RBS container: Pod Security `restricted`. */}}
{{- define "rbs.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/*
The pod spec both Deployments share, for component (index . 1): the Pod Security `restricted` profile, a
writable RBS_HOME and /tmp on a read-only root, and the settings. The CA key is mounted into the signer
alone, a sidecar that keeps the component's own certificate in service-tls before it serves and then
certifies only what that component may have signed (services/signer/policy.ts): the component itself,
the orchestrator facing the internet above all, never holds the key.
*/}}
{{- define "rbs.podSpec" -}}
{{- $ := index . 0 -}}
{{- $component := index . 1 -}}
{{- $values := index $.Values $component -}}
serviceAccountName: {{ include "rbs.fullname" $ }}-{{ $component }}
{{- with $.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
enableServiceLinks: false
securityContext:
  runAsNonRoot: true
  runAsUser: {{ $.Values.securityContext.runAsUser }}
  runAsGroup: {{ $.Values.securityContext.runAsGroup }}
  fsGroup: {{ $.Values.securityContext.runAsGroup }}
  seccompProfile:
    type: RuntimeDefault
initContainers:
  - name: signer
    image: {{ include "rbs.image" (list $.Values.image $) }}
    imagePullPolicy: {{ $.Values.image.pullPolicy }}
    restartPolicy: Always # a native sidecar: up (its startup probe passed) before the component starts
    args: [node, dist/services/signer/main.js]
    env:
      - name: RBS_HOME
        value: {{ include "rbs.home" $ }}
      - name: RBS_SIGNER_LISTEN
        value: {{ include "rbs.signerAddress" $ | quote }}
      - name: RBS_SIGNER_PUBLISH
        value: {{ $component }}
      - name: RBS_SERVICE_TLS_DIR
        value: {{ include "rbs.serviceTlsDir" $ }}
    securityContext:
      {{- include "rbs.containerSecurityContext" $ | nindent 6 }}
    resources:
      {{- toYaml $.Values.signer.resources | nindent 6 }}
    startupProbe:
      tcpSocket:
        port: 7445
      periodSeconds: 1
      failureThreshold: 60
    volumeMounts:
      - name: ca
        mountPath: {{ include "rbs.home" $ }}/pki
        readOnly: true
      - name: service-tls
        mountPath: {{ include "rbs.serviceTlsDir" $ }}
      - name: tmp
        mountPath: /tmp
containers:
  - name: {{ $component }}
    image: {{ include "rbs.image" (list $.Values.image $) }}
    imagePullPolicy: {{ $.Values.image.pullPolicy }}
    args: [node, dist/services/{{ $component }}/main.js]
    envFrom:
      - configMapRef:
          name: {{ include "rbs.fullname" $ }}
    {{- include "rbs.temporal.env" $ | nindent 4 }}
    securityContext:
      {{- include "rbs.containerSecurityContext" $ | nindent 6 }}
    resources:
      {{- toYaml $values.resources | nindent 6 }}
    volumeMounts:
      - name: home
        mountPath: {{ include "rbs.home" $ }}
      - name: service-tls
        mountPath: {{ include "rbs.serviceTlsDir" $ }}
        readOnly: true
      - name: tmp
        mountPath: /tmp
      {{- include "rbs.temporal.volumeMounts" $ | nindent 6 }}
    ports:
      - name: metrics
        containerPort: {{ $.Values.metrics.port }}
        protocol: TCP
{{- if eq $component "orchestrator" }}
      - name: grpc
        containerPort: {{ $values.port }}
        protocol: TCP
    # gRPC here requires a client certificate, which the kubelet has none of: accepting connections is the signal.
    readinessProbe:
      tcpSocket:
        port: grpc
      periodSeconds: 5
    livenessProbe:
      tcpSocket:
        port: grpc
      initialDelaySeconds: 10
      periodSeconds: 10
{{- end }}
volumes:
  - name: home
    emptyDir: {}
  - name: tmp
    emptyDir: {}
  - name: service-tls
    emptyDir:
      medium: Memory
  - name: ca
    secret:
      secretName: {{ include "rbs.caSecretName" $ }}
      defaultMode: 288 # 0440: group-readable, the group being fsGroup
      items:
        - key: tls.crt
          path: ca.crt
        - key: tls.key
          path: ca.key
  {{- include "rbs.temporal.volumes" $ | nindent 2 }}
{{- with $values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* A label map as the backend's RBS_KUBE_INGRESS_NAMESPACE_LABELS wants it: k=v,k2=v2. */}}
{{- define "rbs.labelList" -}}
{{- $pairs := list -}}
{{- range $key, $value := . -}}
{{- $pairs = append $pairs (printf "%s=%s" $key $value) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/* A value as an environment variable's text: whole numbers from YAML (float64 to Helm) without an exponent. */}}
{{- define "rbs.envText" -}}
{{- if kindIs "invalid" . -}}
{{- else if and (kindIs "float64" .) (eq . (floor .)) -}}
{{- printf "%.0f" . -}}
{{- else -}}
{{- toString . -}}
{{- end -}}
{{- end -}}

{{/*
The release label value of everything the worker makes (RBS_KUBE_RELEASE): the release's name. The admission policy
is named after it, so a second release of the same name, in any namespace, cannot be installed beside this one.
*/}}
{{- define "rbs.sessionRelease" -}}{{ .Release.Name }}{{- end -}}

{{/* Who the worker is to the API server: its ServiceAccount. */}}
{{- define "rbs.workerUser" -}}
system:serviceaccount:{{ .Release.Namespace }}:{{ include "rbs.fullname" . }}-worker
{{- end -}}

{{/* The label keys and names of lib/compute/kubernetes/objects.ts (LABEL, AGENT), for the admission policy. */}}
{{- define "rbs.sessionKeys" -}}
managedBy: app.kubernetes.io/managed-by
managedByValue: rbs
release: rbs.dev/release
sessionId: rbs.dev/session-id
volume: rbs.dev/volume
agentTlsSecret: agent-tls
{{- end -}}

{{/* The worker's RBAC rules: BACKEND_RULES of lib/compute/kubernetes/permissions.ts (helm-chart.test.ts compares them). */}}
{{- define "rbs.workerRules" -}}
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [serviceaccounts, services, resourcequotas, limitranges, persistentvolumeclaims]
  verbs: [create, patch]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [list, create, patch]
# Only the optional ones, once no longer configured: never default-deny, agent-ingress or agent-egress (though create and patch above reach every policy).
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  resourceNames: [agent-metrics, agent-traces]
  verbs: [delete]
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [get]
- apiGroups: [""]
  resources: [secrets]
  verbs: [create]
# Only the agent's TLS Secret of each session namespace, which the worker writes.
- apiGroups: [""]
  resources: [secrets]
  resourceNames: [agent-tls]
  verbs: [get, patch]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, patch, delete]
# Why an agent pod was never Ready (a volume that did not mount, a probe that never passed): its last warning.
- apiGroups: [""]
  resources: [events]
  verbs: [list]
# Whether an agent's node still exists: a deleted node's pods are gone.
- apiGroups: [""]
  resources: [nodes]
  verbs: [get]
- apiGroups: [""]
  resources: [persistentvolumes]
  verbs: [get, list, patch, delete]
{{- if .Values.agents.gateway.enabled }}
# GATEWAY_RULES: each session's TLSRoute, applied and read for its status.
- apiGroups: [gateway.networking.k8s.io]
  resources: [tlsroutes]
  verbs: [get, create, patch]
{{- end }}
{{- end -}}

{{/* The Gateway of the agents' routes (gateway.yaml), as RBS_KUBE_GATEWAY names it. */}}
{{- define "rbs.gatewayName" -}}{{ include "rbs.fullname" . }}-agents{{- end -}}
