/**
 * Writes a volume's files the way the kubelet's atomic writer does (`pkg/volume/util/atomic_writer.go`),
 * so a reader never sees half an update:
 *
 * ```
 * <dir>/..2026_12_02_00_45_10.123456/nats.creds   the data, in a fresh timestamped directory
 * <dir>/..data -> ..2026_12_02_00_45_10.123456     swapped by rename(2) of `..data_tmp`: atomic
 * <dir>/nats.creds -> ..data/nats.creds            user-visible names, one symlink per top-level element
 * ```
 *
 * An update writes a new timestamped directory, swaps `..data`, removes user-visible links that are no
 * longer in the payload, then removes the old directory. Nothing is written when the payload equals
 * what `..data` holds. Synchronous: payloads are a few small files.
 */
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { Payload } from "./volume-payload.js";

/** The symlink naming the current timestamped directory. */
export const DATA_DIR = "..data";
const NEW_DATA_DIR = "..data_tmp";

/** `..2006_01_02_15_04_05.` in UTC, upstream's timestamped-directory prefix (mkdtemp adds a random suffix). */
export function timestampPrefix(now: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `..${now.getUTCFullYear()}_${p(now.getUTCMonth() + 1)}_${p(now.getUTCDate())}_${p(now.getUTCHours())}_${p(now.getUTCMinutes())}_${p(now.getUTCSeconds())}.`;
}

/** Every file below `dir`, as relative paths. */
function walk(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...walk(join(dir, e.name), rel));
    else out.push(rel);
  }
  return out;
}

function sameContent(oldDir: string, payload: Payload): boolean {
  const files = walk(oldDir);
  if (files.length !== payload.size) return false;
  for (const f of files) {
    const want = payload.get(f);
    if (!want) return false;
    const full = join(oldDir, f);
    if ((statSync(full).mode & 0o777) !== want.mode) return false;
    if (!readFileSync(full).equals(want.data)) return false;
  }
  return true;
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Projects `payload` into `targetDir` atomically (created if missing).
 * @param targetDir the volume's directory
 * @param payload relative path → bytes and mode (paths already validated by `validateVolumePath`)
 * @param now the clock for the timestamped directory's name
 * @returns true when something was written, false when the payload was already in place
 * @throws the file system's error when a write fails (the previous content stays in place)
 */
export function writeAtomic(targetDir: string, payload: Payload, now: Date = new Date()): boolean {
  mkdirSync(targetDir, { recursive: true });
  const dataLink = join(targetDir, DATA_DIR);
  let oldTs: string | undefined;
  try {
    oldTs = readlinkSync(dataLink);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const oldPath = oldTs ? join(targetDir, oldTs) : undefined;
  const oldFiles = oldPath && exists(oldPath) ? walk(oldPath) : [];
  if (oldPath && exists(oldPath) && sameContent(oldPath, payload)) return false;

  const tsDir = mkdtempSync(join(targetDir, timestampPrefix(now)));
  try {
    chmodSync(tsDir, 0o755);
    for (const [rel, file] of payload) {
      const full = join(tsDir, rel);
      mkdirSync(dirname(full), { recursive: true });
      writeFileSync(full, file.data, { mode: file.mode });
      chmodSync(full, file.mode); // writeFileSync's mode is masked by the umask
    }
    // User-visible names: one link per top-level element, into ..data.
    for (const top of new Set([...payload.keys()].map((p) => p.split("/")[0] as string))) {
      const visible = join(targetDir, top);
      if (!exists(visible)) symlinkSync(join(DATA_DIR, top), visible);
    }
    const tmpLink = join(targetDir, NEW_DATA_DIR);
    rmSync(tmpLink, { force: true });
    symlinkSync(basename(tsDir), tmpLink);
    renameSync(tmpLink, dataLink);
  } catch (err) {
    rmSync(tsDir, { recursive: true, force: true });
    throw err;
  }
  const keep = new Set([...payload.keys()].map((p) => p.split("/")[0] as string));
  for (const top of new Set(oldFiles.map((p) => p.split("/")[0] as string))) {
    if (!keep.has(top)) {
      try {
        unlinkSync(join(targetDir, top));
      } catch {
        // already gone
      }
    }
  }
  if (oldPath) rmSync(oldPath, { recursive: true, force: true });
  return true;
}
