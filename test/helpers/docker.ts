// Asks Docker itself, not the platform, what became of a function's container. Locally workerd
// names an instance's container `workerd-<session>-<script>-<class>-<Durable Object id>`, <class>
// one of the container classes (InstanceContainer, InstanceContainerStandard, InstanceContainerLarge,
// InstanceContainerLite:
// one per compute size; ImageContainer: image functions), and starts a network sidecar beside it under the same name plus `-proxy`; the diagnostics route
// GET /_diagnostics/instances/:name answers the instance's Durable Object id.
import { execFileSync } from "node:child_process";
import { ADMIN_HEADERS } from "./api-client";
import { pollUntil } from "./wait";

/** The container classes of function instances (wrangler.toml [[containers]]): one per compute size, and image functions'. */
export const INSTANCE_CONTAINER_CLASSES = [
  "InstanceContainer",
  "InstanceContainerStandard",
  "InstanceContainerLarge",
  "ImageContainer",
  "InstanceContainerLite",
];
/** The name of one of the instance's function containers (never its `-proxy` sidecar), in any class. */
function isContainerOf(name: string, durableObjectId: string): boolean {
  return INSTANCE_CONTAINER_CLASSES.some((className) => name.endsWith(`-${className}-${durableObjectId}`));
}
/** Longest one docker CLI call may take (the engine is shared and can be slow). */
const DOCKER_CALL_TIMEOUT_MS = 30_000;
/** Docker states of a container whose processes still exist. */
const ALIVE_STATES = new Set(["running", "paused", "restarting"]);
/** Default longest wait for Docker to show a container gone (the machine is shared and slow). */
export const CONTAINER_GONE_WAIT_MS = 30_000;

/** One function container (never its sidecar) as `docker ps -a` lists it. */
export interface FunctionContainer {
  /** Docker's full container id. */
  id: string;
  name: string;
  /** Docker's state: created, running, paused, restarting, removing, exited or dead. */
  state: string;
}

/** An instance as the diagnostics route reports it. */
export interface InstanceStatus {
  /** The platform's own view (`ctx.container.running`): not proof on its own. */
  containerRunning: boolean;
  requestId: string | null;
  /** The instance's Durable Object id: the end of its container's Docker name. */
  durableObjectId: string;
  /** The compute size of the instance's container class, null before its first event. */
  instanceType?: string | null;
}

function docker(args: string[]): string {
  return execFileSync("docker", args, { encoding: "utf8", timeout: DOCKER_CALL_TIMEOUT_MS });
}

/** The instance named instanceId (an event's `instanceId`), from GET /_diagnostics/instances/:name. */
export async function instanceStatus(baseUrl: string, instanceId: string): Promise<InstanceStatus> {
  const response = await fetch(`${baseUrl}/_diagnostics/instances/${encodeURIComponent(instanceId)}`, {
    headers: ADMIN_HEADERS,
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`instance ${instanceId} answered ${response.status}: ${text}`);
  return JSON.parse(text) as InstanceStatus;
}

/** Every function container of the instance (sidecar excluded), in any state, as Docker lists them. */
export function functionContainers(durableObjectId: string): FunctionContainer[] {
  if (!/^[0-9a-f]+$/.test(durableObjectId)) throw new Error(`not a Durable Object id: ${durableObjectId}`);
  return docker([
    "ps",
    "-a",
    "--no-trunc",
    "--filter",
    `name=${durableObjectId}`,
    "--format",
    "{{.ID}}\t{{.Names}}\t{{.State}}",
  ])
    .split("\n")
    .filter(Boolean)
    .map((row) => {
      const [id = "", name = "", state = ""] = row.split("\t");
      return { id, name, state };
    })
    .filter((container) => isContainerOf(container.name, durableObjectId));
}

/** The instance's function containers whose processes still exist (running, paused or restarting). */
export function aliveFunctionContainers(durableObjectId: string): FunctionContainer[] {
  return functionContainers(durableObjectId).filter((container) => ALIVE_STATES.has(container.state));
}

/** The Docker id of the instance's one live function container; throws unless exactly one is alive. */
export function aliveFunctionContainer(durableObjectId: string): string {
  const alive = aliveFunctionContainers(durableObjectId);
  const [only] = alive;
  if (alive.length !== 1 || !only) {
    throw new Error(
      `expected one live container of ${durableObjectId}: ${JSON.stringify(functionContainers(durableObjectId))}`,
    );
  }
  return only.id;
}

/** Whether Docker still has the container (full id) alive; false once it has exited or been removed. */
export function containerAlive(dockerId: string): boolean {
  const state = docker(["ps", "-a", "--no-trunc", "--filter", `id=${dockerId}`, "--format", "{{.State}}"]).trim();
  return ALIVE_STATES.has(state);
}

/**
 * Waits until Docker no longer has the container alive (exited or removed), at most timeoutMs;
 * answers whether it is still alive at the end, so that `expect(...).toBe(false)` reads as the claim.
 */
export function waitUntilContainerGone(dockerId: string, timeoutMs = CONTAINER_GONE_WAIT_MS): Promise<boolean> {
  return pollUntil(
    async () => containerAlive(dockerId),
    (alive) => !alive,
    timeoutMs,
  );
}

/**
 * Waits until Docker has no live function container of the instance, at most timeoutMs; answers
 * those still alive at the end (empty once gone).
 */
export function waitUntilInstanceContainersGone(
  durableObjectId: string,
  timeoutMs = CONTAINER_GONE_WAIT_MS,
): Promise<FunctionContainer[]> {
  return pollUntil(
    async () => aliveFunctionContainers(durableObjectId),
    (alive) => alive.length === 0,
    timeoutMs,
  );
}

/**
 * The lifecycle actions (create, start, kill, die, destroy, ...) Docker recorded for the instance's
 * function containers from sinceMs (epoch ms) until now, oldest first.
 */
export function containerActions(durableObjectId: string, sinceMs: number): { action: string; id: string }[] {
  const seconds = (ms: number) => (ms / 1000).toFixed(3);
  return docker([
    "events",
    "--since",
    seconds(sinceMs),
    "--until",
    seconds(Date.now()),
    "--filter",
    "type=container",
    "--format",
    '{{.Action}}\t{{.Actor.ID}}\t{{index .Actor.Attributes "name"}}',
  ])
    .split("\n")
    .filter(Boolean)
    .map((row) => row.split("\t"))
    .filter(([, , name]) => name !== undefined && isContainerOf(name, durableObjectId))
    .map(([action = "", id = ""]) => ({ action, id }));
}

/** The Docker id of the one live function container of the instance named instanceId (an event's `instanceId`). */
export async function aliveContainerOfInstance(baseUrl: string, instanceId: string): Promise<string> {
  return aliveFunctionContainer((await instanceStatus(baseUrl, instanceId)).durableObjectId);
}

/**
 * Whether the container dockerId of the instance named instanceId is still there: as the platform
 * claims (`containerRunning`), and as Docker shows it once up to timeoutMs have passed for it to go.
 * A container that is gone reads `{ platform: false, docker: false }`.
 */
export async function containerStillThere(
  baseUrl: string,
  instanceId: string,
  dockerId: string,
  timeoutMs = CONTAINER_GONE_WAIT_MS,
): Promise<{ platform: boolean; docker: boolean }> {
  const docker = await waitUntilContainerGone(dockerId, timeoutMs);
  return { platform: (await instanceStatus(baseUrl, instanceId)).containerRunning, docker };
}
