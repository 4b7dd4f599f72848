-- Argo CD health check for celeriac.io/Schedule (resource.customizations.health.celeriac.io_Schedule).
-- Written for Argo CD's embedded Lua (gopher-lua, Lua 5.1 syntax); tested with lua5.4.
-- spec.suspend -> Suspended; status not yet for this generation -> Progressing;
-- Ready=False (e.g. InvalidSchedule) -> Degraded; Ready=True -> Healthy; otherwise Progressing.
-- Missed runs do not make a Schedule unhealthy: they are counted in status.missedRuns and shown here.
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

if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "Schedule is suspended: no Tasks are created"
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
  hs.message = "Waiting for the Ready condition"
  return hs
end

if ready.status == "False" then
  hs.status = "Degraded"
  hs.message = (ready.reason or "NotReady") .. ": " .. (ready.message or "")
  return hs
end

hs.status = "Healthy"
local parts = {}
if obj.status.nextScheduleTime ~= nil then
  table.insert(parts, "next run " .. obj.status.nextScheduleTime)
end
if obj.status.lastScheduleTime ~= nil then
  table.insert(parts, "last run " .. obj.status.lastScheduleTime)
end
if obj.status.missedRuns ~= nil and obj.status.missedRuns > 0 then
  table.insert(parts, string.format("%d", obj.status.missedRuns) .. " missed")
end
if #parts > 0 then
  hs.message = table.concat(parts, ", ")
else
  hs.message = ready.message or "Ready"
end
return hs
