import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Cron } from "croner";
import { nextRun, parseSchedule, runsBetween } from "../../../operator/schedule/next-run.js";
import { parseGoDuration } from "../../../operator/schedule/go-duration.js";
import { wallToInstant, zoneOffsetMs } from "../../../operator/schedule/zone-time.js";

const HOUR = 3_600_000;
const iso = (d: Date) => d.toISOString().replace(".000Z", "Z");
const runs = (schedule: string, tz: string, from: string, hours: number, limit = 50) =>
  runsBetween(schedule, tz, new Date(from), new Date(new Date(from).getTime() + hours * HOUR), limit).map(iso);

describe("when a schedule is parsed", () => {
  const good: Array<[string, string]> = [
    ["0 3 * * 1", "Europe/Berlin"],
    ["*/15 * * * *", "UTC"],
    ["5/15 * * * *", "UTC"],
    ["0 0 L * *", "UTC"],
    ["0 0 29 2 *", "UTC"],
    ["@hourly", "UTC"],
    ["@yearly", "America/New_York"],
    ["@annually", "UTC"],
    ["@monthly", "UTC"],
    ["@weekly", "UTC"],
    ["@daily", "UTC"],
    ["@midnight", "UTC"],
    ["@every 2s", "UTC"],
    ["@every 1h30m", "Australia/Sydney"],
    ["@every 1500ms500ms", "UTC"],
  ];
  for (const [schedule, tz] of good) {
    it(`accepts "${schedule}" in ${tz}`, () => {
      assert.deepEqual(parseSchedule(schedule, tz).ok, true);
    });
  }
  const bad: Array<[string, string, string]> = [
    ["61 * * * *", "UTC", 'spec.schedule: "61 * * * *": Invalid value for minute: 61'],
    ["0 0 * *", "UTC", 'spec.schedule: "0 0 * *": '],
    ["0 0 * * * *", "UTC", "spec.schedule: "],
    ["0 0 30 2 *", "UTC", 'spec.schedule: "0 0 30 2 *": never matches a date'],
    ["@reboot", "UTC", 'spec.schedule: "@reboot": unknown macro'],
    ["@every 1.5s", "UTC", "the @every interval must be a whole number of seconds, at least 1s"],
    ["@every 0s", "UTC", "at least 1s"],
    ["@every soon", "UTC", "@every needs a Go duration"],
    ["CRON_TZ=UTC 0 * * * *", "UTC", "set spec.timeZone instead"],
    ["0 3 * * *", "Mars/Olympus", 'spec.timeZone: unknown time zone "Mars/Olympus"'],
    ["@every 2s", "Mars/Olympus", 'spec.timeZone: unknown time zone "Mars/Olympus"'],
  ];
  for (const [schedule, tz, message] of bad) {
    it(`rejects "${schedule}" in ${tz} with a message naming the field`, () => {
      const r = parseSchedule(schedule, tz);
      assert.equal(r.ok, false);
      assert.ok(!r.ok && r.message.includes(message), !r.ok ? r.message : "");
    });
  }
  it("throws from runsBetween and nextRun for an invalid schedule", () => {
    assert.throws(() => nextRun("61 * * * *", "UTC", new Date()), /parse schedule: spec.schedule/);
  });
});

describe("when day-of-month and day-of-week are both restricted", () => {
  it("matches either (Vixie cron / CronJob OR semantics)", () => {
    // 2024-02-01 is a Thursday; Mondays in Feb 2024: 5, 12, 19, 26.
    assert.deepEqual(runs("0 0 1 * 1", "UTC", "2024-01-31T00:00:00Z", 24 * 14), [
      "2024-02-01T00:00:00Z", "2024-02-05T00:00:00Z", "2024-02-12T00:00:00Z",
    ]);
  });
  it("treats */2 in day-of-month as a restriction, as robfig/cron does", () => {
    assert.deepEqual(runs("0 0 */2 * 1", "UTC", "2024-01-01T00:00:00Z", 24 * 8), [
      "2024-01-03T00:00:00Z", "2024-01-05T00:00:00Z", "2024-01-07T00:00:00Z", "2024-01-08T00:00:00Z", "2024-01-09T00:00:00Z",
    ]);
  });
  it("uses only day-of-week when day-of-month is *", () => {
    assert.deepEqual(runs("0 0 * * 1", "UTC", "2024-01-01T00:00:00Z", 24 * 15), ["2024-01-08T00:00:00Z", "2024-01-15T00:00:00Z"]);
  });
});

