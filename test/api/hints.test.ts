import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { cronForCeleryCrontab, durationHint, goDurationFor, scheduleHint, timeZoneHint } from "../../api/hints.js";
import { checkManifest } from "../../api/manifest.js";

describe("when a duration is written the way people say it", () => {
  const cases: Array<[string, string | undefined]> = [
    ["7d", "168h"], ["2 weeks", "336h"], ["1w", "168h"], ["1.5d", "36h"], ["1 hour", "1h"], ["90 seconds", "90s"],
    ["1d 12h", "24h12h"], ["30s", undefined], ["soon", undefined], ["", undefined],
  ];
  for (const [text, want] of cases) it(`maps ${JSON.stringify(text)} to ${String(want)}`, () => assert.equal(goDurationFor(text), want));
  it("says why d is refused", () => assert.equal(durationHint("7d"), "use 168h (Go durations have no d or w unit)"));
  it("asks for a unit when there is none", () => assert.equal(durationHint("30"), "add a unit: 30s, 30m or 30h (Go durations need one)"));
});

describe("when a schedule is written the Celery, Quartz or English way", () => {
  const cases: Array<[string, string | undefined]> = [
    ["@every 1d", "use @every 24h"],
    ["@every 2 weeks", "use @every 336h"],
    ["*/10 * * * * *", "no seconds field: use @every for sub-minute runs"],
    ["0 30 2 * * *", 'no seconds field: use @every for sub-minute runs, or drop the seconds field ("30 2 * * *")'],
    ["crontab(minute=0, hour=3)", 'use "0 3 * * *" (a 5-field cron: minute hour day-of-month month day-of-week)'],
    ["30 2 * * *", undefined],
    ["@every soon", undefined],
    ["every 5 minutes", "use @every 5m"],
    ["every hour", "use @every 1h"],
    ["61 * * * *", "minute is 0-59 (cron fields: minute hour day-of-month month day-of-week)"],
    ["0 24 * * *", "hour is 0-23 (cron fields: minute hour day-of-month month day-of-week)"],
    ["0 9 * 13 *", "month is 1-12 or JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC (cron fields: minute hour day-of-month month day-of-week)"],
    ["0 9 * * MON-FRY", "day-of-week is 0-7 or SUN MON TUE WED THU FRI SAT (cron fields: minute hour day-of-month month day-of-week)"],
    ["*/15 9-17 L * mon-fri", undefined],
  ];
  for (const [text, want] of cases) it(`hints ${JSON.stringify(text)}`, () => assert.equal(scheduleHint(text), want));
  it("reads every Celery crontab field, defaulting to *", () => {
    assert.equal(cronForCeleryCrontab("crontab()"), "* * * * *");
    assert.equal(cronForCeleryCrontab("crontab(minute='*/15', hour='9-17', day_of_week='mon-fri')"), "*/15 9-17 * * mon-fri");
    assert.equal(cronForCeleryCrontab("crontab(second=1)"), undefined);
  });
});

describe("when a time zone is unknown", () => {
  it("names the IANA zone of the same city", () => {
    assert.equal(timeZoneHint("Germany/Berlin"), 'use "Europe/Berlin"');
    assert.equal(timeZoneHint("US/New York"), 'use "America/New_York"');
  });
  it("says what a zone name looks like otherwise", () => assert.equal(timeZoneHint("Mars/Olympus"), 'use an IANA time zone name such as "Europe/Berlin", "America/New_York" or "UTC"'));
});

describe("when a manifest has such a value", () => {
  const schedule = (s: string) => ({ apiVersion: "celeriac.io/v1alpha1", kind: "Schedule", metadata: { name: "s" }, spec: { schedule: s, taskTemplate: { spec: { queue: "q", task: "a" } } } });
  it("adds the hint to the schema error", () => {
    const [c] = checkManifest(schedule("crontab(minute=0, hour=3)")).causes;
    assert.equal(c?.field, "spec.schedule");
    assert.ok(c?.message.endsWith(': use "0 3 * * *" (a 5-field cron: minute hour day-of-month month day-of-week)'), c?.message);
    const q = checkManifest({ apiVersion: "celeriac.io/v1alpha1", kind: "Queue", metadata: { name: "q" }, spec: { stream: { maxAge: "7d" } } });
    assert.ok(q.causes[0]?.message.includes("should match") && q.causes[0].message.endsWith("use 168h (Go durations have no d or w unit)"), q.causes[0]?.message);
  });
});
