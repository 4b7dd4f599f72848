/**
 * Where the repository is, for running `bin/celeriac.js` and reading `crds/` (light: no imports of the platform).
 */
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Repository root (where bin/celeriac.js and crds/ are), from the compiled location dist/devcluster/platform/. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
