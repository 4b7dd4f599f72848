-- Argo CD health check for celeriac.io/Queue (resource.customizations.health.celeriac.io_Queue).
-- Written for Argo CD's embedded Lua (gopher-lua, Lua 5.1 syntax); tested with lua5.4.
-- spec.suspend -> Suspended; status not yet for this generation -> Progressing;
-- Ready=True -> Healthy; Ready=False -> Degraded (Progressing while workers start);
-- no Ready condition or Ready=Unknown -> Progressing.
local hs = {}

local function condition(conditionType)
  if obj.status ~= nil and obj.status.conditions ~= nil then
    for _, c in ipairs(obj.status.conditions) do
      if c.type == conditionType then
        return c
      end
    end
  end
  return nil
end

local function text(c)
  local s = ""
  if c.reason ~= nil and c.reason ~= "" then
    s = c.reason
  end
  if c.message ~= nil and c.message ~= "" then
    if s ~= "" then
      s = s .. ": "
    end
    s = s .. c.message
  end
  return s
end

if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "Queue is suspended: workers are scaled to zero and tasks wait in the stream"
  return hs
end

if obj.metadata ~= nil and obj.metadata.generation ~= nil then
  if obj.status == nil or obj.status.observedGeneration == nil or obj.status.observedGeneration < obj.metadata.generation then
    hs.status = "Progressing"
    hs.message = "Waiting for the operator to reconcile generation " .. string.format("%d", obj.metadata.generation)
    return hs
  end
end

local ready = condition("Ready")
if ready == nil or ready.status == "Unknown" then
  hs.status = "Progressing"
  if ready ~= nil then
    hs.message = text(ready)
  else
    hs.message = "Waiting for the Ready condition"
  end
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = text(ready)
  return hs
end

if ready.reason == "WorkersUnavailable" then
  hs.status = "Progressing"
else
  hs.status = "Degraded"
end
hs.message = text(ready)
return hs
