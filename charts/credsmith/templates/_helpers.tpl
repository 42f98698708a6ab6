{{/* The chart name, or nameOverride. */}}
{{- define "credsmith.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object name: fullnameOverride, else the release name (plus the
chart name unless the release name contains it). "credsmith" for a release named so.
*/}}
{{- define "credsmith.fullname" -}}
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

{{- define "credsmith.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The labels that select the operator pods; they never change after install. */}}
{{- define "credsmith.selectorLabels" -}}
app.kubernetes.io/name: {{ include "credsmith.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The labels of every object. */}}
{{- define "credsmith.labels" -}}
helm.sh/chart: {{ include "credsmith.chart" . }}
{{ include "credsmith.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "credsmith.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "credsmith.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The name of the leader-election Lease. */}}
{{- define "credsmith.leaderElectionId" -}}
{{- default (printf "%s-operator" (include "credsmith.fullname" .)) .Values.leaderElection.id }}
{{- end }}

{{/* The Secret holding the operator's state key (runtime/state_key.py). */}}
{{- define "credsmith.stateKeyName" -}}
{{- default (printf "%s-state-key" (include "credsmith.fullname" .)) .Values.stateKey.name }}
{{- end }}

{{/* repository@digest when a digest is given (immutable), else repository:tag. */}}
{{- define "credsmith.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "credsmith.podDisruptionBudget" -}}
{{- if kindIs "bool" .Values.podDisruptionBudget.enabled }}
{{- if .Values.podDisruptionBudget.enabled }}true{{ end }}
{{- else if gt (int .Values.replicaCount) 1 }}true
{{- end }}
{{- end }}

{{/*
Whether to create the tenants' ClusterRoles (rbac.tenantRoles): null, when the chart creates
cluster-wide RBAC anyway (rbac.create, no watchNamespaces), so that a namespaced install
needs no cluster-scoped rights; true or false: always or never.
*/}}
{{- define "credsmith.tenantRoles" -}}
{{- if kindIs "bool" .Values.rbac.tenantRoles }}
{{- if .Values.rbac.tenantRoles }}true{{ end }}
{{- else if and .Values.rbac.create (not .Values.watchNamespaces) }}true
{{- end }}
{{- end }}

{{/*
What the operator does with the API, and nothing more (granted cluster-wide by the
ClusterRole, or per watched namespace by a Role):
- its resources: list and watch (the operator's informers and caches); it never writes them...
- ...except their status subresource, with a JSON merge patch;
- Secrets: list and watch (only those labelled app.kubernetes.io/managed-by=credsmith:
  RBAC cannot restrict by label), get (a name conflict), create and update (replace).
  No patch, no delete: owned Secrets are deleted by the garbage collector;
- Events: create (core/v1).
Discovery (/api, /apis) is open to every authenticated user. The Lease is granted
separately, in the release namespace only (credsmith.leaderElectionRules).
*/}}
{{- define "credsmith.rules" -}}
- apiGroups: ["credsmith.io"]
  resources: ["serviceaccountcredentials", "apiclients"]
  verbs: ["list", "watch"]
- apiGroups: ["credsmith.io"]
  resources: ["serviceaccountcredentials/status", "apiclients/status"]
  verbs: ["patch"]
# IdentityProviders of the namespace: read, and their status written. Their admin
# credentials (keycloak.credentialsSecretRef) are read by the Secrets rule below.
- apiGroups: ["credsmith.io"]
  resources: ["identityproviders"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["credsmith.io"]
  resources: ["identityproviders/status"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "update"]
# JWK Sets of KeyPair credentials (keyPair.jwks.name); watched by label, written by name.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch", "create", "update"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- if .Values.consumers.enabled }}
# spec.consumers: read the workloads (by name, or listed by label selector) and roll them
# with a server-side apply of one pod-template annotation. No watch: none is cached.
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets", "daemonsets"]
  verbs: ["get", "list", "patch"]
{{- end }}
{{- end }}

{{/*
Whether to grant access to ClusterIdentityProviders (identityProviders.clusterProviders):
null, when the chart creates cluster-wide RBAC anyway (rbac.create, no watchNamespaces);
true or false: always or never.
*/}}
{{- define "credsmith.clusterProviders" -}}
{{- if kindIs "bool" .Values.identityProviders.clusterProviders }}
{{- if .Values.identityProviders.clusterProviders }}true{{ end }}
{{- else if and .Values.rbac.create (not .Values.watchNamespaces) }}true
{{- end }}
{{- end }}

{{/*
What only a ClusterRole can grant, whatever the mode: ClusterIdentityProviders (read,
status written) and the namespaces' labels their allowedNamespaces select by.
*/}}
{{- define "credsmith.clusterRules" -}}
- apiGroups: ["credsmith.io"]
  resources: ["clusteridentityproviders"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["credsmith.io"]
  resources: ["clusteridentityproviders/status"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get", "list", "watch"]
{{- end }}

{{/*
Leader election: get and update its own Lease only (resourceNames), and create it
(RBAC cannot restrict create by name, so that rule has none).
*/}}
{{- define "credsmith.leaderElectionRules" -}}
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  resourceNames: [{{ include "credsmith.leaderElectionId" . | quote }}]
  verbs: ["get", "update"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["create"]
{{- end }}

{{/*
The state key (docs/threat-model.md): get its one Secret by name, and create it on first
start. RBAC cannot restrict create by name (the authorizer sees no name on a create), so
create is granted on Secrets of the release namespace only, where nothing else of credsmith
lives; a Role, so in namespaced mode too. No update, no delete: the operator never changes
or rotates the key.
*/}}
{{- define "credsmith.stateKeyRules" -}}
- apiGroups: [""]
  resources: ["secrets"]
  resourceNames: [{{ include "credsmith.stateKeyName" . | quote }}]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["create"]
{{- end }}
