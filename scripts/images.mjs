#!/usr/bin/env node
// Image functions: registers the container images that functions may run (SCF "image deployment",
// README "Image functions"). An image is a folder containers/images/<name>/ holding the user's own
// Dockerfile and build context, unchanged. Commands (npm scripts):
//
//   npm run image:add -- <name> [--namespaces a,b | --namespaces '*']
//       registers containers/images/<name>/ for those namespaces (default: "default"; '*' opens it
//       to every namespace), then syncs it.
//   npm run image:sync [-- <name>...]
//       (re)builds every registered image (or those named) and regenerates its platform files; run
//       by `npm start` before wrangler dev and by `npm run deploy`. A failed build exits 1 naming
//       the image.
//   npm run image:list
//       the registered images, their namespaces, entry and build state.
//
// Registration lives in wrangler.toml only: the var CONTAINER_IMAGES
// ("<name>=<ns>[|<ns>...][,<name2>=*]", the format of TRIGGER_QUEUES), which the Worker reads, and
// one [containers.images.<name>] table per image under the ImageContainer class, written between
// the two IMAGES_BEGIN/IMAGES_END marker comments. Nothing else in wrangler.toml is touched.
//
// Per image, `sync` writes containers/images/<name>/.afp/ (generated, gitignored):
//   Dockerfile   a platform stage (afp-bundle: Node 22 bundled to run in any image, tini, the
//                agent files) + the user's Dockerfile verbatim (its last stage named) + a seal stage
//                and a flattened final image (FROM scratch: the user's filesystem without
//                setuid/setgid bits or file capabilities, /opt/afp and /var/afp the platform's, and
//                only the platform's ENV and ENTRYPOINT; the user's ENTRYPOINT/CMD/ENV/WORKDIR are
//                kept in image.json and used by the agent for the entry on the first event).
//                Refused: parser directives, heredocs, a trailing line continuation, "afp-" stage
//                names, an image ENV over the bounds; after the build, an image configuration
//                other than the platform's;
//   image.json   {name, entrypoint, cmd, workingDir, env, user} from `docker image inspect` of the
//                user's image built alone;
//   agent/       a copy of containers/runtime/agent/ and the bundle script (the build context is
//                the user's folder, so the platform's files must be inside it).
// then builds the generated Dockerfile once (`afp-image-<name>:local`), so wrangler dev's own build
// of it is a cache hit, and checks that the bundled Node starts in it.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** An image's name: its folder under containers/images/ and the last path segment of an ImageUri. */
export const IMAGE_NAME_PATTERN = /^[a-z][a-z0-9-]{0,62}$/;
/** Names an image may not have (the platform's own image). */
export const RESERVED_IMAGE_NAMES = new Set(["runtime"]);
/** A namespace name (worker/shared/names.ts NAMESPACE_PATTERN). */
export const NAMESPACE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,29}$/;
/** Images wrangler accepts in one Durable Object-managed container class. */
export const MAX_IMAGES = 100;
/** Namespaces of an image registered without --namespaces. */
export const DEFAULT_NAMESPACES = ["default"];
/** Largest user Dockerfile accepted (bytes). */
export const MAX_DOCKERFILE_BYTES = 256 * 1024;
/** The marker comments in wrangler.toml between which the image tables are written. */
export const IMAGES_BEGIN =
  "# IMAGES_BEGIN: written by scripts/images.mjs (npm run image:add / image:sync); do not edit";
export const IMAGES_END = "# IMAGES_END";
/** The wrangler.toml line holding the registration (inside [vars]). */
const CONTAINER_IMAGES_LINE = /^CONTAINER_IMAGES = "([^"\n]*)"$/m;
/** The platform stage's name inside the generated Dockerfile. */
export const BUNDLE_STAGE = "afp-bundle";
/** Folder (inside the image's folder) of the generated files. */
export const GENERATED_DIR = ".afp";
/** Longest one docker build may take (a first build downloads Debian packages). */
const BUILD_TIMEOUT_MS = 20 * 60_000;

