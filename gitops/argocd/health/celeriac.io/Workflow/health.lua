-- Argo CD health check for celeriac.io/Workflow (resource.customizations.health.celeriac.io_Workflow).
-- Written for Argo CD's embedded Lua (gopher-lua, Lua 5.1 syntax); tested with lua5.4.
-- As Argo CD's built-in check of Argo Workflows' own Workflow: no phase, Pending, Running -> Progressing;
-- Succeeded -> Healthy; Failed -> Degraded with status.message (the step that failed, or the cycle of an
-- InvalidSpec); Cancelled (a step's task was revoked; Argo's stopped Workflow is Failed) -> Degraded;
-- any other phase -> Unknown. The message carries the progress (finished steps / steps).
local hs = {}

local function nonEmpty(s)
  return s ~= nil and s ~= ""
end

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

-- The first failed step's error, for a Failed Workflow whose status.message is empty.
local function failedStep()
  if obj.status ~= nil and obj.status.steps ~= nil then
    for _, s in ipairs(obj.status.steps) do
      if s.phase == "Failed" then
        local detail = s.message
        if s.error ~= nil and nonEmpty(s.error.message) then
          detail = s.error.message
          if nonEmpty(s.error.type) then
            detail = s.error.type .. ": " .. detail
          end
        end
        if nonEmpty(detail) then
          return "step \"" .. tostring(s.name) .. "\" failed: " .. detail
        end
        return "step \"" .. tostring(s.name) .. "\" failed"
      end
    end
  end
  return nil
end

local function progress()
  if obj.status ~= nil and nonEmpty(obj.status.progress) then
    return " (" .. obj.status.progress .. " steps)"
  end
  return ""
end

if obj.status == nil or not nonEmpty(obj.status.phase) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to start the Workflow"
  return hs
end

local phase = obj.status.phase
local message = obj.status.message

if phase == "Succeeded" then
  hs.status = "Healthy"
  local detail = "Succeeded" .. progress()
  if obj.status ~= nil and nonEmpty(obj.status.duration) then
    detail = detail .. " in " .. obj.status.duration
  end
  hs.message = detail
  return hs
end

if phase == "Failed" or phase == "Cancelled" then
  hs.status = "Degraded"
  if not nonEmpty(message) then
    local c = condition("Failed")
    if c ~= nil and c.status == "True" and nonEmpty(c.message) then
      message = c.message
    end
  end
  if not nonEmpty(message) and phase == "Failed" then
    message = failedStep()
  end
  if nonEmpty(message) then
    hs.message = phase .. ": " .. message .. progress()
  else
    hs.message = phase .. progress()
  end
  return hs
end

if phase == "Pending" or phase == "Running" then
  hs.status = "Progressing"
  local detail = phase .. progress()
  if obj.status.retries ~= nil and obj.status.retries > 0 then
    detail = detail .. ", retry " .. string.format("%d", obj.status.retries)
  end
  if nonEmpty(message) then
    detail = detail .. ": " .. message
  end
  hs.message = detail
  return hs
end

hs.status = "Unknown"
hs.message = "Unknown phase " .. tostring(phase)
return hs
