#!/usr/bin/env node
// `kubectl celeriac …`: the celeriac CLI as a kubectl plugin (kubectl runs kubectl-celeriac from PATH).
// The same commands; the namespace defaults to the current kubeconfig context's, as kubectl's does.
import { main } from "../dist/cli/main.js";

main(process.argv, { name: "kubectl celeriac" }).catch((err) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