/** Why `name` is not a valid image name, or null when it is. */
export function imageNameProblem(name) {
  if (typeof name !== "string" || !IMAGE_NAME_PATTERN.test(name)) {
    return `image name "${name}" is invalid: it must match ${IMAGE_NAME_PATTERN} (lower-case letters, digits and "-", starting with a letter, at most 63 characters)`;
  }
  if (RESERVED_IMAGE_NAMES.has(name)) return `image name "${name}" is reserved for the platform's own image`;
  return null;
}

/** The namespaces of `--namespaces` ("a,b" or "*"), or throws naming the invalid one. */
export function parseNamespacesOption(value) {
  if (value === undefined) return [...DEFAULT_NAMESPACES];
  const list = value
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);
  if (list.length === 0) throw new Error("--namespaces needs at least one namespace (or '*')");
  if (list.includes("*")) {
    if (list.length > 1) throw new Error("--namespaces '*' (every namespace) cannot be combined with names");
    return ["*"];
  }
  for (const namespace of list) {
    if (!NAMESPACE_PATTERN.test(namespace))
      throw new Error(`namespace "${namespace}" is invalid: it must match ${NAMESPACE_PATTERN}`);
  }
  return [...new Set(list)];
}

/**
 * CONTAINER_IMAGES's text as a Map name → namespaces (in order). Throws on an entry it cannot read,
 * so that a hand edit gone wrong stops the sync instead of dropping an image.
 */
export function parseContainerImages(text) {
  const images = new Map();
  for (const entry of text.split(",").map((item) => item.trim())) {
    if (!entry) continue;
    const separator = entry.indexOf("=");
    const name = separator < 0 ? entry : entry.slice(0, separator).trim();
    const problem = imageNameProblem(name);
    if (problem) throw new Error(`CONTAINER_IMAGES: ${problem}`);
    if (separator < 0)
      throw new Error(
        `CONTAINER_IMAGES: image "${name}" has no namespaces ("${name}=<namespace>[|<namespace>...]" or "${name}=*")`,
      );
    const namespaces = entry
      .slice(separator + 1)
      .split("|")
      .map((item) => item.trim());
    if (namespaces.includes("*") && namespaces.length > 1)
      throw new Error(`CONTAINER_IMAGES: image "${name}" mixes "*" with names`);
    for (const namespace of namespaces) {
      if (namespace !== "*" && !NAMESPACE_PATTERN.test(namespace))
        throw new Error(`CONTAINER_IMAGES: namespace "${namespace}" of image "${name}" is invalid`);
    }
    if (images.has(name)) throw new Error(`CONTAINER_IMAGES: image "${name}" is listed twice`);
    images.set(name, namespaces);
  }
  if (images.size > MAX_IMAGES)
    throw new Error(`CONTAINER_IMAGES: ${images.size} images; at most ${MAX_IMAGES} fit one container class`);
  return images;
}

/** A Map name → namespaces as CONTAINER_IMAGES's text (names sorted, so the text is stable). */
export function formatContainerImages(images) {
  return [...images.keys()]
    .sort()
    .map((name) => `${name}=${images.get(name).join("|")}`)
    .join(",");
}

/** The registration in wrangler.toml's text: a Map name → namespaces. */
export function registeredImages(toml) {
  const match = CONTAINER_IMAGES_LINE.exec(toml);
  if (!match) throw new Error(`wrangler.toml has no line CONTAINER_IMAGES = "..." in [vars]`);
  return parseContainerImages(match[1]);
}

/** The [containers.images.<name>] tables of the images, as written between the markers. */
export function imageTables(names) {
  return [...names]
    .sort()
    .map(
      (name) =>
        `[containers.images.${name}]\n` +
        `dockerfile = "./containers/images/${name}/${GENERATED_DIR}/Dockerfile"\n` +
        `build_context = "./containers/images/${name}"\n`,
    )
    .join("\n");
}

/**
 * wrangler.toml's text with `images` registered: the CONTAINER_IMAGES line and the text between the
 * marker comments replaced, nothing else. The same input gives the same output (idempotent).
 */
