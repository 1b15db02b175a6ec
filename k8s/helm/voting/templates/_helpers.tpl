{{/*
Names, labels, and the pieces every pod shares. The components themselves are declared
once, in "voting.components": what each one runs, listens on, and needs.
*/}}

{{- define "voting.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "voting.fullname" -}}
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

{{- define "voting.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every resource of the release. */}}
{{- define "voting.labels" -}}
helm.sh/chart: {{ include "voting.chart" . }}
app.kubernetes.io/name: {{ include "voting.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: voting
{{- end }}

{{/* Selects every pod of the release. */}}
{{- define "voting.releaseSelector" -}}
app.kubernetes.io/name: {{ include "voting.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Selects one component's pods. Context: dict root, name. */}}
{{- define "voting.selectorLabels" -}}
{{ include "voting.releaseSelector" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/* Labels of one component's resources. Context: dict root, name. */}}
{{- define "voting.componentLabels" -}}
{{ include "voting.labels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{- define "voting.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "voting.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "voting.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name: name an existing service account when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The service processes: the `voting` subcommand each runs, its port (the services'
defaults in voting/config.py; tests/k8s checks they agree), the setting that makes it
listen on every interface, the gRPC service its readiness probe asks about (empty: the
server as a whole), and what it needs from the cluster:
  kafka, dynamodb, redis   connection settings held in Secrets
  voterKey                 VOTING_VOTER_KEY_SECRET (who hashes or compares voter keys)
  jwt                      token verification keys (who authenticates callers)
  receiptSigner            the receipt signing key; receiptVerifier: the public keys
  tlsServer                serves TLS; tlsClient: calls another service over TLS
*/}}
{{- define "voting.components" -}}
command:
  args: [command-svc]
  port: 50051
  portName: grpc
  listenEnv: VOTING_COMMAND_LISTEN
  grpcService: voting.v1.CommandService
  needs: [kafka, dynamodb, redis, voterKey, jwt, receiptSigner, tlsServer]
query:
  args: [query-svc]
  port: 50052
  portName: grpc
  listenEnv: VOTING_QUERY_LISTEN
  grpcService: voting.v1.QueryService
  needs: [dynamodb, redis, voterKey, jwt, receiptVerifier, tlsServer]
worker:
  args: [worker]
  port: 50053
  portName: grpc
  listenEnv: VOTING_WORKER_HEALTH_LISTEN
  grpcService: ""
  needs: [kafka, dynamodb, tlsServer]
projector:
  args: [projector]
  port: 50054
  portName: grpc
  listenEnv: VOTING_PROJECTOR_LISTEN
  grpcService: voting.v1.AdminService
  needs: [kafka, dynamodb, redis, jwt, tlsServer]
gateway:
  args: [gateway]
  port: 8080
  portName: http
  listenEnv: VOTING_GATEWAY_LISTEN
  needs: [tlsClient]
{{- end }}

{{/* The components this release runs, in a fixed order. */}}
{{- define "voting.enabledComponents" -}}
{{- $names := list "command" "query" "worker" "projector" }}
{{- if .Values.gateway.enabled }}{{ $names = append $names "gateway" }}{{ end }}
{{- toJson $names }}
{{- end }}

{{- define "voting.queryTarget" -}}
{{- $suffix := ternary "query-headless" "query" .Values.query.headless }}
{{- default (printf "%s-%s:50052" (include "voting.fullname" .) $suffix) .Values.gateway.queryTarget }}
{{- end }}

{{/*
Settings every process shares, without secrets: the ConfigMap's data, and the inline
env of the `voting init` hook (which runs before the ConfigMap exists).
*/}}
{{- define "voting.configData" -}}
{{- $v := .Values }}
VOTING_ENVIRONMENT: {{ $v.environment | quote }}
VOTING_LOG_LEVEL: {{ $v.logLevel | quote }}
VOTING_AUTH_MODE: {{ $v.auth.mode | quote }}
VOTING_JWT_ISSUER: {{ $v.auth.jwt.issuer | quote }}
VOTING_JWT_AUDIENCE: {{ $v.auth.jwt.audience | quote }}
VOTING_KAFKA_BOOTSTRAP_SERVERS: {{ $v.kafka.bootstrapServers | quote }}
VOTING_KAFKA_REPLICATION_FACTOR: {{ $v.kafka.replicationFactor | quote }}
VOTING_PARTITIONS: {{ $v.kafka.partitions | quote }}
VOTING_POLLS_PARTITIONS: {{ $v.kafka.pollsPartitions | quote }}
{{- if $v.kafka.clientConfig }}
VOTING_KAFKA_CLIENT_CONFIG: {{ toJson $v.kafka.clientConfig | quote }}
{{- end }}
VOTING_DYNAMODB_ENDPOINT_URL: {{ $v.dynamodb.endpointUrl | quote }}
VOTING_DYNAMODB_REGION: {{ $v.dynamodb.region | quote }}
{{- if not $v.redis.existingSecret.name }}
VOTING_REDIS_URL: {{ $v.redis.url | quote }}
{{- end }}
VOTING_SHUTDOWN_GRACE_S: {{ $v.shutdown.graceSeconds | quote }}
VOTING_HEALTH_LISTEN: {{ printf "0.0.0.0:%v" $v.healthPort | quote }}
{{- if $v.metrics.enabled }}
VOTING_METRICS_LISTEN: {{ printf "0.0.0.0:%v" $v.metrics.port | quote }}
{{- end }}
{{- if $v.otlp.endpoint }}
OTEL_EXPORTER_OTLP_ENDPOINT: {{ $v.otlp.endpoint | quote }}
OTEL_TRACES_SAMPLER: {{ $v.otlp.sampler | quote }}
OTEL_TRACES_SAMPLER_ARG: {{ $v.otlp.samplerArg | quote }}
{{- end }}
{{- range $name, $value := $v.extraEnv }}
{{ $name }}: {{ $value | quote }}
{{- end }}
{{- end }}

{{/*
What a process needs from the cluster, as env entries. Context: dict root, needs.
*/}}
{{- define "voting.neededEnv" -}}
{{- $v := .root.Values }}
{{- if and (has "kafka" .needs) $v.kafka.clientConfigSecret.name }}
- name: VOTING_KAFKA_CLIENT_CONFIG
  valueFrom:
    secretKeyRef: {name: {{ $v.kafka.clientConfigSecret.name }}, key: {{ $v.kafka.clientConfigSecret.key }}}
{{- end }}
{{- if and (has "dynamodb" .needs) $v.dynamodb.credentialsSecret.name }}
- name: VOTING_DYNAMODB_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef: {name: {{ $v.dynamodb.credentialsSecret.name }}, key: {{ $v.dynamodb.credentialsSecret.accessKeyIdKey }}}
- name: VOTING_DYNAMODB_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef: {name: {{ $v.dynamodb.credentialsSecret.name }}, key: {{ $v.dynamodb.credentialsSecret.secretAccessKeyKey }}}
{{- end }}
{{- if and (has "redis" .needs) $v.redis.existingSecret.name }}
- name: VOTING_REDIS_URL
  valueFrom:
    secretKeyRef: {name: {{ $v.redis.existingSecret.name }}, key: {{ $v.redis.existingSecret.key }}}
{{- end }}
{{- if and (has "voterKey" .needs) $v.security.voterKeySecret.name }}
- name: VOTING_VOTER_KEY_SECRET
  valueFrom:
    secretKeyRef: {name: {{ $v.security.voterKeySecret.name }}, key: {{ $v.security.voterKeySecret.key }}}
{{- end }}
{{- if and (has "jwt" .needs) (eq $v.auth.mode "jwt") }}
- name: VOTING_JWT_KEYS_DIR
  value: /etc/voting/jwt
{{- end }}
{{- if and (has "receiptSigner" .needs) $v.receipts.enabled }}
- name: VOTING_RECEIPT_PRIVATE_KEY_FILE
  value: /etc/voting/receipt/receipt.pem
- name: VOTING_RECEIPT_KEY_ID
  value: {{ $v.receipts.keyId | quote }}
{{- end }}
{{- if and (has "receiptVerifier" .needs) $v.receipts.enabled }}
- name: VOTING_RECEIPT_PUBLIC_KEYS
  valueFrom:
    secretKeyRef: {name: {{ $v.receipts.existingSecret }}, key: public-keys.json}
{{- end }}
{{- if and (has "tlsServer" .needs) $v.tls.enabled }}
- name: VOTING_TLS_CERT
  value: /etc/voting/tls/tls.crt
- name: VOTING_TLS_KEY
  value: /etc/voting/tls/tls.key
- name: VOTING_TLS_CA
  value: /etc/voting/tls/ca.crt
- name: VOTING_TLS_CLIENT_AUTH
  value: {{ $v.tls.clientAuth | quote }}
{{- end }}
{{- if and (has "tlsClient" .needs) $v.tls.enabled }}
- name: VOTING_TLS_CA
  value: /etc/voting/tls-ca/ca.crt
{{- if $v.tls.clientSecret }}
- name: VOTING_TLS_CLIENT_CERT
  value: /etc/voting/tls-client/tls.crt
- name: VOTING_TLS_CLIENT_KEY
  value: /etc/voting/tls-client/tls.key
{{- end }}
{{- end }}
{{- end }}

{{/* Volumes (name, secret, items, mount path) of what a process needs. Context: dict root, needs. */}}
{{- define "voting.neededMounts" -}}
{{- $v := .root.Values }}
{{- $mounts := list }}
{{- if and (has "kafka" .needs) $v.kafka.caSecret.name }}
{{- $mounts = append $mounts (dict "name" "kafka-ca" "secret" $v.kafka.caSecret.name "path" "/etc/voting/kafka-ca" "items" (list $v.kafka.caSecret.key)) }}
{{- end }}
{{- if and (has "jwt" .needs) (eq $v.auth.mode "jwt") }}
{{- $mounts = append $mounts (dict "name" "jwt-keys" "secret" $v.auth.jwt.keysSecret "path" "/etc/voting/jwt" "items" (list)) }}
{{- end }}
{{- if and (has "receiptSigner" .needs) $v.receipts.enabled }}
{{- $mounts = append $mounts (dict "name" "receipt-key" "secret" $v.receipts.existingSecret "path" "/etc/voting/receipt" "items" (list "receipt.pem")) }}
{{- end }}
{{- if and (has "tlsServer" .needs) $v.tls.enabled }}
{{- $mounts = append $mounts (dict "name" "tls" "secret" $v.tls.existingSecret "path" "/etc/voting/tls" "items" (list "tls.crt" "tls.key" "ca.crt")) }}
{{- end }}
{{- if and (has "tlsClient" .needs) $v.tls.enabled }}
{{- $mounts = append $mounts (dict "name" "tls-ca" "secret" $v.tls.existingSecret "path" "/etc/voting/tls-ca" "items" (list "ca.crt")) }}
{{- if $v.tls.clientSecret }}
{{- $mounts = append $mounts (dict "name" "tls-client" "secret" $v.tls.clientSecret "path" "/etc/voting/tls-client" "items" (list "tls.crt" "tls.key")) }}
{{- end }}
{{- end }}
{{- toJson $mounts }}
{{- end }}

{{/*
A container of the `voting` image and the pod around it: security contexts, /tmp,
the mounted secrets. Context: dict root, name (container name), args, needs, env (more
env entries, YAML), envFrom (bool: the shared ConfigMap), inlineConfig (bool: the shared
settings inline instead), ports and probes (YAML), preStop (bool), resources, extraEnv
(map), and optionally serviceAccountName, restartPolicy, terminationGracePeriodSeconds.
*/}}
{{- define "voting.podSpec" -}}
{{- $root := .root }}
{{- $v := $root.Values }}
{{- $mounts := include "voting.neededMounts" (dict "root" $root "needs" .needs) | fromJsonArray }}
serviceAccountName: {{ .serviceAccountName | default (include "voting.serviceAccountName" $root) }}
automountServiceAccountToken: false
enableServiceLinks: false
{{- with $v.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $v.podSecurityContext | nindent 2 }}
{{- if .terminationGracePeriodSeconds }}
terminationGracePeriodSeconds: {{ .terminationGracePeriodSeconds }}
{{- end }}
{{- with .restartPolicy }}
restartPolicy: {{ . }}
{{- end }}
containers:
  - name: {{ .name }}
    image: {{ include "voting.image" $root }}
    imagePullPolicy: {{ $v.image.pullPolicy }}
    args: {{ toJson .args }}
    {{- if .envFrom }}
    envFrom:
      - configMapRef:
          name: {{ include "voting.fullname" $root }}-config
    {{- end }}
    env:
      {{- if .inlineConfig }}
      {{- range $name, $value := include "voting.configData" $root | fromYaml }}
      - name: {{ $name }}
        value: {{ $value | quote }}
      {{- end }}
      {{- end }}
      {{- with .env }}
      {{- . | nindent 6 }}
      {{- end }}
      {{- with include "voting.neededEnv" (dict "root" $root "needs" .needs) | trim }}
      {{- . | nindent 6 }}
      {{- end }}
      {{- range $name, $value := .extraEnv }}
      - name: {{ $name }}
        value: {{ $value | quote }}
      {{- end }}
    {{- with .ports }}
    ports:
      {{- . | nindent 6 }}
    {{- end }}
    {{- with .probes }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- if .preStop }}
    lifecycle:
      preStop:
        sleep:
          seconds: {{ $v.shutdown.preStopSleepSeconds }}
    {{- end }}
    resources:
      {{- toYaml .resources | nindent 6 }}
    securityContext:
      {{- toYaml $v.containerSecurityContext | nindent 6 }}
    volumeMounts:
      - name: tmp
        mountPath: /tmp
      {{- range $mounts }}
      - name: {{ .name }}
        mountPath: {{ .path }}
        readOnly: true
      {{- end }}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: 64Mi
  {{- range $mounts }}
  - name: {{ .name }}
    secret:
      secretName: {{ .secret }}
      defaultMode: 0440
      {{- with .items }}
      items:
        {{- range . }}
        - key: {{ . }}
          path: {{ . }}
        {{- end }}
      {{- end }}
  {{- end }}
{{- end }}

{{/*
Settings the chart refuses, with the reason; rendered (as nothing) by configmap.yaml.
*/}}
{{- define "voting.validate" -}}
{{- $v := .Values }}
{{- if eq $v.environment "production" }}
{{- if ne $v.auth.mode "jwt" }}
{{- fail "auth.mode=development needs environment=development: production authenticates callers with tokens" }}
{{- end }}
{{- if not $v.security.voterKeySecret.name }}
{{- fail "security.voterKeySecret.name: production needs VOTING_VOTER_KEY_SECRET from a Secret" }}
{{- end }}
{{- end }}
{{- if and (eq $v.auth.mode "jwt") (not $v.auth.jwt.keysSecret) }}
{{- fail "auth.jwt.keysSecret: auth.mode=jwt needs a Secret of <kid>.pub.pem token verification keys" }}
{{- end }}
{{- if not (or $v.redis.existingSecret.name $v.redis.url) }}
{{- fail "redis: set redis.existingSecret.name (a Secret holding VOTING_REDIS_URL) or redis.url" }}
{{- end }}
{{- if and $v.kafka.clientConfig $v.kafka.clientConfigSecret.name }}
{{- fail "kafka: set clientConfig or clientConfigSecret, not both (they are one setting)" }}
{{- end }}
{{- if gt (int $v.worker.replicas) (int $v.kafka.partitions) }}
{{- fail "worker.replicas must not exceed kafka.partitions: a worker without a partition idles" }}
{{- end }}
{{- if gt (int $v.projector.replicas) (int $v.kafka.partitions) }}
{{- fail "projector.replicas must not exceed kafka.partitions: a projector without a partition idles" }}
{{- end }}
{{- if and $v.tls.enabled (not $v.tls.existingSecret) }}
{{- fail "tls.existingSecret: tls.enabled needs a Secret with tls.crt, tls.key and ca.crt" }}
{{- end }}
{{- if and $v.tls.enabled (eq $v.tls.clientAuth "require") $v.gateway.enabled (not $v.tls.clientSecret) }}
{{- fail "tls.clientSecret: with tls.clientAuth=require the gateway needs a client certificate" }}
{{- end }}
{{- if and $v.receipts.enabled (not $v.receipts.existingSecret) }}
{{- fail "receipts.existingSecret: receipts need a Secret with receipt.pem and public-keys.json" }}
{{- end }}
{{- if le (int $v.shutdown.terminationGracePeriodSeconds) (add $v.shutdown.preStopSleepSeconds $v.shutdown.graceSeconds | int) }}
{{- fail "shutdown.terminationGracePeriodSeconds must exceed preStopSleepSeconds + graceSeconds, or SIGKILL cuts the graceful stop short" }}
{{- end }}
{{- end }}
