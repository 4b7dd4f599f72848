/**
 * The bundled NATS's config file: its `max_control_line` (`nats.server.maxControlLine`, 256 KiB by
 * default, loaded by the nats-server 2.9 at hand and read back from `/varz`) and its durability
 * setting (`nats.server.jetstream.syncInterval`), rendered with the real
 * helm 4: `always` by default, a Go duration or `default` on request, the rendered config file mounted
 * and passed with `--config`, a pod roll when it changes, and the schema refusing what nats-server
 * would misread. When a nats-server 2.10+ is at hand (`CELERIAC_NATS_SERVER_210`), the rendered file
 * is also loaded by it and its `/varz` read back.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { V1ConfigMap, V1StatefulSet } from "@kubernetes/client-node";
import { freePort } from "../helpers/nats-server.js";
import { CHART_DIR, HELM, makeHelm, type Helm, type K8sObject } from "./chart-helpers.js";

const skip = HELM ? false : "helm 4 not available";

/** A nats-server 2.10 or later for the load check: `CELERIAC_NATS_SERVER_210`, else `nats-server` when it is 2.10+. */
function natsServer210(): string | undefined {
  for (const bin of [process.env.CELERIAC_NATS_SERVER_210, "nats-server"]) {
    if (!bin) continue;
    const m = /v(\d+)\.(\d+)\./.exec(spawnSync(bin, ["--version"], { encoding: "utf8" }).stdout ?? "");
    if (m && (Number(m[1]) > 2 || Number(m[2]) >= 10)) return bin;
  }
  return undefined;
}
const NATS_210 = natsServer210();

interface Rendered {
  sts: V1StatefulSet;
  config: V1ConfigMap | undefined;
}

const renderNats = async (helm: Helm, sets: readonly string[]): Promise<Rendered> => {
  const objs: K8sObject[] = await helm.render([], ["nats.deploy=true", ...sets]);
  const sts = objs.find((o) => o.kind === "StatefulSet" && o.metadata.name === "celeriac-nats") as unknown as V1StatefulSet | undefined;
  assert.ok(sts, "the NATS StatefulSet is rendered");
  const config = objs.find((o) => o.kind === "ConfigMap" && o.metadata.name === "celeriac-nats-config") as unknown as V1ConfigMap | undefined;
  return { sts, config };
};