export function editWranglerToml(toml, images) {
  if (!CONTAINER_IMAGES_LINE.test(toml))
    throw new Error(`wrangler.toml has no line CONTAINER_IMAGES = "..." in [vars]`);
  const begin = toml.indexOf(`${IMAGES_BEGIN}\n`);
  const end = toml.indexOf(IMAGES_END, begin + 1);
  if (begin < 0 || end < 0 || toml.indexOf(`${IMAGES_BEGIN}\n`, begin + 1) >= 0) {
    throw new Error(
      `wrangler.toml must hold the marker lines "${IMAGES_BEGIN}" and "${IMAGES_END}" once each, in that order`,
    );
  }
  const tables = imageTables(images.keys());
  const withTables = `${toml.slice(0, begin + IMAGES_BEGIN.length + 1)}${tables}${tables ? "\n" : ""}${toml.slice(end)}`;
  return withTables.replace(CONTAINER_IMAGES_LINE, `CONTAINER_IMAGES = "${formatContainerImages(images)}"`);
}

/**
 * Splits a Dockerfile into its leading parser directives and global ARGs (which must stay before
 * the first FROM) and the rest, so the platform's stage can go first. Only comment, blank and ARG
 * lines (with their continuation lines) can come before the first FROM.
 */
export function splitDockerfileHead(text) {
  const lines = text.replace(/\r\n/g, "\n").split("\n");
  let directives = [];
  let index = 0;
  // Parser directives (# syntax=, # escape=, # check=) are only recognised at the very top.
  while (index < lines.length && /^#\s*[a-zA-Z]+\s*=/.test(lines[index])) {
    directives.push(lines[index]);
    index += 1;
  }
  const escapeChar = /^#\s*escape\s*=\s*(\S)/i.exec(directives.join("\n"))?.[1] ?? "\\";
  const head = [];
  while (index < lines.length && !/^\s*FROM\s/i.test(lines[index])) {
    let line = lines[index];
    head.push(line);
    index += 1;
    while (line.trimEnd().endsWith(escapeChar) && !line.trimStart().startsWith("#") && index < lines.length) {
      line = lines[index];
      head.push(line);
      index += 1;
    }
  }
  if (index >= lines.length) throw new Error("the Dockerfile has no FROM instruction");
  directives = directives.filter(Boolean);
  return { directives, head, body: lines.slice(index) };
}