describe("when the schedule is @every", () => {
  it("anchors runs at the Unix epoch, whatever the start", () => {
    assert.deepEqual(runs("@every 1h30m", "UTC", "2024-01-01T00:10:00Z", 4), ["2024-01-01T01:30:00Z", "2024-01-01T03:00:00Z"]);
    assert.deepEqual(runs("@every 2s", "UTC", "2024-01-01T00:00:01.500Z", 5 / 3600), [
      "2024-01-01T00:00:02Z", "2024-01-01T00:00:04Z", "2024-01-01T00:00:06Z",
    ]);
  });
  it("ignores the time zone and DST", () => {
    const a = runs("@every 45m", "Europe/Berlin", "2024-10-26T23:00:00Z", 4);
    const b = runs("@every 45m", "UTC", "2024-10-26T23:00:00Z", 4);
    assert.deepEqual(a, b);
    assert.equal(a.length, 6); // 23:15, 00:00, 00:45, 01:30, 02:15, 03:00 UTC
  });
  it("excludes `from` and includes `to`", () => {
    const r = runsBetween("@every 2s", "UTC", new Date("2024-01-01T00:00:00Z"), new Date("2024-01-01T00:00:04Z"), 10).map(iso);
    assert.deepEqual(r, ["2024-01-01T00:00:02Z", "2024-01-01T00:00:04Z"]);
  });
  it("returns at most `limit` runs", () => {
    assert.equal(runs("@every 1s", "UTC", "2024-01-01T00:00:00Z", 1, 7).length, 7);
  });
});

describe("when nextRun is asked", () => {
  it("returns the first run strictly after the given time", () => {
    assert.equal(iso(nextRun("0 3 * * *", "UTC", new Date("2024-01-01T03:00:00Z"))!), "2024-01-02T03:00:00Z");
    assert.equal(iso(nextRun("0 3 * * *", "UTC", new Date("2024-01-01T02:59:59.999Z"))!), "2024-01-01T03:00:00Z");
    assert.equal(iso(nextRun("@hourly", "Asia/Kolkata", new Date("2024-01-01T00:00:00Z"))!), "2024-01-01T00:30:00Z");
  });
  it("reads the expression in the time zone", () => {
    assert.equal(iso(nextRun("0 9 * * *", "America/New_York", new Date("2024-07-01T00:00:00Z"))!), "2024-07-01T13:00:00Z");
    assert.equal(iso(nextRun("0 9 * * *", "America/New_York", new Date("2024-12-01T00:00:00Z"))!), "2024-12-01T14:00:00Z");
  });
});

