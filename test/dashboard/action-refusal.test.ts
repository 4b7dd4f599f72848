// The dashboard's action guard (dashboard/server.ts `actionRefusal`, `cookieValue`): table tests.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { actionRefusal, cookieValue } from "../../dashboard/server.js";

const TOKEN = "t0ken-t0ken-t0ken-t0ken";
const ok = { authorization: `Bearer ${TOKEN}`, csrfHeader: "c1", cookie: "a=b; celeriac_csrf=c1", origin: "http://127.0.0.1:8090", host: "127.0.0.1:8090" };

describe("when an action request arrives", () => {
  const cases: Array<[string, boolean, Partial<typeof ok> & Record<string, string | undefined>, number | undefined]> = [
    ["read-only refuses even a complete request", false, ok, 403],
    ["token and CSRF pair pass", true, ok, undefined],
    ["no Origin header passes (same-origin fetches may omit it)", true, { ...ok, origin: undefined }, undefined],
    ["no token is 401", true, { ...ok, authorization: undefined }, 401],
    ["a wrong token is 401", true, { ...ok, authorization: "Bearer nope" }, 401],
    ["no CSRF header is 403", true, { ...ok, csrfHeader: undefined }, 403],
    ["no CSRF cookie is 403", true, { ...ok, cookie: "a=b" }, 403],
    ["a CSRF header that differs from the cookie is 403", true, { ...ok, csrfHeader: "c2" }, 403],
    ["another origin is 403", true, { ...ok, origin: "http://evil.example" }, 403],
  ];
  for (const [name, allow, req, status] of cases) {
    it(name, () => {
      const clean = Object.fromEntries(Object.entries(req).filter(([, v]) => v !== undefined));
      assert.equal(actionRefusal(allow, allow ? TOKEN : undefined, clean)?.status, status);
    });
  }
  it("reads a cookie among others", () => {
    assert.equal(cookieValue("x=1; celeriac_csrf=abc%20d ; y=2", "celeriac_csrf"), "abc d");
    assert.equal(cookieValue(undefined, "celeriac_csrf"), undefined);
    assert.equal(cookieValue("celeriac_csrfx=1", "celeriac_csrf"), undefined);
  });
});
