/**
 * The rule that maps a container to a local command (documented in `docs/dev-kubelet.md`). Pure: the
 * file-system check is passed in.
 */
import type { V1Container } from "@kubernetes/client-node";
import { isAbsolute, basename } from "node:path";

/** A command the kubelet can spawn: `file` with `args`, no shell. */
export interface LocalCommand {
  file: string;
  args: string[];
}

/** Why a container cannot run locally. `reason` is the Event reason (`ImageNotRunnable`). */
export interface NotRunnable {
  reason: "ImageNotRunnable";
  message: string;
}

/** Inputs of {@link resolveContainerCommand}. */
export interface CommandContext {
  /** The `node` binary that runs `bin/celeriac.js` (normally `process.execPath`). */
  nodePath: string;
  /** Absolute path of this repository's `bin/celeriac.js`. */
  celeriacBin: string;
  /**
   * Image → local command prefix. Keys match the full image reference, or the image without its
   * tag/digest (`ghcr.io/x/w:1.2` matches key `ghcr.io/x/w`). The value replaces the container's
   * `command` (the image's entrypoint); the container's `args` are appended.
   */
  imageCommands: Record<string, string[]>;
  /** True when `path` is an existing executable file. */
  isExecutable: (path: string) => boolean;
}

/** Strips `:tag` and `@digest` from an image reference (a registry port such as `host:5000/x` is kept). */
export function imageRepository(image: string): string {
  const noDigest = image.split("@")[0] ?? image;
  const slash = noDigest.lastIndexOf("/");
  const colon = noDigest.lastIndexOf(":");
  return colon > slash ? noDigest.slice(0, colon) : noDigest;
}

const celeriac = (ctx: CommandContext, rest: string[]): LocalCommand => ({
  file: ctx.nodePath,
  args: [ctx.celeriacBin, ...rest],
});

/**
 * Maps a container to a local command. First rule that applies wins:
 * 1. `command ++ args` starts with `celeriac` (or a path whose basename is `celeriac`): run
 *    `node bin/celeriac.js` with the rest of the arguments;
 * 2. the image is in `imageCommands`: run that prefix followed by the container's `args` (a prefix
 *    starting with `celeriac` is handled as in rule 1; other prefixes are spawned as given, PATH lookup
 *    included, since the user configured them);
 * 3. `command[0]` is an absolute path to an existing executable: run `command ++ args` as is;
 * 4. otherwise the container is not runnable.
 *
 * `$(VAR)` references are expanded by the caller before this (see `env.ts`).
 * @returns a {@link LocalCommand}, or a {@link NotRunnable} whose message says which rules were tried
 */
export function resolveContainerCommand(container: V1Container, ctx: CommandContext): LocalCommand | NotRunnable {
  const command = container.command ?? [];
  const args = container.args ?? [];
  const argv = [...command, ...args];
  const first = argv[0];
  if (first !== undefined && basename(first) === "celeriac") return celeriac(ctx, argv.slice(1));
  const image = container.image ?? "";
  const mapped = ctx.imageCommands[image] ?? ctx.imageCommands[imageRepository(image)];
  if (mapped && mapped.length > 0) {
    const [file, ...prefix] = mapped as [string, ...string[]];
    if (basename(file) === "celeriac") return celeriac(ctx, [...prefix, ...args]);
    return { file, args: [...prefix, ...args] };
  }
  if (first !== undefined && command.length > 0 && isAbsolute(first)) {
    if (ctx.isExecutable(first)) return { file: first, args: argv.slice(1) };
    return {
      reason: "ImageNotRunnable",
      message: `container "${container.name}": command ${first} is not an executable file on this machine`,
    };
  }
  return {
    reason: "ImageNotRunnable",
    message:
      `container "${container.name}" (image "${image}") cannot run locally: its command/args do not start with ` +
      `"celeriac", the image is not in the kubelet's image command map, and its command is not an absolute ` +
      `path to an executable`,
  };
}

/** Type guard: true for {@link NotRunnable}. */
export function isNotRunnable(r: LocalCommand | NotRunnable): r is NotRunnable {
  return (r as NotRunnable).reason === "ImageNotRunnable";
}