// The DST table: for each zone, the spring-forward and fall-back days, the expected instants (UTC).
// Rule: a skipped local time runs once at the first instant after the gap; a repeated one runs once,
// at its first occurrence. Local times in comments.
interface DstCase { zone: string; schedule: string; from: string; hours: number; want: string[] }
const dst: DstCase[] = [
  // Europe/Berlin: 2024-03-31 02:00 CET → 03:00 CEST (01:00Z); 2024-10-27 03:00 CEST → 02:00 CET (01:00Z).
  { zone: "Europe/Berlin", schedule: "30 2 * * *", from: "2024-03-30T00:00:00Z", hours: 72,
    want: ["2024-03-30T01:30:00Z", "2024-03-31T01:00:00Z" /* 03:00 CEST: 02:30 does not exist */, "2024-04-01T00:30:00Z"] },
  { zone: "Europe/Berlin", schedule: "30 2 * * *", from: "2024-10-26T00:00:00Z", hours: 72,
    want: ["2024-10-26T00:30:00Z", "2024-10-27T00:30:00Z" /* first 02:30 (CEST) only */, "2024-10-28T01:30:00Z"] },
  { zone: "Europe/Berlin", schedule: "0 * * * *", from: "2024-03-30T23:30:00Z", hours: 3,
    want: ["2024-03-31T00:00:00Z" /* 01:00 */, "2024-03-31T01:00:00Z" /* 03:00; 02:00 merged into it */, "2024-03-31T02:00:00Z"] },
  { zone: "Europe/Berlin", schedule: "0 * * * *", from: "2024-10-26T23:30:00Z", hours: 3,
    want: ["2024-10-27T00:00:00Z" /* 02:00 CEST */, "2024-10-27T02:00:00Z" /* 03:00 CET; second 02:00 skipped */] },
  { zone: "Europe/Berlin", schedule: "*/15 * * * *", from: "2024-03-31T00:40:00Z", hours: 0.5,
    want: ["2024-03-31T00:45:00Z" /* 01:45 */, "2024-03-31T01:00:00Z" /* 03:00 */] },
  { zone: "Europe/Berlin", schedule: "*/15 * * * *", from: "2024-10-27T00:40:00Z", hours: 1.5,
    want: ["2024-10-27T00:45:00Z" /* 02:45 CEST */, "2024-10-27T02:00:00Z" /* 03:00 CET */] },
  // America/New_York: 2024-03-10 02:00 EST → 03:00 EDT (07:00Z); 2024-11-03 02:00 EDT → 01:00 EST (06:00Z).
  { zone: "America/New_York", schedule: "30 2 * * *", from: "2024-03-09T00:00:00Z", hours: 72,
    want: ["2024-03-09T07:30:00Z", "2024-03-10T07:00:00Z" /* 03:00 EDT */, "2024-03-11T06:30:00Z"] },
  { zone: "America/New_York", schedule: "30 1 * * *", from: "2024-11-02T00:00:00Z", hours: 72,
    want: ["2024-11-02T05:30:00Z", "2024-11-03T05:30:00Z" /* first 01:30 (EDT) */, "2024-11-04T06:30:00Z"] },
  { zone: "America/New_York", schedule: "0 * * * *", from: "2024-11-03T04:30:00Z", hours: 3,
    want: ["2024-11-03T05:00:00Z" /* 01:00 EDT */, "2024-11-03T07:00:00Z" /* 02:00 EST */] },
  { zone: "America/New_York", schedule: "*/15 * * * *", from: "2024-03-10T06:40:00Z", hours: 0.5,
    want: ["2024-03-10T06:45:00Z" /* 01:45 EST */, "2024-03-10T07:00:00Z" /* 03:00 EDT */] },
  { zone: "America/New_York", schedule: "*/15 * * * *", from: "2024-11-03T05:40:00Z", hours: 1.5,
    want: ["2024-11-03T05:45:00Z" /* 01:45 EDT */, "2024-11-03T07:00:00Z" /* 02:00 EST */] },
  // Australia/Sydney (southern): 2024-04-07 03:00 AEDT → 02:00 AEST (16:00Z on the 6th);
  // 2024-10-06 02:00 AEST → 03:00 AEDT (16:00Z on the 5th).
  { zone: "Australia/Sydney", schedule: "30 2 * * *", from: "2024-10-04T00:00:00Z", hours: 72,
    want: ["2024-10-04T16:30:00Z", "2024-10-05T16:00:00Z" /* 03:00 AEDT */, "2024-10-06T15:30:00Z"] },
  { zone: "Australia/Sydney", schedule: "30 2 * * *", from: "2024-04-05T00:00:00Z", hours: 72,
    want: ["2024-04-05T15:30:00Z", "2024-04-06T15:30:00Z" /* first 02:30 (AEDT) */, "2024-04-07T16:30:00Z"] },
  { zone: "Australia/Sydney", schedule: "0 * * * *", from: "2024-04-06T14:30:00Z", hours: 3,
    want: ["2024-04-06T15:00:00Z" /* 02:00 AEDT */, "2024-04-06T17:00:00Z" /* 03:00 AEST */] },
  { zone: "Australia/Sydney", schedule: "*/15 * * * *", from: "2024-10-05T15:40:00Z", hours: 0.5,
    want: ["2024-10-05T15:45:00Z" /* 01:45 AEST */, "2024-10-05T16:00:00Z" /* 03:00 AEDT */] },
  // Australia/Lord_Howe: a 30-minute DST shift; 2024-10-06 02:00 → 02:30 (15:30Z on the 5th).
  { zone: "Australia/Lord_Howe", schedule: "0 2 * * *", from: "2024-10-04T00:00:00Z", hours: 48,
    want: ["2024-10-04T15:30:00Z", "2024-10-05T15:30:00Z" /* 02:30: 02:00 does not exist */] },
  // A minute-by-minute check around a gap: no local minute inside 02:00–02:59 exists, all merge into 03:00.
  { zone: "Europe/Berlin", schedule: "* 2 * * *", from: "2024-03-30T23:00:00Z", hours: 4,
    want: ["2024-03-31T01:00:00Z"] },
];

