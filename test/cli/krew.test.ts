/**
 * The krew manifest (krew/celeriac.yaml) and the plugin archive scripts/krew-archive.ts builds: the
 * manifest has the fields krew validates, the script writes the archive's real sha256 into it, and
 * the archive runs on its own once unpacked and linked as krew links it (kubectl finds
 * `kubectl-celeriac` on PATH, a symlink to the archive's launcher), its dependencies inside it.
 */
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { parse } from "yaml";
import { archiveName, sha256File, updateManifest } from "../../scripts/krew-archive.js";
import { k8sTools, runTool } from "../helpers/k8s-tools.js";
import { startNatsServer, type NatsServer } from "../helpers/nats-server.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const VERSION = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: {
    version: string;
    homepage?: string;
    shortDescription: string;
    description?: string;
    platforms: Array<{ selector?: { matchLabels?: Record<string, string> }; uri?: string; sha256?: string; bin?: string }>;
  };
}

/** The checks of krew's manifest validation (pkg/index/validation) that a manifest can fail. */
function assertKrewShape(m: Manifest, fileName: string): void {
  assert.equal(m.apiVersion, "krew.googlecontainertools.github.com/v1alpha2");
  assert.equal(m.kind, "Plugin");
  assert.equal(`${m.metadata.name}.yaml`, fileName, "metadata.name matches the file name");
  assert.match(m.metadata.name, /^[a-z0-9][a-z0-9-]*$/);
  assert.equal(m.spec.version, `v${VERSION}`, "spec.version is package.json's, with a v");
  assert.match(m.spec.homepage ?? "", /^https:\/\//);
  assert.ok(m.spec.shortDescription && m.spec.shortDescription.length <= 50, "shortDescription: present, short");
  assert.ok(m.spec.description?.trim());
  assert.ok(m.spec.platforms.length > 0, "platforms non-empty");
  const seen = new Set<string>();
  for (const p of m.spec.platforms) {
    const labels = p.selector?.matchLabels ?? {};
    assert.ok(labels.os && labels.arch, `selector with os and arch: ${JSON.stringify(p.selector)}`);
    seen.add(`${labels.os}/${labels.arch}`);
    assert.match(p.uri ?? "", new RegExp(`^https://.*/${archiveName(VERSION).replace(/\./g, "\\.")}$`));
    assert.match(p.sha256 ?? "", /^[0-9a-f]{64}$/, "sha256 is 64 lowercase hex digits");
    assert.equal(p.bin, "kubectl-celeriac");
  }
  assert.equal(seen.size, m.spec.platforms.length, "one platform per os/arch");
}

describe("when the krew manifest and plugin archive are built", () => {
  let dir: string;
  let built: { path: string; sha256: string; manifest: Manifest };
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "celeriac-krew-test-"));
    const manifest = join(dir, "celeriac.yaml");
    copyFileSync(join(ROOT, "krew", "celeriac.yaml"), manifest);
    const r = await runTool(process.execPath, [join(ROOT, "dist", "scripts", "krew-archive.js"), "--out", join(dir, "out"), "--manifest", manifest], {}, 180_000);
    assert.equal(r.code, 0, r.stderr);
    const path = join(dir, "out", archiveName(VERSION));
    assert.equal(r.stdout.split("\n")[0], path);
    built = { path, sha256: /^sha256 ([0-9a-f]{64})$/m.exec(r.stdout)![1]!, manifest: parse(readFileSync(manifest, "utf8")) as Manifest };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("the committed manifest has the shape krew validates", () => {
    assertKrewShape(parse(readFileSync(join(ROOT, "krew", "celeriac.yaml"), "utf8")) as Manifest, "celeriac.yaml");
  });

  it("the script writes the archive's sha256 into every platform", () => {
    assert.equal(built.sha256, sha256File(built.path));
    assertKrewShape(built.manifest, "celeriac.yaml");
    for (const p of built.manifest.spec.platforms) assert.equal(p.sha256, built.sha256);
  });

  it("updateManifest sets the version in spec.version and the uris, and keeps the comments", () => {
    const text = readFileSync(join(ROOT, "krew", "celeriac.yaml"), "utf8");
    const out = updateManifest(text, "9.8.7", "a".repeat(64));
    const m = parse(out) as Manifest;
    assert.equal(m.spec.version, "v9.8.7");
    for (const p of m.spec.platforms) {
      assert.match(p.uri!, /\/v9\.8\.7\/kubectl-celeriac-v9\.8\.7\.tar\.gz$/);
      assert.equal(p.sha256, "a".repeat(64));
    }
    assert.ok(out.startsWith("# krew plugin manifest"));
  });

  it("the unpacked archive runs as kubectl celeriac through a symlink, with its own dependencies", async () => {
    const unpacked = join(dir, "store");
    mkdirSync(unpacked);
    const tar = await runTool("tar", ["-xzf", built.path, "-C", unpacked]);
    assert.equal(tar.code, 0, tar.stderr);
    // krew links ~/.krew/bin/kubectl-<name> to the plugin's bin in its store
    const bin = join(dir, "bin");
    mkdirSync(bin);
    symlinkSync(join(unpacked, "kubectl-celeriac"), join(bin, "kubectl-celeriac"));
    const kubectl = k8sTools().kubectl134 ?? k8sTools().kubectl132 ?? "/usr/bin/kubectl";
    const kc = join(dir, "kubeconfig");
    writeFileSync(kc, "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u, namespace: team-k}\nclusters:\n- name: k\n  cluster: {server: 'https://127.0.0.1:1'}\nusers:\n- name: u\n  user: {}\n");
    // no NODE_PATH and a cwd outside the repository: only the archive's node_modules can resolve
    const env = { PATH: `${bin}:${dirname(process.execPath)}:/usr/bin:/bin`, KUBECONFIG: kc, NODE_PATH: "" };
    const help = await runTool(kubectl, ["celeriac", "--help"], env, 60_000, { cwd: dir, dropEnv: (k) => k.startsWith("CELERIAC_") });
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^Usage: kubectl celeriac /);
    let srv: NatsServer | undefined;
    try {
      srv = await startNatsServer();
      // the namespace comes from the kubeconfig context (@kubernetes/client-node, from the archive)
      const r = await runTool(kubectl, ["celeriac", "tasks", "list", "--nats", srv.url], env, 60_000, { cwd: dir, dropEnv: (k) => k.startsWith("CELERIAC_") });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /namespace "team-k" has no queues/);
    } finally {
      await srv?.cleanup();
    }
  });
});
