/**
 * Builds the krew plugin archive of `kubectl celeriac` and records its sha256 in the krew manifest
 * (`krew/celeriac.yaml`, https://krew.sigs.k8s.io/docs/developer-guide/plugin-manifest/).
 *
 * The archive (`kubectl-celeriac-v<version>.tar.gz`) holds, at its root, the launcher
 * `kubectl-celeriac` (a POSIX sh script that follows krew's symlink to itself and runs
 * `celeriac/bin/kubectl-celeriac.js` with the `node` on PATH: Node.js ≥ 20.19 is needed, as for
 * `npm install -g celeriac`), the package in `celeriac/` (package.json, LICENSE and README when
 * present, bin/, crds/, charts/, examples/, and dist/ without tests, benchmarks, maps and declarations) and its
 * production dependencies in `celeriac/node_modules/` (`productionDependencies`, copied from the
 * installed node_modules without source maps, type declarations and tests; no network). The tar is deterministic (sorted names, mtime 0, owner 0, gzip
 * without a name or time: GNU tar and gzip), so the same build gives the same sha256. One archive
 * serves every platform of the manifest: the code is JavaScript.
 *
 * Usage (after `npm run build`):
 *   node dist/scripts/krew-archive.js [--out <dir>] [--manifest <file>] [--no-manifest]
 * writes `<dir>/kubectl-celeriac-v<version>.tar.gz` (default dir `dist-krew`), prints its path and
 * sha256, and sets `spec.version` (`v` + package.json's version), every platform's `sha256` and the
 * version in every platform's `uri` in the manifest (default `krew/celeriac.yaml`).
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseDocument } from "yaml";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The launcher at the archive's root: krew links `~/.krew/bin/kubectl-celeriac` to it. */
export const LAUNCHER = `#!/bin/sh
# kubectl-celeriac: the Celeriac CLI as a kubectl plugin (installed by krew). Needs Node.js >= 20.19.
self=$0
while [ -L "$self" ]; do
  link=$(readlink "$self")
  case $link in
    /*) self=$link ;;
    *) self=$(dirname "$self")/$link ;;
  esac
done
dir=$(cd "$(dirname "$self")" && pwd)
if ! command -v node >/dev/null 2>&1; then
  echo "kubectl-celeriac: Node.js 20.19 or later is needed on PATH (https://nodejs.org)" >&2
  exit 127
fi
exec node "$dir/celeriac/bin/kubectl-celeriac.js" "$@"
`;

/** The archive's file name for package version `version`. Pure. */
export function archiveName(version: string): string {
  return `kubectl-celeriac-v${version}.tar.gz`;
}

