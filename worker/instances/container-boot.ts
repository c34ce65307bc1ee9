import { hex } from "../shared/encoding";
import type { SizeInstanceType } from "../shared/objects";

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
  /**
   * An image container's image (a registered image's name, wrangler.toml [containers.images]) and
   * Cloudflare instance type; absent for a code container (its class has one image and one type).
   */
  image?: ImageBoot;
}

/** The image and instance type an image container is started with (the image class picks both per start). */
export interface ImageBoot {
  name: string;
  instanceType: SizeInstanceType;
}

/** What a container is started for: the memory size and, in the image class, the image and type. */
export interface ContainerShape {
  memoryMb: number;
  image?: ImageBoot;
}

/** A fresh boot: a new random token for a container started for a shape. */
export function newContainerBoot(shape: ContainerShape): ContainerBoot {
  return {
    token: hex(crypto.getRandomValues(new Uint8Array(AGENT_TOKEN_BYTES))),
    memoryMb: shape.memoryMb,
    ...(shape.image ? { image: { name: shape.image.name, instanceType: shape.image.instanceType } } : {}),
  };
}

/** True when a boot was started for exactly this shape (memory, image and instance type). */
export function bootFits(boot: ContainerBoot | undefined, shape: ContainerShape): boolean {
  if (boot?.memoryMb !== shape.memoryMb) return false;
  return boot.image?.name === shape.image?.name && boot.image?.instanceType === shape.image?.instanceType;
}

/** Why an image container cannot start: the deployment has no such image (never retried). */
export class ImageNotDeployedError extends Error {}

/**
 * The start options of an image boot's image and type: `image` from the deployment's images
 * (ctx.container.images); a name it lacks throws ImageNotDeployedError naming the remedy.
 */
export function imageStartOptions(
  image: ImageBoot,
  images: Record<string, string> | undefined,
): ContainerStartupOptions {
  const reference = images && Object.hasOwn(images, image.name) ? images[image.name] : undefined;
  if (reference === undefined) {
    throw new ImageNotDeployedError(
      `image "${image.name}" is not in this deployment (wrangler.toml [containers.images.${image.name}]; register it with npm run image:add -- ${image.name} and deploy)`,
    );
  }
  return { image: reference, instance: image.instanceType };
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
  const image = boot.image as Record<string, unknown> | undefined;
  const imageFits =
    image === undefined ||
    (typeof image === "object" &&
      image !== null &&
      typeof image.name === "string" &&
      typeof image.instanceType === "string");
  return typeof boot.token === "string" && typeof boot.memoryMb === "number" && imageFits;
}