describe("when the bundled NATS is rendered (nats.deploy)", { skip }, () => {
  let helm: Helm;
  const r = new Map<string, Rendered>();
  before(async () => {
    helm = makeHelm("celeriac-nats-durability-");
    r.set("always", await renderNats(helm, []));
    r.set("2m", await renderNats(helm, ["nats.server.jetstream.syncInterval=2m"]));
    r.set("1m30s", await renderNats(helm, ["nats.server.jetstream.syncInterval=1m30s"]));
    r.set("default", await renderNats(helm, ["nats.server.jetstream.syncInterval=default"]));
    r.set("none", await renderNats(helm, ["nats.server.jetstream.syncInterval=default", "nats.server.maxControlLine=0"]));
    r.set("mcl", await renderNats(helm, ["nats.server.maxControlLine=1048576"]));
  });
  after(() => helm?.close());
  const get = (k: string): Rendered => r.get(k) ?? assert.fail(`${k} not rendered`);

  it("sets jetstream sync_interval: always by default, in a config file passed with --config", () => {
    const { sts, config } = get("always");
    assert.equal(config?.data?.["nats.conf"]?.match(/sync_interval: always$/m)?.[0], "sync_interval: always");
    const pod = sts.spec?.template.spec;
    const c = pod?.containers[0];
    const args = c?.args ?? [];
    assert.equal(args[args.indexOf("--config") + 1], "/etc/nats/nats.conf");
    assert.ok(args.includes("-js") && args[args.indexOf("-sd") + 1] === "/data", "JetStream and its store stay flags");
    assert.deepEqual(c?.volumeMounts?.find((m) => m.name === "config"), { name: "config", mountPath: "/etc/nats", readOnly: true });
    assert.deepEqual(pod?.volumes, [{ name: "config", configMap: { name: "celeriac-nats-config" } }]);
  });

  it("quotes a Go duration, which the NATS config parser would otherwise read as a number", () => {
    assert.match(get("2m").config?.data?.["nats.conf"] ?? "", /^\s*sync_interval: "2m"$/m);
    assert.match(get("1m30s").config?.data?.["nats.conf"] ?? "", /^\s*sync_interval: "1m30s"$/m);
  });

  it("omits sync_interval with default, keeping max_control_line (runs on a 2.9 image too)", () => {
    const conf = get("default").config?.data?.["nats.conf"] ?? "";
    assert.doesNotMatch(conf, /^\s*(sync_interval|jetstream \{)/m);
    assert.match(conf, /^max_control_line: 262144$/m);
  });

  it("omits the config file and --config with default and maxControlLine 0", () => {
    const { sts, config } = get("none");
    assert.equal(config, undefined);
    const c = sts.spec?.template.spec?.containers[0];
    assert.ok(!(c?.args ?? []).includes("--config"));
    assert.deepEqual(c?.volumeMounts, [{ name: "data", mountPath: "/data" }]);
    assert.equal(sts.spec?.template.spec?.volumes, undefined);
    assert.equal(sts.spec?.template.metadata?.annotations?.["checksum/config"], undefined);
  });

  it("rolls the NATS pod when the setting changes (checksum of the config file on the pod template)", () => {
    const sums = ["always", "2m", "1m30s", "default", "mcl"].map((k) => get(k).sts.spec?.template.metadata?.annotations?.["checksum/config"]);
    for (const s of sums) assert.match(s ?? "", /^[0-9a-f]{64}$/);
    assert.equal(new Set(sums).size, 5);
  });

  it("sets max_control_line 262144 by default (a minted producer JWT outgrows nats-server's 4096 at two Queues), or nats.server.maxControlLine", () => {
    assert.match(get("always").config?.data?.["nats.conf"] ?? "", /^max_control_line: 262144$/m);
    assert.match(get("mcl").config?.data?.["nats.conf"] ?? "", /^max_control_line: 1048576$/m);
  });

  it("renders a max_control_line nats-server 2.9 loads (/varz max_control_line)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "celeriac-nats-mcl-"));
    try {
      const file = join(dir, "nats.conf");
      writeFileSync(file, get("default").config?.data?.["nats.conf"] ?? "");
      const [port, monitor] = [await freePort(), await freePort()];
      const child = spawn("nats-server", ["-c", file, "-js", "-sd", join(dir, "js"), "-a", "127.0.0.1", "-p", String(port), "-m", String(monitor)], { stdio: "ignore" });
      try {
        let varz: { max_control_line?: number } | undefined;
        for (let i = 0; i < 100 && !varz; i++) {
          await new Promise((res) => setTimeout(res, 50));
          varz = await fetch(`http://127.0.0.1:${monitor}/varz`).then((x) => x.json() as Promise<typeof varz>, () => undefined);
        }
        assert.equal(varz?.max_control_line, 262144);
      } finally {
        const exited = new Promise((res) => child.once("exit", res));
        child.kill("SIGTERM");
        await exited;
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("renders a file a nats-server 2.10+ loads with the meaning intended (/varz jetstream.config)", { skip: NATS_210 ? false : "no nats-server 2.10+ (set CELERIAC_NATS_SERVER_210)" }, async () => {
    const want: Record<string, { sync_always?: boolean; sync_interval: number }> = {
      always: { sync_always: true, sync_interval: 120e9 },
      "2m": { sync_interval: 120e9 },
      "1m30s": { sync_interval: 90e9 },
    };
    const dir = mkdtempSync(join(tmpdir(), "celeriac-nats-conf-"));
    try {
      for (const [k, expect] of Object.entries(want)) {
        const file = join(dir, `${k}.conf`);
        writeFileSync(file, get(k).config?.data?.["nats.conf"] ?? "");
        const [port, monitor] = [await freePort(), await freePort()];
        const child = spawn(NATS_210 as string, ["-c", file, "-js", "-sd", join(dir, k), "-a", "127.0.0.1", "-p", String(port), "-m", String(monitor)], { stdio: "ignore" });
        try {
          let varz: { jetstream?: { config?: { sync_always?: boolean; sync_interval?: number } } } | undefined;
          for (let i = 0; i < 100 && !varz; i++) {
            await new Promise((res) => setTimeout(res, 50));
            varz = await fetch(`http://127.0.0.1:${monitor}/varz`).then((x) => x.json() as Promise<typeof varz>, () => undefined);
          }
          const cfg = varz?.jetstream?.config;
          assert.equal(cfg?.sync_interval, expect.sync_interval, `${k}: sync_interval (ns)`);
          assert.equal(cfg?.sync_always, expect.sync_always, `${k}: sync_always`);
        } finally {
          const exited = new Promise((res) => child.once("exit", res));
          child.kill("SIGTERM");
          await exited;
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("when nats.server.jetstream.syncInterval is not one nats-server reads as meant", { skip }, () => {
  let helm: Helm;
  before(() => {
    helm = makeHelm("celeriac-nats-durability-");
  });
  after(() => helm?.close());

  it("refuses it and names the field", async () => {
    for (const bad of ["0s", "2", "sometimes", "Always", "-1m", "1.5m"]) {
      const res = await helm.run("template", "celeriac", CHART_DIR, "--set", "nats.deploy=true", "--set", `nats.server.jetstream.syncInterval=${bad}`);
      assert.notEqual(res.code, 0, `accepted syncInterval=${bad}`);
      assert.match(res.stderr, /at '\/nats\/server\/jetstream\/syncInterval'/, bad);
    }
    for (const bad of ["100", "-1", "abc"]) {
      const res = await helm.run("template", "celeriac", CHART_DIR, "--set", "nats.deploy=true", "--set", `nats.server.maxControlLine=${bad}`);
      assert.notEqual(res.code, 0, `accepted maxControlLine=${bad}`);
      assert.match(res.stderr, /at '\/nats\/server\/maxControlLine'/, bad);
    }
    const typo = await helm.run("template", "celeriac", CHART_DIR, "--set", "nats.server.jetstream.sync=always");
    assert.match(typo.stderr, /additional properties 'sync' not allowed/);
  });
});