/** The sha256 of a file, 64 lowercase hex digits. */
export function sha256File(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/**
 * Directories of the production dependency tree, relative to the package root
 * (`node_modules/a`, `node_modules/a/node_modules/b`), sorted: package.json's `dependencies`,
 * then each one's `dependencies`, `optionalDependencies` and non-optional `peerDependencies`,
 * resolved as Node resolves them (the nearest `node_modules` up from the dependent, not above the
 * root). An optional dependency that is not installed is skipped.
 * @throws Error naming a required dependency that is not installed (run npm install)
 */
export function productionDependencies(root: string): string[] {
  type Pkg = { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string>; peerDependencies?: Record<string, string>; peerDependenciesMeta?: Record<string, { optional?: boolean }> };
  const read = (dir: string) => JSON.parse(readFileSync(join(root, dir, "package.json"), "utf8")) as Pkg;
  const resolveFrom = (dir: string, name: string): string | undefined => {
    for (let d = dir; ; d = dirname(d)) {
      const c = join(d, "node_modules", name);
      if (existsSync(join(root, c, "package.json"))) return c;
      if (d === "." || d === "" || d === dirname(d)) return undefined;
    }
  };
  const found = new Set<string>();
  const visit = (dir: string, pkg: Pkg, top: boolean) => {
    const required = Object.keys(pkg.dependencies ?? {});
    const optional = [...Object.keys(pkg.optionalDependencies ?? {}), ...(top ? [] : Object.keys(pkg.peerDependencies ?? {}).filter((n) => !pkg.peerDependenciesMeta?.[n]?.optional))];
    for (const [name, must] of [...required.map((n) => [n, true] as const), ...optional.map((n) => [n, false] as const)]) {
      const at = resolveFrom(dir, name);
      if (!at) {
        if (must) throw new Error(`dependency ${name} of ${dir === "." ? "celeriac" : dir} is not installed: run npm install`);
        continue;
      }
      if (found.has(at)) continue;
      found.add(at);
      visit(at, read(at), false);
    }
  };
  visit(".", read("."), true);
  return [...found].sort();
}

/** True for files the CLI never loads at run time: source maps, type declarations, TypeScript sources, docs. */
const NOT_RUNTIME = /(\.map|\.d\.[cm]?ts|(?<!\.d)\.[cm]?ts|\.md)$/i;

/** Copies the package and its production dependencies into `stage/celeriac`, and the launcher to `stage`. */
function stagePackage(root: string, stage: string): void {
  const pkg = join(stage, "celeriac");
  mkdirSync(pkg, { recursive: true });
  for (const f of ["package.json", "LICENSE", "README.md"]) if (existsSync(join(root, f))) cpSync(join(root, f), join(pkg, f));
  for (const d of ["bin", "crds", "charts", "examples"]) if (existsSync(join(root, d))) cpSync(join(root, d), join(pkg, d), { recursive: true });
  if (!existsSync(join(root, "dist", "cli", "main.js"))) throw new Error(`${join(root, "dist")} has no cli/main.js: run npm run build first`);
  cpSync(join(root, "dist"), join(pkg, "dist"), {
    recursive: true,
    filter: (src) => {
      const rel = relative(join(root, "dist"), src);
      return !/^(test|bench)(\/|$)/.test(rel) && !NOT_RUNTIME.test(rel);
    },
  });
  // node_modules may be a symlink (a worktree's): copy what it points at
  const modules = realpathSync(join(root, "node_modules"));
  for (const dep of productionDependencies(root)) {
    const from = join(modules, relative("node_modules", dep));
    cpSync(from, join(pkg, dep), {
      recursive: true,
      dereference: true,
      // its own node_modules are copied as dependencies of their own (only those needed), and its tests never
      filter: (src) => {
        const rel = relative(from, src);
        return !/^(node_modules|test|tests|__tests__)(\/|$)/.test(rel) && (!NOT_RUNTIME.test(rel) || /LICEN[CS]E/i.test(rel));
      },
    });
  }
  writeFileSync(join(stage, "kubectl-celeriac"), LAUNCHER);
  chmodSync(join(stage, "kubectl-celeriac"), 0o755);
}

/**
 * Builds the archive into `outDir`.
 * @returns its path and sha256
 * @throws Error when dist/ is not built, npm lists no dependencies, or tar/gzip fail
 */
export function buildArchive(root: string, outDir: string): { path: string; sha256: string; version: string } {
  const version = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }).version;
  const stage = mkdtempSync(join(tmpdir(), "celeriac-krew-"));
  try {
    stagePackage(root, stage);
    mkdirSync(outDir, { recursive: true });
    const path = join(resolve(outDir), archiveName(version));
    const tar = spawnSync("sh", ["-c", 'tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --mode=u+rwX,go+rX,go-w -cf - kubectl-celeriac celeriac | gzip -n -9 > "$1"', "sh", path], { cwd: stage, encoding: "utf8" });
    if (tar.status !== 0) throw new Error(`tar the krew archive: ${tar.stderr.trim() || `exit ${tar.status}`}`);
    return { path, sha256: sha256File(path), version };
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

/**
 * Sets `spec.version` to `v<version>`, every platform's `sha256`, and the `v<x.y.z>` in every
 * platform's `uri` to this version, keeping the manifest's comments and layout. Pure.
 * @throws Error when the manifest has no `spec.platforms` list
 */
export function updateManifest(text: string, version: string, sha256: string): string {
  const doc = parseDocument(text);
  const platforms = doc.getIn(["spec", "platforms"]) as { items?: unknown[] } | undefined;
  if (!platforms?.items?.length) throw new Error("krew manifest: spec.platforms is missing or empty");
  doc.setIn(["spec", "version"], `v${version}`);
  for (let i = 0; i < platforms.items.length; i++) {
    doc.setIn(["spec", "platforms", i, "sha256"], sha256);
    const uri = doc.getIn(["spec", "platforms", i, "uri"]);
    if (typeof uri === "string") doc.setIn(["spec", "platforms", i, "uri"], uri.replace(/v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?/g, `v${version}`));
  }
  return doc.toString({ lineWidth: 0 });
}

function main(argv: string[]): void {
  const arg = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const out = arg("--out") ?? join(ROOT, "dist-krew");
  const manifest = arg("--manifest") ?? join(ROOT, "krew", "celeriac.yaml");
  const built = buildArchive(ROOT, out);
  console.log(`${built.path}\nsha256 ${built.sha256}`);
  if (!argv.includes("--no-manifest")) {
    writeFileSync(manifest, updateManifest(readFileSync(manifest, "utf8"), built.version, built.sha256));
    console.log(`updated ${manifest}`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main(process.argv.slice(2));