/** The name given to the user's final stage when it has none (the seal stage copies it). */
export const USER_FINAL_STAGE = "afp-user-final";
/** The stage that copies the user's final filesystem and removes what could reach the root agent. */
export const SEAL_STAGE = "afp-seal";
/** The image's entry (tini → the bundled Node with a pinned, empty OpenSSL config → the agent). */
export const PLATFORM_ENTRYPOINT = [
  "/opt/afp/bin/tini",
  "--",
  "/opt/afp/bin/node",
  "--openssl-config=/opt/afp/openssl.cnf",
  "/opt/afp/agent.mjs",
];
/** The only environment the final image may declare (name → value; PATH: any value). */
export const PLATFORM_ENV = { AGENT_PORT: "8080", AFP_IMAGE_MODE: "1" };
/** Bounds of the image's ENV (those of a function's own environment). */
export const MAX_IMAGE_ENV_VARIABLES = 256;
export const MAX_IMAGE_ENV_BYTES = 64 * 1024;
export const IMAGE_ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Why the user's Dockerfile cannot be wrapped safely, or null. Refused: parser directives
 * (`# syntax=` could replace the whole build by another frontend, `# escape=`/`# check=` change how
 * the platform's lines read), heredocs (an unterminated `<<EOF` swallows the platform's stages), a
 * last instruction that ends with a line continuation (it would swallow the platform's first line)
 * and stage names of the platform's own (`afp-...`).
 */
export function dockerfileProblem(text) {
  const lines = text
    .replace(/^\uFEFF/, "")
    .replace(/\r\n?/g, "\n")
    .split("\n");
  for (const line of lines) {
    if (/^\s*#/.test(line)) {
      if (/^\s*#\s*(syntax|escape|check)\s*=/i.test(line))
        return `parser directives ("${line.trim()}") are not supported in an image function's Dockerfile: remove the line`;
      continue;
    }
    break; // directives are read only in the leading comments (stricter than Docker, which stops at the first non-directive)
  }
  for (const line of lines) {
    if (/^\s*#/.test(line)) continue;
    if (line.includes("<<"))
      return `heredocs ("<<") are not supported in an image function's Dockerfile: put the script in a file and COPY it (line: ${JSON.stringify(line.trim().slice(0, 120))})`;
    if (/^\s*FROM\s.*\sAS\s+afp-/i.test(line))
      return `stage names starting with "afp-" are reserved for the platform (line: ${JSON.stringify(line.trim().slice(0, 120))})`;
  }
  const instructions = lines.filter((line) => line.trim() !== "" && !/^\s*#/.test(line));
  const last = instructions[instructions.length - 1];
  if (last?.trimEnd().endsWith("\\"))
    return `its last instruction ends with a line continuation ("\\"): finish it (line: ${JSON.stringify(last.trim().slice(0, 120))})`;
  return null;
}

/** Why the image's ENV (name → value) is out of bounds, or null. */
export function imageEnvProblem(env) {
  const names = Object.keys(env);
  if (names.length > MAX_IMAGE_ENV_VARIABLES)
    return `its ENV sets ${names.length} variables; at most ${MAX_IMAGE_ENV_VARIABLES} are allowed`;
  let bytes = 0;
  for (const name of names) {
    if (!IMAGE_ENV_NAME_PATTERN.test(name))
      return `its ENV variable name ${JSON.stringify(name)} is invalid: it must match ${IMAGE_ENV_NAME_PATTERN}`;
    bytes += Buffer.byteLength(name) + Buffer.byteLength(String(env[name])) + 2;
  }
  if (bytes > MAX_IMAGE_ENV_BYTES)
    return `its ENV is ${bytes} bytes in all; at most ${MAX_IMAGE_ENV_BYTES} are allowed`;
  return null;
}

/**
 * Why the built image's configuration (docker image inspect's first element) is not exactly the
 * platform's (user root, the platform's ENTRYPOINT, no CMD, only the platform's ENV), or null.
 */
export function finalImageProblem(inspect) {
  const config = inspect?.Config ?? {};
  const problems = [];
  const user = config.User ?? "";
  if (!["", "root", "0", "0:0", "root:root"].includes(user)) problems.push(`User is ${JSON.stringify(user)}, not root`);
  if (JSON.stringify(config.Entrypoint ?? null) !== JSON.stringify(PLATFORM_ENTRYPOINT))
    problems.push(`Entrypoint is ${JSON.stringify(config.Entrypoint ?? null)}, not the platform's`);
  if (config.Cmd !== null && config.Cmd !== undefined && config.Cmd.length > 0)
    problems.push(`Cmd is ${JSON.stringify(config.Cmd)}, not empty`);
  const seen = new Set();
  for (const item of config.Env ?? []) {
    const separator = item.indexOf("=");
    const name = separator < 0 ? item : item.slice(0, separator);
    const value = separator < 0 ? "" : item.slice(separator + 1);
    seen.add(name);
    if (name === "PATH") continue;
    if (!(name in PLATFORM_ENV)) problems.push(`Env has ${JSON.stringify(name)}`);
    else if (PLATFORM_ENV[name] !== value) problems.push(`Env ${name} is ${JSON.stringify(value)}`);
  }
  for (const name of Object.keys(PLATFORM_ENV)) if (!seen.has(name)) problems.push(`Env lacks ${name}`);
  return problems.length > 0 ? problems.join("; ") : null;
}

/**
 * The user's stage lines with the final stage named: its last FROM gets ` AS afp-user-final` when
 * it has no name. Returns the lines and the final stage's name.
 */
export function nameFinalStage(lines) {
  const named = [...lines];
  for (let index = named.length - 1; index >= 0; index -= 1) {
    if (!/^\s*FROM\s/i.test(named[index])) continue;
    const alias = /\sAS\s+([A-Za-z][A-Za-z0-9_.-]*)\s*$/i.exec(named[index]);
    if (alias) return { lines: named, finalStage: alias[1] };
    named[index] = `${named[index].trimEnd()} AS ${USER_FINAL_STAGE}`;
    return { lines: named, finalStage: USER_FINAL_STAGE };
  }
  throw new Error("the Dockerfile has no FROM instruction");
}

/**
 * The generated Dockerfile: the user's global ARGs, the platform's stage (first), the user's
 * Dockerfile verbatim (numeric stage references `--from=<n>` shifted by one, the platform's stage
 * being stage 0; its last stage named), then the seal stage and the final image. The final image is
 * flattened: `FROM scratch` + the user's filesystem (setuid/setgid bits and file capabilities
 * stripped, /opt/afp and /var/afp the platform's, /opt, /var and / root 0755, /tmp 1777) + the
 * platform's files, with the platform's ENV, ENTRYPOINT and no USER/WORKDIR/CMD: none of the user's
 * image configuration reaches the root agent (it is kept in image.json for the entry).
 */
export function generateDockerfile(userDockerfile, name) {
  const problem = imageNameProblem(name);
  if (problem) throw new Error(problem);
  const dockerfileIssue = dockerfileProblem(userDockerfile);
  if (dockerfileIssue) throw new Error(`image "${name}": ${dockerfileIssue}`);
  // Unknown directives (harmless comments such as "# maintainer=me") are dropped: syntax, escape and
  // check are refused above.
  const { head, body } = splitDockerfileHead(userDockerfile.replace(/^\uFEFF/, ""));
  const shifted = body.map((line) =>
    /^\s*(COPY|RUN)\s/i.test(line) || /^\s+--/.test(line)
      ? line
          .replace(/--from=(\d+)\b/g, (_, index) => `--from=${Number(index) + 1}`)
          .replace(/(--mount=[^\s]*\bfrom=)(\d+)\b/g, (_, prefix, index) => `${prefix}${Number(index) + 1}`)
      : line,
  );
  while (shifted.length > 0 && shifted[shifted.length - 1].trim() === "") shifted.pop();
  const { lines: user, finalStage } = nameFinalStage(shifted);
  const seal = [
    "set -eu",
    'for d in /rootfs /rootfs/opt /rootfs/var /rootfs/tmp; do if [ -L "$d" ] || [ ! -d "$d" ]; then rm -rf "$d"; mkdir "$d"; fi; chown 0:0 "$d"; chmod 0755 "$d"; done',
    "chmod 1777 /rootfs/tmp",
    "rm -rf /rootfs/opt/afp /rootfs/var/afp",
    "mkdir -p /rootfs/var/afp/code /rootfs/var/afp/spool",
    "chown -R 0:0 /rootfs/var/afp",
    "chmod 0755 /rootfs/var/afp /rootfs/var/afp/code",
    "chmod 0700 /rootfs/var/afp/spool",
    "find /rootfs -xdev -perm /6000 -type f -exec chmod ug-s {} +",
    "getcap -r /rootfs 2>/dev/null | sed -E 's/( [^ ]*[=+-][^ ]*)+$//' | while IFS= read -r f; do setcap -r \"$f\"; done",
    'if [ -n "$(find /rootfs -xdev -perm /6000 -type f)" ] || [ -n "$(getcap -r /rootfs 2>/dev/null)" ]; then echo "afp-seal: setuid/setgid bits or file capabilities remain" >&2; exit 1; fi',
  ].join("; \\\n    ");
  return [
    `# GENERATED by scripts/images.mjs from containers/images/${name}/Dockerfile: do not edit (npm run image:sync rewrites it).`,
    ...(head.some((line) => line.trim())
      ? ["# ---- The head of the image's Dockerfile (before its first FROM: comments, global ARGs)", ...head]
      : []),
    "",
    "# ---- Platform stage: Node 22 that runs in any image, tini, the runtime agent --------------------",
    `FROM node:22-bookworm-slim AS ${BUNDLE_STAGE}`,
    "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tini patchelf libcap2-bin && rm -rf /var/lib/apt/lists/*",
    `COPY ${GENERATED_DIR}/agent/bundle-node.sh /tmp/bundle-node.sh`,
    "RUN sh /tmp/bundle-node.sh",
    // The agent's files apart from the (large, rarely changing) Node bundle: an edit of the agent
    // then rebuilds only the small layers below.
    `COPY ${GENERATED_DIR}/agent/runtime/ /afp-agent/`,
    `COPY ${GENERATED_DIR}/image.json /afp-agent/image.json`,
    // Handlers may read the agent's files but not change them.
    "RUN chown -R 0:0 /afp-agent && find /afp-agent -type d -exec chmod 0755 {} + && find /afp-agent -type f -exec chmod 0644 {} + && rm -f /tmp/bundle-node.sh",
    "",
    `# ---- The image's own Dockerfile (containers/images/${name}/Dockerfile), verbatim ----------------`,
    ...user,
    "",
    "# ---- Platform seal: the user's final filesystem, without setuid/setgid bits or file capabilities,",
    "# with /opt/afp and /var/afp the platform's and /, /opt, /var root 0755, /tmp 1777.",
    `FROM ${BUNDLE_STAGE} AS ${SEAL_STAGE}`,
    `COPY --from=${finalStage} / /rootfs`,
    `RUN ${seal}`,
    "",
    "# ---- The image: flattened (none of the user's ENV, USER, WORKDIR, ENTRYPOINT or CMD; they are in",
    "# /opt/afp/image.json, from which the agent starts the image's entry as an unprivileged user).",
    "FROM scratch",
    `COPY --from=${SEAL_STAGE} /rootfs /`,
    `COPY --from=${BUNDLE_STAGE} /opt/afp /opt/afp`,
    `COPY --from=${BUNDLE_STAGE} /afp-agent/ /opt/afp/`,
    `ENV ${Object.entries(PLATFORM_ENV)
      .map(([key, value]) => `${key}=${value}`)
      .join(" ")}`,
    "EXPOSE 8080",
    `ENTRYPOINT ${JSON.stringify(PLATFORM_ENTRYPOINT).replace(/","/g, '", "')}`,
    "",
  ].join("\n");
}

/**
 * Why the image's .dockerignore would keep the platform's files (.afp/) out of the build context, or
 * null. Docker applies the last matching line; a broad pattern (`*`, `.*`, `.afp`) without a later
 * `!.afp` exception hides them.
 */
export function dockerignoreProblem(text) {
  let excluded = false;
  for (const raw of text.replace(/\r\n/g, "\n").split("\n")) {
    const line = raw.trim().replace(/^\.\//, "");
    if (!line || line.startsWith("#")) continue;
    const negated = line.startsWith("!");
    const pattern = (negated ? line.slice(1) : line).replace(/\/+$/, "");
    if (["*", "**", ".*", ".afp", ".afp/**", "**/.afp", "**/.*"].includes(pattern)) excluded = !negated;
  }
  return excluded
    ? `its .dockerignore excludes ${GENERATED_DIR}/ (the platform's files): add the line "!${GENERATED_DIR}" at its end`
    : null;
}

/** image.json's content from `docker image inspect`'s first element (its Config). */
export function imageJsonFromInspect(inspect, name) {
  const config = inspect?.Config ?? {};
  const env = {};
  for (const item of config.Env ?? []) {
    const separator = item.indexOf("=");
    if (separator > 0) env[item.slice(0, separator)] = item.slice(separator + 1);
  }
  return {
    name,
    entrypoint: config.Entrypoint ?? [],
    cmd: config.Cmd ?? [],
    workingDir: config.WorkingDir || "/",
    env,
    user: config.User ?? "",
  };
}

// ---- Side effects: files and Docker -------------------------------------------------------------

function log(message) {
  process.stderr.write(`[images] ${message}\n`);
}

function imageDir(name) {
  return join(root, "containers", "images", name);
}

/** Every file under `dir` (relative paths, sorted), except the generated folder. */
function listFiles(dir, base = dir) {
  const files = [];
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(dir, entry.name);
    if (dir === base && entry.name === GENERATED_DIR) continue;
    if (entry.isDirectory()) files.push(...listFiles(path, base));
    else if (entry.isFile()) files.push(relative(base, path).split(sep).join("/"));
  }
  return files;
}

/** SHA-256 of what an image's generated files and builds depend on. */
function sourceHash(name, dir = imageDir(name)) {
  // This script itself too: a change of the generated files' shape rebuilds every image.
  const hash = createHash("sha256").update(readFileSync(fileURLToPath(import.meta.url)));
  const add = (dir, label) => {
    for (const file of listFiles(dir)) {
      hash.update(`${label}/${file}\n`);
      hash.update(readFileSync(join(dir, file)));
    }
  };
  add(dir, "image");
  add(join(root, "containers", "runtime", "agent"), "agent");
  add(join(root, "containers", "image-bundle"), "bundle");
  return hash.digest("hex");
}

function docker(args, options = {}) {
  return spawnSync(join(root, "scripts", "docker-wrapper.sh"), args, {
    cwd: root,
    encoding: "utf8",
    timeout: BUILD_TIMEOUT_MS,
    maxBuffer: 64 * 1024 * 1024,
    ...options,
  });
}

function imageLabel(tag, label) {
  const result = docker(["image", "inspect", "--format", `{{ index .Config.Labels "${label}" }}`, tag]);
  return result.status === 0 ? result.stdout.trim() : "";
}

/** Builds one Dockerfile; on failure prints the build's output and throws naming the image. */
function build(name, tag, dockerfile, hash, dir = imageDir(name)) {
  const started = Date.now();
  const result = docker(["build", "-q", "--label", `afp.source-hash=${hash}`, "-f", dockerfile, "-t", tag, dir]);
  if (result.status !== 0) {
    process.stderr.write(result.stdout ?? "");
    process.stderr.write(result.stderr ?? "");
    throw new Error(
      `image "${name}": docker build of ${relative(root, dockerfile)} failed (exit ${result.status ?? result.signal ?? result.error?.message})`,
    );
  }
  return Date.now() - started;
}

/** Regenerates containers/images/<name>/.afp/ and builds the image (skipped when up to date). */
export function syncImage(name, { force = false, dir = imageDir(name), tagPrefix = "afp" } = {}) {
  const problem = imageNameProblem(name);
  if (problem) throw new Error(problem);
  const userDockerfile = join(dir, "Dockerfile");
  if (!existsSync(userDockerfile))
    throw new Error(`image "${name}": containers/images/${name}/Dockerfile does not exist`);
  if (statSync(userDockerfile).size > MAX_DOCKERFILE_BYTES)
    throw new Error(`image "${name}": its Dockerfile is larger than ${MAX_DOCKERFILE_BYTES} bytes`);
  const ignoreFile = join(dir, ".dockerignore");
  const ignoreProblem = existsSync(ignoreFile) ? dockerignoreProblem(readFileSync(ignoreFile, "utf8")) : null;
  if (ignoreProblem) throw new Error(`image "${name}": ${ignoreProblem}`);
  const dockerfileIssue = dockerfileProblem(readFileSync(userDockerfile, "utf8"));
  if (dockerfileIssue) throw new Error(`image "${name}": ${dockerfileIssue}`);
  const hash = sourceHash(name, dir);
  const generated = join(dir, GENERATED_DIR);
  const finalTag = `${tagPrefix}-image-${name}:local`;
  if (!force && existsSync(join(generated, "Dockerfile")) && imageLabel(finalTag, "afp.source-hash") === hash) {
    log(`${name}: up to date`);
    return { name, built: false };
  }
  const userTag = `${tagPrefix}-user-${name}:local`;
  log(`${name}: building its Dockerfile`);
  const userMs = build(name, userTag, userDockerfile, hash, dir);
  const inspect = docker(["image", "inspect", userTag]);
  if (inspect.status !== 0)
    throw new Error(`image "${name}": docker image inspect ${userTag} failed: ${inspect.stderr}`);
  const imageJson = imageJsonFromInspect(JSON.parse(inspect.stdout)[0], name);
  const envIssue = imageEnvProblem(imageJson.env);
  if (envIssue) throw new Error(`image "${name}": ${envIssue}`);

  rmSync(generated, { recursive: true, force: true });
  mkdirSync(join(generated, "agent"), { recursive: true });
  cpSync(join(root, "containers", "runtime", "agent"), join(generated, "agent", "runtime"), { recursive: true });
  cpSync(join(root, "containers", "image-bundle", "bundle-node.sh"), join(generated, "agent", "bundle-node.sh"));
  writeFileSync(join(generated, "image.json"), `${JSON.stringify(imageJson, null, 2)}\n`);
  writeFileSync(join(generated, "Dockerfile"), generateDockerfile(readFileSync(userDockerfile, "utf8"), name));
  writeFileSync(join(generated, ".source-hash"), `${hash}\n`);

  log(`${name}: building it with the platform's agent`);
  const finalMs = build(name, finalTag, join(generated, "Dockerfile"), hash, dir);
  // The built image's configuration must be exactly the platform's (the user's Dockerfile cannot
  // have changed the entry, the user or the environment the root agent starts with).
  const finalInspect = docker(["image", "inspect", finalTag]);
  if (finalInspect.status !== 0)
    throw new Error(`image "${name}": docker image inspect ${finalTag} failed: ${finalInspect.stderr}`);
  const finalIssue = finalImageProblem(JSON.parse(finalInspect.stdout)[0]);
  if (finalIssue) {
    docker(["image", "rm", "-f", finalTag]);
    throw new Error(`image "${name}": the built image is not the platform's (${finalIssue}); it was removed`);
  }
  const check = docker([
    "run",
    "--rm",
    "--network",
    "none",
    "--entrypoint",
    "/opt/afp/bin/node",
    finalTag,
    "-e",
    "process.stdout.write(process.version)",
  ]);
  if (check.status !== 0)
    throw new Error(`image "${name}": the bundled Node does not start in it: ${check.stderr.trim()}`);
  log(
    `${name}: built (its Dockerfile ${userMs} ms, with the agent ${finalMs} ms; node ${check.stdout.trim()} runs in it)`,
  );
  return { name, built: true, userMs, finalMs };
}

function readToml() {
  return readFileSync(join(root, "wrangler.toml"), "utf8");
}

/** Writes wrangler.toml only when its text changes. */
function writeToml(images) {
  const before = readToml();
  const after = editWranglerToml(before, images);
  if (after !== before) {
    writeFileSync(join(root, "wrangler.toml"), after);
    log("wrangler.toml updated (CONTAINER_IMAGES and the [containers.images.*] tables)");
  }
}

function syncAll(names, options) {
  const images = registeredImages(readToml());
  const chosen = names.length > 0 ? names : [...images.keys()];
  for (const name of chosen) {
    if (!images.has(name)) throw new Error(`image "${name}" is not registered (npm run image:add -- ${name})`);
  }
  writeToml(images);
  for (const name of chosen) syncImage(name, options);
}

function parseArgs(argv) {
  const positional = [];
  const options = {};
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index];
    if (arg === "--namespaces") options.namespaces = argv[++index] ?? "";
    else if (arg.startsWith("--namespaces=")) options.namespaces = arg.slice("--namespaces=".length);
    else if (arg === "--force") options.force = true;
    else if (arg.startsWith("--")) throw new Error(`unknown option ${arg}`);
    else positional.push(arg);
  }
  return { positional, options };
}

function main(argv) {
  const [command, ...rest] = argv;
  const { positional, options } = parseArgs(rest);
  if (command === "add") {
    if (positional.length !== 1)
      throw new Error("usage: npm run image:add -- <name> [--namespaces a,b | --namespaces '*']");
    const name = positional[0];
    const problem = imageNameProblem(name);
    if (problem) throw new Error(problem);
    if (!existsSync(join(imageDir(name), "Dockerfile")))
      throw new Error(
        `containers/images/${name}/Dockerfile does not exist: put the image's Dockerfile and build context there first`,
      );
    const images = registeredImages(readToml());
    images.set(name, parseNamespacesOption(options.namespaces));
    if (images.size > MAX_IMAGES) throw new Error(`at most ${MAX_IMAGES} images can be registered`);
    syncImage(name, options);
    writeToml(images);
    log(
      `${name}: registered for ${images.get(name).join(", ")}; functions refer to it with ImageUri ".../${name}:<tag>"`,
    );
    return;
  }
  if (command === "sync") return syncAll(positional, options);
  if (command === "list") {
    const images = registeredImages(readToml());
    for (const [name, namespaces] of images) {
      const file = join(imageDir(name), GENERATED_DIR, "image.json");
      const info = existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : null;
      const entry = info ? JSON.stringify([...info.entrypoint, ...info.cmd]) : "(not built: npm run image:sync)";
      process.stdout.write(`${name}\tnamespaces=${namespaces.join("|")}\tentry=${entry}\n`);
    }
    return;
  }
  throw new Error("usage: node scripts/images.mjs add <name> [--namespaces a,b] | sync [<name>...] [--force] | list");
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  try {
    main(process.argv.slice(2));
  } catch (error) {
    log(`error: ${error.message}`);
    process.exit(1);
  }
}
