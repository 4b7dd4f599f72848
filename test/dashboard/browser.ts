/**
 * Shared by the dashboard's browser tests (dashboard.test.ts, dev-up.test.ts) and the screenshot
 * and load scripts: the built `celeriac` bin run for its `-o json`, a headless Chromium (Debian's
 * /usr/bin/chromium driven by playwright-core) that records console errors, page navigation that
 * waits until the page has rendered, the nav's pages, and the screenshots folder.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";

/** The built `celeriac` bin. */
export const BIN = fileURLToPath(new URL("../../../bin/celeriac.js", import.meta.url));
/** Debian's Chromium. */
export const CHROMIUM = "/usr/bin/chromium";
/** The viewport of every page and screenshot, px: 1280×800 (the docs' images). */
export const VIEWPORT = { width: 1280, height: 800 } as const;

/** The page's document, as the functions run in the browser (page.evaluate, waitForFunction) see it. */
export type Doc = {
  document: {
    getElementById(id: string): { dataset: Record<string, string | undefined>; textContent: string | null } | null;
    querySelector(sel: string): { textContent: string | null } | null;
    querySelectorAll(sel: string): { length: number };
    cookie: string;
  };
};

/**
 * The environment without any `CELERIAC_*` variable, for the bin. By default it finds no
 * Kubernetes API either (no `KUBECONFIG` or `KUBERNETES_SERVICE_HOST`, `HOME` a folder that does
 * not exist, so no `~/.kube/config`: a `KUBECONFIG` naming a missing file is an error since the
 * dashboard reads it); `{ kubeconfig: "unset" }` only drops `KUBECONFIG`, so the bin finds the
 * local platform's.
 */
export function cleanEnv(o: { kubeconfig?: "none" | "unset" } = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CELERIAC_") && k !== "KUBECONFIG"));
  if (o.kubeconfig === "unset") return env;
  delete env.KUBERNETES_SERVICE_HOST;
  return { ...env, HOME: "/nonexistent-celeriac-test-home" };
}

/**
 * Runs `celeriac <args>` in `cwd` and parses its stdout as JSON (the `-o json` output).
 * @throws Error with the exit code and stderr when it exits non-zero
 */
export function cliJson<T>(args: string[], cwd: string, env: NodeJS.ProcessEnv = cleanEnv()): Promise<T> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [BIN, ...args], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    c.stdout.on("data", (d: Buffer) => (out += d.toString()));
    c.stderr.on("data", (d: Buffer) => (err += d.toString()));
    c.once("error", reject);
    c.once("close", (code) => (code === 0 ? resolve(JSON.parse(out) as T) : reject(new Error(`celeriac ${args.join(" ")} exited ${code}: ${err}`))));
  });
}

/** A headless Chromium with one page of {@link VIEWPORT}, and the console errors and page errors it logged. */
export interface BrowserPage {
  browser: Browser;
  page: Page;
  /** `<url>: <message>` of each console error and uncaught page error, in order. */
  consoleErrors: string[];
}

/** Launches headless Chromium and opens a page that records console errors. */
export async function openBrowser(viewport: { width: number; height: number } = VIEWPORT): Promise<BrowserPage> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--headless"] });
  const page = await browser.newPage({ viewport });
  const consoleErrors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") consoleErrors.push(`${page.url()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => consoleErrors.push(`${page.url()}: ${e.message}`));
  return { browser, page, consoleErrors };
}

/**
 * Opens `<url><hash>` and waits until the page has rendered it (`#main`'s `data-ready` is the hash).
 * @returns how long that took, ms
 */
export async function openPage(page: Page, url: string, hash: string): Promise<number> {
  const t0 = performance.now();
  await page.goto(`${url}${hash}`);
  await page.waitForFunction((h) => (globalThis as unknown as Doc).document.getElementById("main")?.dataset.ready === h, hash);
  return Math.round(performance.now() - t0);
}

/** A page of the dashboard's nav: its `data-page`, link and label. */
export interface NavPage {
  page: string;
  href: string;
  label: string;
}

/** The nav's pages, as the loaded dashboard shows them (so pages added later are covered). */
export async function navPages(page: Page): Promise<NavPage[]> {
  return page.$$eval("nav a", (as) => as.map((a) => ({ page: (a as unknown as { dataset: { page?: string } }).dataset.page ?? "", href: a.getAttribute("href") ?? "", label: (a.textContent ?? "").trim() })));
}

/**
 * The folder screenshots go to: `CELERIAC_SCREENSHOTS` (created if missing; relative to the
 * current directory), else a new temp folder named after `prefix`.
 */
export function screenshotsDir(prefix: string): string {
  const dir = process.env.CELERIAC_SCREENSHOTS;
  if (dir) {
    const abs = resolve(dir);
    mkdirSync(abs, { recursive: true });
    return abs;
  }
  return mkdtempSync(join(tmpdir(), prefix));
}
