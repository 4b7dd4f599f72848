/**
 * Static checks of the operator `Dockerfile` and the worker base image `Dockerfile.worker` (there is no
 * Docker engine in CI, so the builds themselves are untested): multi-stage, production dependencies
 * only in the runtime stage, a non-root numeric USER, an exec-form ENTRYPOINT that needs no shell, and
 * the contracts with the chart and the operator (the operator pod's UID, `celeriac` on the worker's PATH).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { WORKER_COMMAND } from "../../operator/queue/desired-workers.js";
import { REPO_ROOT } from "./chart-helpers.js";

/** One instruction of a Dockerfile, continuation lines joined. */
interface Instruction {
  op: string;
  args: string;
}

/** A build stage: its FROM line and its instructions. */
interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

/** Parses a Dockerfile into stages (comments dropped, `\` continuations joined). */
function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let cur = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (cur === "" && (line === "" || line.startsWith("#"))) continue;
    if (line.startsWith("#")) continue;
    if (line.endsWith("\\")) {
      cur += `${line.slice(0, -1)} `;
      continue;
    }
    logical.push(cur + line);
    cur = "";
  }
  const stages: Stage[] = [];
  for (const l of logical) {
    const m = /^(\w+)\s+(.*)$/.exec(l);
    assert.ok(m, `unparsable line: ${l}`);
    const op = (m[1] as string).toUpperCase();
    const args = m[2] as string;
    if (op === "FROM") {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args.replace(/--platform=\S+\s+/, ""));
      stages.push({ from: f?.[1] ?? args, ...(f?.[2] ? { name: f[2] } : {}), instructions: [] });
    } else if (stages.length > 0) (stages[stages.length - 1] as Stage).instructions.push({ op, args });
  }
  return stages;
}

const dockerfiles = [
  { file: "Dockerfile", uid: 65532, cmd: ["operator"] },
  { file: "Dockerfile.worker", uid: 1000, cmd: ["worker"] },
] as const;

for (const { file, uid, cmd } of dockerfiles) {
  describe(`when ${file} is read`, () => {
    const stages = parseDockerfile(readFileSync(join(REPO_ROOT, file), "utf8"));
    const runtime = stages[stages.length - 1] as Stage;
    const ops = (s: Stage, op: string): string[] => s.instructions.filter((i) => i.op === op).map((i) => i.args);

    it("builds in stages and the runtime stage only copies from them", () => {
      assert.ok(stages.length >= 3, `${stages.length} stages`);
      const build = stages.find((s) => ops(s, "RUN").some((r) => /npm run build/.test(r)));
      assert.ok(build?.name, "a named build stage runs npm run build");
      assert.ok(ops(build, "RUN").some((r) => /npm ci\b/.test(r) && !/--omit=dev/.test(r)), "the build stage installs dev dependencies");
      assert.ok(!ops(runtime, "RUN").some((r) => /npm (ci|install)|npm run build|tsc/.test(r)), "the runtime stage neither installs nor compiles");
      const froms = ops(runtime, "COPY").map((c) => /--from=(\S+)/.exec(c)?.[1]).filter(Boolean);
      assert.ok(froms.includes(build.name), "the runtime stage copies the compiled output");
    });

    it("ships production dependencies only (npm ci --omit=dev) and skips the compiling prepare script", () => {
      const copy = ops(runtime, "COPY").find((c) => /node_modules/.test(c));
      const from = /--from=(\S+)/.exec(copy ?? "")?.[1];
      assert.ok(from, "node_modules come from another stage");
      const deps = stages.find((s) => s.name === from);
      assert.ok(deps, `stage ${from}`);
      const ci = ops(deps, "RUN").find((r) => /npm ci\b/.test(r));
      assert.match(ci ?? "", /--omit=dev/);
      assert.match(ci ?? "", /--ignore-scripts/, "prepare runs tsc, which --omit=dev does not install");
      assert.ok(!ops(runtime, "COPY").some((c) => /--from=\S+\s+\S*node_modules/.test(c) && !c.includes(`--from=${from}`)), "no other node_modules in the runtime stage");
    });

    it(`runs as the non-root numeric user ${uid}`, () => {
      const users = ops(runtime, "USER");
      assert.ok(users.length > 0, "the runtime stage sets USER");
      const last = users[users.length - 1] as string;
      assert.match(last, /^\d+(:\d+)?$/, "numeric, so runAsNonRoot can be verified by the kubelet");
      const [u, g] = last.split(":").map(Number);
      assert.equal(u, uid);
      assert.notEqual(u, 0);
      if (g !== undefined) assert.notEqual(g, 0);
    });

    it("starts node with an exec-form ENTRYPOINT (no shell) on /app/bin/celeriac.js", () => {
      const eps = ops(runtime, "ENTRYPOINT");
      assert.equal(eps.length, 1);
      const ep = JSON.parse(eps[0] as string) as string[];
      assert.ok(Array.isArray(ep), "exec form");
      assert.match(ep[0] as string, /(^|\/)node$/);
      assert.equal(ep[1], "/app/bin/celeriac.js");
      assert.deepEqual(JSON.parse(ops(runtime, "CMD")[0] ?? "null"), cmd);
      assert.deepEqual(ops(runtime, "VOLUME"), [], "no VOLUME: with a read-only root filesystem, /tmp is the pod's emptyDir");
    });
  });
}

describe("when the images meet the chart and the operator", () => {
  it("runs the operator image as the UID the chart's pod security context names", () => {
    const chart = readFileSync(join(REPO_ROOT, "charts", "celeriac", "templates", "deployment.yaml"), "utf8");
    assert.match(chart, /celeriac\.podSecurityContext" \(dict "uid" 65532\)/);
  });

  it(`puts ${WORKER_COMMAND[0]} on the worker image's PATH, since worker pods run ${WORKER_COMMAND.join(" ")}`, () => {
    const stages = parseDockerfile(readFileSync(join(REPO_ROOT, "Dockerfile.worker"), "utf8"));
    const runtime = stages[stages.length - 1] as Stage;
    const run = runtime.instructions.filter((i) => i.op === "RUN").map((i) => i.args).join(" ");
    assert.match(run, new RegExp(`ln -s /app/bin/celeriac\\.js /usr/local/bin/${WORKER_COMMAND[0]}\\b`));
    assert.match(run, /ln -s \/app \/node_modules\/celeriac/, "import \"celeriac/worker\" resolves to the image's copy from /tasks");
    assert.ok(!/gcr\.io\/distroless/.test(runtime.from), "the shebang needs /usr/bin/env");
  });

  it("keeps local state out of the build context", () => {
    const ignore = readFileSync(join(REPO_ROOT, ".dockerignore"), "utf8").split("\n").map((l) => l.trim());
    for (const p of ["node_modules", "dist", ".git", ".celeriac"]) assert.ok(ignore.includes(p), p);
  });
});
