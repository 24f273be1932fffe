{{- /*
How the orchestrator and the worker authenticate to Temporal (temporal.auth in values.yaml; lib/temporal/config.ts
reads the RBS_TEMPORAL_* settings): none, mtls (a client-certificate Secret mounted read-only) or apiKey (a Secret
key passed as RBS_TEMPORAL_API_KEY). Certificates are files in the pod; the API key is never in the ConfigMap.
*/ -}}

{{- define "rbs.temporal.clientDir" -}}/etc/rbs/temporal/client{{- end -}}
{{- define "rbs.temporal.serverCaDir" -}}/etc/rbs/temporal/server-ca{{- end -}}

{{/* Stops the render naming what the chosen mode is missing. */}}
{{- define "rbs.temporal.check" -}}
{{- $auth := .Values.temporal.auth -}}
{{- if not (has $auth.mode (list "none" "mtls" "apiKey")) -}}
{{- fail (printf "temporal.auth.mode must be none, mtls or apiKey, not %q" $auth.mode) -}}
{{- end -}}
{{- if and (eq $auth.mode "mtls") (not $auth.mtls.secretName) -}}
{{- fail "temporal.auth.mode=mtls needs temporal.auth.mtls.secretName: a Secret with the client certificate and key as tls.crt and tls.key" -}}
{{- end -}}
{{- if and (eq $auth.mode "apiKey") (not $auth.apiKey.secretName) -}}
{{- fail "temporal.auth.mode=apiKey needs temporal.auth.apiKey.secretName: a Secret holding the API key" -}}
{{- end -}}
{{- if and (eq $auth.mode "none") (or $auth.serverCa.secretName $auth.serverName) -}}
{{- fail "temporal.auth.serverCa and temporal.auth.serverName configure TLS to Temporal: set temporal.auth.mode to mtls or apiKey" -}}
{{- end -}}
{{- end -}}

{{/* ConfigMap entries: where the mounted files are. */}}
{{- define "rbs.temporal.settings" -}}
{{- include "rbs.temporal.check" . -}}
{{- $auth := .Values.temporal.auth -}}
{{- if eq $auth.mode "mtls" }}
RBS_TEMPORAL_TLS_CERT: {{ printf "%s/tls.crt" (include "rbs.temporal.clientDir" .) | quote }}
RBS_TEMPORAL_TLS_KEY: {{ printf "%s/tls.key" (include "rbs.temporal.clientDir" .) | quote }}
{{- end }}
{{- if and (ne $auth.mode "none") $auth.serverCa.secretName }}
RBS_TEMPORAL_TLS_CA: {{ printf "%s/ca.crt" (include "rbs.temporal.serverCaDir" .) | quote }}
{{- end }}
{{- if and (ne $auth.mode "none") $auth.serverName }}
RBS_TEMPORAL_TLS_SERVER_NAME: {{ $auth.serverName | quote }}
{{- end }}
{{- end -}}

{{/* The container's env: the API key, straight from its Secret. */}}
{{- define "rbs.temporal.env" -}}
{{- $auth := .Values.temporal.auth -}}
{{- if eq $auth.mode "apiKey" }}
env:
  - name: RBS_TEMPORAL_API_KEY
    valueFrom:
      secretKeyRef:
        name: {{ $auth.apiKey.secretName }}
        key: {{ $auth.apiKey.secretKey }}
{{- end }}
{{- end -}}

{{- define "rbs.temporal.volumeMounts" -}}
{{- $auth := .Values.temporal.auth -}}
{{- if eq $auth.mode "mtls" }}
- name: temporal-client
  mountPath: {{ include "rbs.temporal.clientDir" . }}
  readOnly: true
{{- end }}
{{- if and (ne $auth.mode "none") $auth.serverCa.secretName }}
- name: temporal-server-ca
  mountPath: {{ include "rbs.temporal.serverCaDir" . }}
  readOnly: true
{{- end }}
{{- end -}}

{{- define "rbs.temporal.volumes" -}}
{{- $auth := .Values.temporal.auth -}}
{{- if eq $auth.mode "mtls" }}
- name: temporal-client
  secret:
    secretName: {{ $auth.mtls.secretName }}
    defaultMode: 288 # 0440: group-readable, the group being fsGroup
    items:
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
{{- end }}
{{- if and (ne $auth.mode "none") $auth.serverCa.secretName }}
- name: temporal-server-ca
  secret:
    secretName: {{ $auth.serverCa.secretName }}
    defaultMode: 292 # 0444
    items:
      - key: {{ $auth.serverCa.secretKey }}
        path: ca.crt
{{- end }}
{{- end -}}
