{{/* Chart name, truncated to 63 characters. */}}
{{- define "celeriac.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: the release name, plus the chart name unless the release name contains it. */}}
{{- define "celeriac.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "celeriac.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "celeriac.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: celeriac
{{- end -}}

{{/* Selector labels of the operator pods. */}}
{{- define "celeriac.selectorLabels" -}}
app.kubernetes.io/name: {{ include "celeriac.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* Selector labels of the NATS pods. */}}
{{- define "celeriac.natsSelectorLabels" -}}
app.kubernetes.io/name: {{ include "celeriac.name" . }}-nats
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: nats
{{- end -}}

{{/* The operator's ServiceAccount name. */}}
{{- define "celeriac.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "celeriac.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The operator image reference: digest wins over tag; the tag defaults to appVersion. */}}
{{- define "celeriac.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Name of the deployed NATS server (StatefulSet and Service). */}}
{{- define "celeriac.natsName" -}}
{{- printf "%s-nats" (include "celeriac.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The NATS URL the operator uses: the deployed server, nats.url, or the official chart's "nats" Service in this namespace. */}}
{{- define "celeriac.natsUrl" -}}
{{- if .Values.nats.deploy -}}
{{- printf "nats://%s.%s.svc:4222" (include "celeriac.natsName" .) .Release.Namespace -}}
{{- else if .Values.nats.url -}}
{{- .Values.nats.url -}}
{{- else -}}
{{- printf "nats://nats.%s.svc:4222" .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/* The NATS monitoring endpoint (host:port) for KEDA-scaled Queues, when known. */}}
{{- define "celeriac.natsMonitoringEndpoint" -}}
{{- if .Values.nats.monitoringEndpoint -}}
{{- .Values.nats.monitoringEndpoint -}}
{{- else if .Values.nats.deploy -}}
{{- printf "%s.%s.svc:8222" (include "celeriac.natsName" .) .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/* Pod security context of the "restricted" Pod Security Standard. */}}
{{- define "celeriac.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
fsGroup: {{ .uid }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container security context of the "restricted" Pod Security Standard, with a read-only root filesystem. */}}
{{- define "celeriac.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
Rules the operator needs in every namespace it watches. Each is a call the operator makes
(operator/rbac-calls.ts) or a permission it grants onward in the worker Role it renders
(operator/queue/desired-rbac.ts workerRoleRules), which RBAC requires it to hold itself.
test/charts/rbac.test.ts compares these rules with both lists.
*/}}
{{- define "celeriac.watchedRules" -}}
- apiGroups: ["celeriac.io"]
  resources: ["queues"]
  verbs: ["list", "watch", "patch"]
- apiGroups: ["celeriac.io"]
  resources: ["queues/status"]
  verbs: ["patch"]
- apiGroups: ["celeriac.io"]
  resources: ["queues/finalizers", "schedules/finalizers"]
  verbs: ["update"]
- apiGroups: ["celeriac.io"]
  resources: ["tasks"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# get: granted onward to workers (worker Role)
- apiGroups: ["celeriac.io"]
  resources: ["tasks/status"]
  verbs: ["get", "patch"]
- apiGroups: ["celeriac.io"]
  resources: ["schedules"]
  verbs: ["list", "watch"]
- apiGroups: ["celeriac.io"]
  resources: ["schedules/status"]
  verbs: ["patch"]
- apiGroups: ["celeriac.io"]
  resources: ["workflows"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["celeriac.io"]
  resources: ["workflows/status"]
  verbs: ["patch"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["list", "watch", "get", "create", "patch"]
- apiGroups: ["apps"]
  resources: ["deployments/scale"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["serviceaccounts"]
  verbs: ["get", "create", "patch"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["get", "create", "patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
# granted onward to workers (pod-deletion-cost on their own Pod); the operator never calls it
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "patch"]
- apiGroups: ["keda.sh"]
  resources: ["scaledobjects"]
  verbs: ["get", "create", "patch"]
{{- if or .Values.natsAuth.mint.enabled .Values.natsAuth.accounts.enabled }}
# Minting NATS credentials (mint or accounts mode): the Secret informer, and <queue>-worker-nats /
# celeriac-producer-nats written and deleted
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["list", "watch", "create", "patch", "delete"]
{{- end }}
{{- end -}}

{{/* Rules the operator needs in its own namespace: the leader-election Lease. */}}
{{- define "celeriac.leaseRules" -}}
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "update"]
{{- end -}}

{{/*
Rules the operator needs in the release namespace in accounts mode (natsAuth.accounts.enabled): it keeps
each tenant account's identity seed in Secret celeriac-nats-account-<namespace> there (CELERIAC_NATS_ACCOUNTS_NAMESPACE),
read with get and created on first need; never listed, patched or deleted.
*/}}
{{- define "celeriac.natsAccountsRules" -}}
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "create"]
{{- end -}}

{{/* Fails rendering on value combinations the schema cannot express. */}}
{{- define "celeriac.validate" -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.leaderElect) -}}
{{- fail "replicas > 1 needs leaderElect: true (otherwise every replica reconciles at once)" -}}
{{- end -}}
{{- if and .Values.nats.deploy .Values.nats.url -}}
{{- fail "set either nats.deploy (a NATS deployed with this release) or nats.url (an existing NATS), not both" -}}
{{- end -}}
{{- with .Values.natsAuth.mint -}}
{{- if .enabled -}}
{{- if $.Values.nats.deploy -}}
{{- fail "natsAuth.mint.enabled needs a NATS server in operator mode (JWT auth), which nats.deploy does not run: install the official NATS chart set up with nsc (docs/security.md) and set nats.url" -}}
{{- end -}}
{{- if not .accountSigningKeySecret.name -}}
{{- fail "natsAuth.mint.enabled needs natsAuth.mint.accountSigningKeySecret.name: the Secret holding the account signing key seed (see docs/security.md)" -}}
{{- end -}}
{{- if $.Values.nats.auth.existingSecret -}}
{{- fail "natsAuth.mint.enabled and nats.auth.existingSecret: a NATS server in operator mode takes no user/password; unset nats.auth.existingSecret" -}}
{{- end -}}
{{- if and .accountSigningKeySecret.accountPublicKey .accountSigningKeySecret.accountPublicKeyKey -}}
{{- fail "set natsAuth.mint.accountSigningKeySecret.accountPublicKey or accountPublicKeyKey, not both" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- with .Values.natsAuth.accounts -}}
{{- if .enabled -}}
{{- if $.Values.natsAuth.mint.enabled -}}
{{- fail "natsAuth.accounts.enabled and natsAuth.mint.enabled: choose one; accounts mode (one NATS account per tenant namespace) already mints the worker and producer users, so set natsAuth.mint.enabled=false (see docs/security.md for moving from minting to accounts)" -}}
{{- end -}}
{{- if $.Values.nats.deploy -}}
{{- fail "natsAuth.accounts.enabled needs a NATS server in operator mode (JWT auth) with a full resolver, which nats.deploy does not run: install the official NATS chart set up with nsc (docs/security.md), set nats.url and nats.deploy=false" -}}
{{- end -}}
{{- if not .operatorSigningKeySecret.name -}}
{{- fail "natsAuth.accounts.enabled needs natsAuth.accounts.operatorSigningKeySecret.name: the Secret in the release namespace holding the NATS operator signing key seed (SO…, see docs/security.md)" -}}
{{- end -}}
{{- if not .systemCredsSecret.name -}}
{{- fail "natsAuth.accounts.enabled needs natsAuth.accounts.systemCredsSecret.name: the Secret in the release namespace holding the .creds file of a system account user (see docs/security.md)" -}}
{{- end -}}
{{- if $.Values.nats.auth.existingSecret -}}
{{- fail "natsAuth.accounts.enabled and nats.auth.existingSecret: a NATS server in operator mode takes no user/password; unset nats.auth.existingSecret" -}}
{{- end -}}
{{- if $.Values.nats.credentials.existingSecret -}}
{{- fail "natsAuth.accounts.enabled and nats.credentials.existingSecret: in accounts mode the operator mints its own user in each tenant account and connects to NATS with natsAuth.accounts.systemCredsSecret; unset nats.credentials.existingSecret" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
