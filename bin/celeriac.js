#!/usr/bin/env node
// The `celeriac` command: runs the compiled CLI (npm's `prepare` script builds dist/ on install).
import { main } from "../dist/cli/main.js";

main(process.argv).catch((err) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
