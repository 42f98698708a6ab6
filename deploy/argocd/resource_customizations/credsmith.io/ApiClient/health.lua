-- Argo CD health check for credsmith.io ServiceAccountCredential, ApiClient,
-- IdentityProvider and ClusterIdentityProvider. Every kind reports its state in the
-- same conditions, so one script serves all four: deploy/argocd/health.lua is the
-- source, which deploy/argocd/generate.py (`make crds`) copies into every kind's
-- directory and argocd-cm-patch.yaml (a test fails when a copy is stale).
--
-- Reads the global `obj`; returns {status = ..., message = ...}. Lua 5.1 with only
-- the base library: no string/math calls, so it runs in argocd-cm without
-- resource.customizations.useOpenLibs. Checks in kstatus order: deletion,
-- observedGeneration, Reconciling, Stalled, then Ready.

local hs = {}

-- Ready=False with one of these reasons needs a person: the operator will not
-- get further by retrying.
local needs_a_person = {
  InvalidSpec = true,
  InvalidTemplate = true,
  SecretConflict = true,
  -- Identity providers: an address the operator may not call, admin credentials the
  -- provider refuses or that lack a role.
  URLNotAllowed = true,
  ProviderLoginRefused = true,
  ProviderForbidden = true,
}

local function text(value)
  if value == nil then
    return ""
  end
  return tostring(value)
end

local function find_condition(conditions, condition_type)
  for _, condition in ipairs(conditions) do
    if type(condition) == "table" and condition.type == condition_type then
      return condition
    end
  end
  return nil
end

-- The condition's message, else its reason, else the fallback.
local function describe(condition, fallback)
  local message = text(condition.message)
  if message == "" then
    message = text(condition.reason)
  end
  if message == "" then
    message = fallback
  end
  return message
end

-- "<reason>: <message>", or whichever of the two is present.
local function explain(condition, fallback)
  local reason = text(condition.reason)
  local message = text(condition.message)
  if reason ~= "" and message ~= "" then
    return reason .. ": " .. message
  end
  return describe(condition, fallback)
end

local metadata = obj.metadata
if type(metadata) ~= "table" then
  metadata = {}
end

if metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Deleting"
  return hs
end

local status = obj.status
local conditions = nil
if type(status) == "table" and type(status.conditions) == "table" then
  conditions = status.conditions
end
if conditions == nil or conditions[1] == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

-- Status written for an older spec says nothing about the current one.
local generation = tonumber(metadata.generation)
local observed = tonumber(status.observedGeneration)
if generation ~= nil and observed ~= nil and observed < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
    .. " (status is for generation " .. tostring(observed) .. ")"
  return hs
end

local reconciling = find_condition(conditions, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = describe(reconciling, "Reconciling")
  return hs
end

-- Stalled=True: the operator cannot proceed without a change by a person.
local stalled = find_condition(conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = explain(stalled, "Stalled")
  return hs
end

local ready = find_condition(conditions, "Ready")
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report readiness"
  return hs
end

-- metav1 conditions carry their own observedGeneration: a Ready verdict about an
-- older generation is stale even when status.observedGeneration is not.
local ready_observed = tonumber(ready.observedGeneration)
if generation ~= nil and ready_observed ~= nil and ready_observed < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
    .. " (Ready is for generation " .. tostring(ready_observed) .. ")"
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready, "Ready")
  return hs
end

if ready.status == "False" and needs_a_person[text(ready.reason)] then
  hs.status = "Degraded"
  hs.message = explain(ready, "Not ready")
  return hs
end

hs.status = "Progressing"
hs.message = describe(ready, "Waiting for the operator")
return hs
