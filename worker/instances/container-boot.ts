import { hex } from "../shared/encoding";

/** Random bytes of the per-boot agent token (sent as 64 lower-case hex digits). */
export const AGENT_TOKEN_BYTES = 32;
/**
 * Processes and threads a function container may hold (the Docker pids cap applied locally from
 * the `afp.pids-limit` label, and RLIMIT_NPROC of the handler user inside the container).
 */
export const CONTAINER_PIDS_LIMIT = 512;
/** Label and variable names of the hand-off to the engine and the container. */
export const MEMORY_LABEL = "afp.memory-mb";
export const PIDS_LABEL = "afp.pids-limit";

/**
 * What this object knows about the container it started: the agent's token (nobody else has it)
 * and the memory size it was started for. Persisted, so that a restarted object still talks to
 * the live container; every start replaces it.
 */
export interface ContainerBoot {
  token: string;
  memoryMb: number;
}

/** A fresh boot: a new random token for a container started for memoryMb. */
export function newContainerBoot(memoryMb: number): ContainerBoot {
  return { token: hex(crypto.getRandomValues(new Uint8Array(AGENT_TOKEN_BYTES))), memoryMb };
}

/**
 * The start options handing a boot to the container: the token, the memory and process caps, and
 * whether the agent must see those caps in its cgroup before running a handler (env var
 * CONTAINER_LIMITS_REQUIRED: "true" locally, where scripts/container-guard.mjs applies them).
 */
export function containerStartOptions(
  boot: ContainerBoot,
  env: Pick<Env, "CONTAINER_LIMITS_REQUIRED">,
): ContainerStartupOptions {
  const memory = String(boot.memoryMb);
  const pids = String(CONTAINER_PIDS_LIMIT);
  const requireLimits = env.CONTAINER_LIMITS_REQUIRED === "true" ? "1" : "0";
  return {
    enableInternet: true,
    env: {
      AFP_AGENT_TOKEN: boot.token,
      AFP_MEMORY_MB: memory,
      AFP_PIDS_LIMIT: pids,
      AFP_REQUIRE_CGROUP_LIMITS: requireLimits,
    },
    labels: { [MEMORY_LABEL]: memory, [PIDS_LABEL]: pids },
  };
}

/** True when a stored value is a boot this code wrote (a restarted object reads it back). */
export function isContainerBoot(value: unknown): value is ContainerBoot {
  if (typeof value !== "object" || value === null) return false;
  const boot = value as Record<string, unknown>;
  return typeof boot.token === "string" && typeof boot.memoryMb === "number";
}
