import { InstanceContainer } from "./instance-container";

/**
 * The container classes of the larger compute sizes (wrangler.toml [[containers]], CONTAINER_SIZES):
 * the same instance, another Durable Object class, so that Cloudflare gives its containers another
 * instance type. Which class a slot's instance lives in is part of its slot number (see
 * INSTANCE_CLASSES in shared/objects.ts); the basic size is InstanceContainer itself.
 */
export class InstanceContainerStandard extends InstanceContainer {}

/** The standard-2 compute size (see InstanceContainerStandard). */
export class InstanceContainerLarge extends InstanceContainer {}

/**
 * The lite compute size (1/16 vCPU, 256 MiB, 2 GB of disk; see InstanceContainerStandard): used only
 * when CONTAINER_SIZES names it, for functions of at most 128 MB (the agent takes the other 128).
 */
export class InstanceContainerLite extends InstanceContainer {}

/**
 * The container class of image functions (wrangler.toml: `scheduling_policy = "durable_object"`,
 * one `[containers.images.<name>]` per registered image): the same instance, which picks the image
 * (`ctx.container.images[name]`) and the instance type (from memorySize) at each start.
 */
export class ImageContainer extends InstanceContainer {}
