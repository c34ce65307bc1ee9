// An image container's own description (image mode, AFP_IMAGE_MODE=1): `/opt/afp/image.json`,
// written at registration from `docker image inspect` of the user's image (scripts/images.mjs):
// `{"name", "entrypoint": [...], "cmd": [...], "workingDir", "env": {...}}`. The agent reads it once
// and runs the image's entry from it (bootstrap-image.mjs, PROTOCOL.md §4).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { IMAGE_NAME_PATTERN } from "./contract.gen.mjs";

/** Whether this agent runs in an image container (image functions only) rather than the runtime image. */
export const IMAGE_MODE = process.env.AFP_IMAGE_MODE === "1";
/**
 * The environment variables by which tests point the agent at other folders and ports. The installed
 * agent of an image (/opt/afp/agent.mjs) ignores them: agent.mjs imports this module first, so they
 * are removed from process.env before any other module reads them. (The image cannot set them
 * anyway: its build is flattened and its configuration checked to carry only the platform's ENV,
 * scripts/images.mjs; this is defense in depth. The agent tests run agent.mjs from the repository,
 * so they keep them.)
 */
export const TEST_OVERRIDES = [
  "AGENT_SPOOL_ROOT",
  "AGENT_CODE_ROOT",
  "AGENT_CGROUP_ROOT",
  "AFP_IMAGE_CONFIG",
  "AFP_IMAGE_PORT",
  "AFP_IMAGE_PORT_WAIT_MS",
];
/** Whether this is the agent installed in an image (/opt/afp/), in image mode. */
export const INSTALLED_IMAGE_AGENT = IMAGE_MODE && new URL(".", import.meta.url).pathname === "/opt/afp/";
if (INSTALLED_IMAGE_AGENT) for (const name of TEST_OVERRIDES) delete process.env[name];
/**
 * Why an image agent must not run anything, or null: in image mode the agent must be root (it runs
 * the entry as a fresh unprivileged uid; as any other uid the entry would share the agent's uid and
 * could read its token).
 */
export const IMAGE_AGENT_PROBLEM =
  IMAGE_MODE && process.getuid?.() !== 0
    ? `the image's agent runs as uid ${process.getuid?.()}, not root: it refuses to run anything (rebuild the image with npm run image:sync; its USER must not change the platform's entry)`
    : null;
/** Bounds of image.json's env (those of a function's own environment; scripts/images.mjs checks them at sync). */
const MAX_IMAGE_ENV_VARIABLES = 256;
const MAX_IMAGE_ENV_BYTES = 64 * 1024;
const IMAGE_ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Where image.json is: beside the agent (/opt/afp), unless AFP_IMAGE_CONFIG names another file (tests). */
const IMAGE_CONFIG_PATH = process.env.AFP_IMAGE_CONFIG ?? join(new URL(".", import.meta.url).pathname, "image.json");
/** Largest image.json read (an image's ENV and command are small). */
const MAX_IMAGE_CONFIG_BYTES = 1024 * 1024;

/** A list of strings (ENTRYPOINT, CMD) or [] for null/absent; undefined when it is something else. */
function stringList(value) {
  if (value === undefined || value === null) return [];
  return Array.isArray(value) && value.every((item) => typeof item === "string" && !item.includes("\u0000"))
    ? value
    : undefined;
}

/** ENV as an object of strings: docker's `["K=V", ...]` or `{K: V}`; undefined when it is neither. */
function environmentOf(value) {
  if (value === undefined || value === null) return {};
  const environment = {};
  if (Array.isArray(value)) {
    for (const item of value) {
      if (typeof item !== "string") return undefined;
      const equals = item.indexOf("=");
      if (equals > 0) environment[item.slice(0, equals)] = item.slice(equals + 1);
    }
    return environment;
  }
  if (typeof value !== "object") return undefined;
  for (const [name, text] of Object.entries(value)) {
    if (typeof text !== "string") return undefined;
    environment[name] = text;
  }
  return environment;
}

/**
 * Reads and checks image.json: `{ config }` (`{name, entrypoint, cmd, workingDir, env}`) or
 * `{ problem }` saying what is wrong (the agent then refuses every execution with it).
 */
export function readImageConfig(path = IMAGE_CONFIG_PATH) {
  let parsed;
  try {
    const text = readFileSync(path, "utf8");
    if (Buffer.byteLength(text) > MAX_IMAGE_CONFIG_BYTES)
      return { problem: `${path} is over ${MAX_IMAGE_CONFIG_BYTES} bytes` };
    parsed = JSON.parse(text);
  } catch (error) {
    return {
      problem: `${path} cannot be read (${error.code ?? error.message}): rebuild the image (npm run image:sync)`,
    };
  }
  const name = parsed?.name;
  const entrypoint = stringList(parsed?.entrypoint);
  const cmd = stringList(parsed?.cmd);
  const env = environmentOf(parsed?.env);
  const workingDir = parsed?.workingDir ?? "";
  if (typeof name !== "string" || !IMAGE_NAME_PATTERN.test(name) || !entrypoint || !cmd || !env) {
    return { problem: `${path} is not an image description (name, entrypoint, cmd, workingDir, env)` };
  }
  const names = Object.keys(env);
  const envBytes = names.reduce((sum, key) => sum + Buffer.byteLength(key) + Buffer.byteLength(env[key]) + 2, 0);
  if (names.length > MAX_IMAGE_ENV_VARIABLES || envBytes > MAX_IMAGE_ENV_BYTES) {
    return { problem: `${path}: env is over ${MAX_IMAGE_ENV_VARIABLES} variables or ${MAX_IMAGE_ENV_BYTES} bytes` };
  }
  const badName = names.find((key) => !IMAGE_ENV_NAME_PATTERN.test(key));
  if (badName !== undefined) return { problem: `${path}: env name ${JSON.stringify(badName)} is invalid` };
  if (typeof workingDir !== "string" || (workingDir !== "" && !workingDir.startsWith("/"))) {
    return { problem: `${path}: workingDir must be an absolute path` };
  }
  return { config: { name, entrypoint, cmd, workingDir: workingDir || "/", env } };
}

/** This container's image description, read once at start in image mode (else undefined). */
export const IMAGE = IMAGE_MODE ? readImageConfig() : undefined;

/**
 * The command that starts an image function's entry, as Docker would run it: the function's
 * ImageConfig Command + Args (`spec.image.command`); else the image's ENTRYPOINT with the function's
 * Args (`spec.image.args`) instead of the image's CMD; else ENTRYPOINT + CMD.
 */
export function entryCommand(spec) {
  if (spec.image?.command?.length) return spec.image.command;
  const config = IMAGE?.config;
  if (!config) return [];
  return [...config.entrypoint, ...(spec.image?.args?.length ? spec.image.args : config.cmd)];
}
