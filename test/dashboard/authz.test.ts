// The dashboard's pure action checks with --auth kubernetes (dashboard/server.ts `actionRefusal`
// in kubernetes mode), the dead-letter filter (dashboard/routes-actions.ts) and the denial wording
// (dashboard/authz.ts): table tests.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { actionRefusal } from "../../dashboard/server.js";
import { filterSelection, parseFilter } from "../../dashboard/routes-actions.js";
import { ACTION_PERMISSIONS, describeDenial } from "../../dashboard/authz.js";

const ok = { authorization: "Bearer eyJ.any.token", csrfHeader: "c1", cookie: "celeriac_csrf=c1", origin: "http://127.0.0.1:8090", host: "127.0.0.1:8090" };

describe("when an action arrives at a dashboard with --auth kubernetes", () => {
  const cases: Array<[string, boolean, Record<string, string | undefined>, number | undefined]> = [
    ["read-only refuses it first", false, ok, 403],
    ["any bearer token with the CSRF pair goes on to the reviews", true, ok, undefined],
    ["no bearer token is 401", true, { ...ok, authorization: undefined }, 401],
    ["a non-bearer Authorization is 401", true, { ...ok, authorization: "Basic dTpw" }, 401],
    ["no CSRF header is 403", true, { ...ok, csrfHeader: undefined }, 403],
    ["another origin is 403", true, { ...ok, origin: "http://evil.example" }, 403],
  ];
  for (const [name, allow, req, status] of cases) {
    it(name, () => {
      const clean = Object.fromEntries(Object.entries(req).filter(([, v]) => v !== undefined)) as Record<string, string>;
      assert.equal(actionRefusal(allow, undefined, clean, "kubernetes")?.status, status);
    });
  }
  it("token mode is unchanged: a Kubernetes token is not the action token", () => {
    assert.equal(actionRefusal(true, "the-action-token-0123", ok, "token")?.status, 401);
  });
  it("names the missing permission", () => {
    assert.equal(
      describeDenial("bob", ACTION_PERMISSIONS.replayDeadLetters, "orders", "default").split(":")[0],
      'user "bob" cannot replay queues/deadletters "orders" (API group celeriac.io) in namespace "default"',
    );
    assert.match(describeDenial("bob", ACTION_PERMISSIONS.purge, "orders", "default"), /cannot purge queues "orders"/);
  });
});

describe("when a dead-letter filter is given", () => {
  it("keeps the non-empty fields", () => {
    assert.deepEqual(parseFilter({ reason: "MaxRetries", task: "", error: undefined }), { reason: "MaxRetries" });
    assert.deepEqual(filterSelection(parseFilter({ task: "a", error: "Boom" })), { tasks: ["a"], errorText: "Boom" });
  });
  for (const [name, v, msg] of [
    ["refuses an empty filter (it would select everything)", {}, /at least one of reason, task, error/],
    ["refuses an unknown field", { colour: "x" }, /filter\.colour: unknown field/],
    ["refuses a non-string", { task: 3 }, /filter\.task: give a string/],
    ["refuses a non-object", ["task"], /filter: give an object/],
  ] as const) {
    it(name, () => assert.throws(() => parseFilter(v), msg));
  }
});
