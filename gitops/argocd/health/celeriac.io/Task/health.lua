-- Argo CD health check for celeriac.io/Task (resource.customizations.health.celeriac.io_Task).
-- Written for Argo CD's embedded Lua (gopher-lua, Lua 5.1 syntax); tested with lua5.4.
-- Succeeded -> Healthy; Failed, Expired, Cancelled -> Degraded; every other phase -> Progressing.
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

local function messageOf(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

if obj.status == nil or obj.status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to accept the Task"
  return hs
end

local phase = obj.status.phase

if phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = messageOf(condition("Succeeded"), "Succeeded")
  return hs
end

if phase == "Failed" or phase == "Expired" or phase == "Cancelled" then
  hs.status = "Degraded"
  local detail = nil
  if obj.status.error ~= nil and obj.status.error.message ~= nil then
    detail = obj.status.error.message
    if obj.status.error.type ~= nil and obj.status.error.type ~= "" then
      detail = obj.status.error.type .. ": " .. detail
    end
  end
  hs.message = phase .. ": " .. messageOf(condition("Succeeded"), detail or phase)
  return hs
end

if phase == "Pending" then
  hs.status = "Progressing"
  hs.message = "Pending: " .. messageOf(condition("Accepted"), "waiting to be queued")
  return hs
end

if phase == "Retrying" then
  hs.status = "Progressing"
  local when = ""
  if obj.status.nextRetryTime ~= nil then
    when = ", next attempt at " .. obj.status.nextRetryTime
  end
  local attempts = ""
  if obj.status.attempts ~= nil then
    attempts = " after attempt " .. string.format("%d", obj.status.attempts)
  end
  hs.message = "Retrying" .. attempts .. when
  return hs
end

if phase == "Running" then
  hs.status = "Progressing"
  hs.message = messageOf(condition("Running"), "Running")
  return hs
end

hs.status = "Progressing"
hs.message = phase
return hs
