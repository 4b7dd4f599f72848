/**
 * Refreshes the dashboard's screenshots in the docs (docs/images/dashboard/*.png, embedded in
 * docs/dashboard.md): runs the browser test against `celeriac dev up`
 * (test/dashboard/dev-up.test.ts) with `CELERIAC_SCREENSHOTS` set to the folder (and
 * `CELERIAC_SCREENSHOTS_LIVE_SECONDS` 20 unless set: 20 s of varying work first, so the charts have
 * a shape), which writes one 1280×800 PNG per page of the nav (named after the nav link's
 * `data-page`), plus `task.png` and, when the nav has those pages, `schedule.png` and `workflow.png`; then
 * checks each PNG written by this run: its size in pixels (1280×800) and in bytes (under
 * {@link MAX_BYTES}), and lists PNGs in the folder this run did not write (pages gone or renamed).
 *
 * Usage (after `npm run build`):
 *   node dist/scripts/dashboard-screenshots.js [--out <dir>]   (default docs/images/dashboard)
 * Exits 1 when the test fails or an image is off-size. Needs nats-server, kubectl and
 * /usr/bin/chromium, as the test does; takes about 40 s.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, openSync, readSync, closeSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** Largest PNG accepted, bytes (the docs' images stay small). */
export const MAX_BYTES = 200 * 1024;
/** Expected image size, px. */
export const SIZE = { width: 1280, height: 800 } as const;

/**
 * Width and height of a PNG from its IHDR chunk (bytes 16–23).
 * @throws Error when the file is not a PNG
 */
export function pngSize(file: string): { width: number; height: number } {
  const b = Buffer.alloc(24);
  const fd = openSync(file, "r");
  try {
    readSync(fd, b, 0, 24, 0);
  } finally {
    closeSync(fd);
  }
  if (b.readUInt32BE(0) !== 0x89504e47 || b.toString("ascii", 12, 16) !== "IHDR") throw new Error(`${file} is not a PNG`);
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
}

function main(): number {
  const i = process.argv.indexOf("--out");
  const out = resolve(i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : join(ROOT, "docs", "images", "dashboard"));
  mkdirSync(out, { recursive: true });
  const started = Date.now();
  const r = spawnSync(process.execPath, ["--test", "--test-reporter=spec", join(ROOT, "dist", "test", "dashboard", "dev-up.test.js")], {
    cwd: ROOT, stdio: "inherit", env: { CELERIAC_SCREENSHOTS_LIVE_SECONDS: "20", ...process.env, CELERIAC_SCREENSHOTS: out }, timeout: 300_000,
  });
  if (r.status !== 0) {
    console.error(`the dev-up browser test failed (exit ${r.status ?? r.signal}): no screenshots checked`);
    return 1;
  }
  let bad = 0;
  const pngs = readdirSync(out).filter((f) => f.endsWith(".png")).sort();
  for (const f of pngs) {
    const p = join(out, f);
    const st = statSync(p);
    if (st.mtimeMs < started - 1000) {
      console.log(`${relative(ROOT, p)}  not written by this run (a page gone or renamed?): delete it if so`);
      continue;
    }
    const { width, height } = pngSize(p);
    const ok = width === SIZE.width && height === SIZE.height && st.size < MAX_BYTES;
    if (!ok) bad++;
    console.log(`${relative(ROOT, p)}  ${width}×${height}  ${(st.size / 1024).toFixed(0)} KB${ok ? "" : `  NOT ${SIZE.width}×${SIZE.height} under ${MAX_BYTES / 1024} KB`}`);
  }
  return bad ? 1 : 0;
}

process.exitCode = main();