describe("when a run falls on a DST change", () => {
  for (const c of dst) {
    it(`runs "${c.schedule}" in ${c.zone} from ${c.from} once per local time`, () => {
      assert.deepEqual(runs(c.schedule, c.zone, c.from, c.hours), c.want);
    });
  }
  it("agrees with croner for fixed-time jobs, which croner itself handles by the same rule", () => {
    for (const zone of ["Europe/Berlin", "America/New_York", "Australia/Sydney"]) {
      const cron = new Cron("30 2 * * *", { timezone: zone, paused: true });
      const fromCroner = cron.nextRuns(400, new Date("2024-01-01T00:00:00Z")).map(iso);
      assert.deepEqual(runs("30 2 * * *", zone, "2024-01-01T00:00:00Z", 24 * 400, 400), fromCroner);
    }
  });
  it("differs from croner for hourly jobs, which croner runs twice in a fall-back hour", () => {
    const cron = new Cron("0 * * * *", { timezone: "Europe/Berlin", paused: true });
    const fromCroner = cron.nextRuns(3, new Date("2024-10-26T23:30:00Z")).map(iso);
    assert.deepEqual(fromCroner, ["2024-10-27T00:00:00Z", "2024-10-27T01:00:00Z", "2024-10-27T02:00:00Z"]);
    assert.deepEqual(runs("0 * * * *", "Europe/Berlin", "2024-10-26T23:30:00Z", 2.5), ["2024-10-27T00:00:00Z", "2024-10-27T02:00:00Z"]);
  });
  it("continues correctly when `from` is inside the repeated hour", () => {
    // 01:10Z is 02:10 CET, the second pass; the next hourly run is 03:00 CET.
    assert.deepEqual(runs("0 * * * *", "Europe/Berlin", "2024-10-27T01:10:00Z", 1), ["2024-10-27T02:00:00Z"]);
    assert.deepEqual(runs("*/15 * * * *", "Europe/Berlin", "2024-10-27T01:10:00Z", 0.9), ["2024-10-27T02:00:00Z"]);
  });
  it("produces strictly increasing instants over a whole year in every tested zone", () => {
    for (const zone of ["Europe/Berlin", "America/New_York", "Australia/Sydney", "Australia/Lord_Howe"]) {
      const r = runsBetween("17 * * * *", zone, new Date("2024-01-01T00:00:00Z"), new Date("2025-01-01T00:00:00Z"), 10_000);
      for (let i = 1; i < r.length; i++) assert.ok(r[i]!.getTime() > r[i - 1]!.getTime());
      assert.ok(r.length >= 366 * 24 - 2 && r.length <= 366 * 24, `${zone}: ${r.length}`);
    }
  });
});

describe("when wall times are mapped to instants", () => {
  it("computes the zone offset", () => {
    assert.equal(zoneOffsetMs("Europe/Berlin", Date.parse("2024-01-01T00:00:00Z")), HOUR);
    assert.equal(zoneOffsetMs("Europe/Berlin", Date.parse("2024-07-01T00:00:00Z")), 2 * HOUR);
    assert.equal(zoneOffsetMs("America/St_Johns", Date.parse("2024-01-01T00:00:00Z")), -3.5 * HOUR);
  });
  it("maps a gap to the transition and a repeat to the first occurrence", () => {
    assert.equal(new Date(wallToInstant("Europe/Berlin", Date.UTC(2024, 2, 31, 2, 30))).toISOString(), "2024-03-31T01:00:00.000Z");
    assert.equal(new Date(wallToInstant("Europe/Berlin", Date.UTC(2024, 9, 27, 2, 30))).toISOString(), "2024-10-27T00:30:00.000Z");
  });
});

describe("when a Go duration is parsed", () => {
  const table: Array<[string, number | undefined]> = [
    ["2s", 2000], ["1h30m", 5_400_000], ["1.5h", 5_400_000], ["500ms", 500], ["0", 0], ["-1m", -60_000],
    ["", undefined], ["1", undefined], ["1d", undefined], ["h", undefined], ["1h 30m", undefined], [".s", undefined],
  ];
  for (const [text, want] of table) {
    it(`reads "${text}" as ${want}`, () => assert.equal(parseGoDuration(text), want));
  }
});
