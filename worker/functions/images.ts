// Image functions (SCF "image deployment", Code.ImageConfig): the images registered for this
// deployment (the var CONTAINER_IMAGES, written by `npm run image:add`), how an ImageUri names one
// of them, the bounds of an image configuration, and the canonical form a function stores.
// Pure: the registry, the Tencent actions and the REST routes all use it.
import { z } from "zod";
import {
  IMAGE_NAME_PATTERN,
  IMAGE_RUNTIME,
  MAX_IMAGE_COMMAND_ITEM_CHARS,
  MAX_IMAGE_COMMAND_ITEMS,
} from "../contract/execution-spec";
import { NAMESPACE_PATTERN } from "../shared/names";

export { IMAGE_RUNTIME, MAX_IMAGE_COMMAND_ITEM_CHARS, MAX_IMAGE_COMMAND_ITEMS };

/** Longest ImageUri (`{domain}/{namespace}/{imageName}:{tag}@{digest}`), in characters. */
export const MAX_IMAGE_URI_CHARS = 512;
/** An ImageUri's characters: a registry reference (host, path, tag, digest), no spaces or controls. */
const IMAGE_URI_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:@/+-]*$/;
/** Longest Tencent `Command` (the program, e.g. `python`), in characters. */
export const MAX_TENCENT_COMMAND_CHARS = 256;
/** Longest Tencent `Args` (space-separated arguments, e.g. `-u app.py`), in characters. */
export const MAX_TENCENT_ARGS_CHARS = 1024;
/** Longest RegistryId (a TCR instance id, accepted and shown, unused here), in characters. */
export const MAX_REGISTRY_ID_CHARS = 128;
/** Longest EntryPoint (retired by SCF; accepted and shown, unused), in characters. */
export const MAX_ENTRY_POINT_CHARS = 1024;
/** Longest CONTAINER_IMAGES text read; longer is ignored whole (logged). */
export const MAX_CONTAINER_IMAGES_CHARS = 16 * 1024;
/** The only ImagePort served: the image's HTTP server on 9000 (SCF's event functions). */
export const IMAGE_PORT = 9000;
/** The registry types SCF knows (TCR personal or enterprise); both read the same here. */
export const IMAGE_TYPES = ["personal", "enterprise"] as const;

/** One item of an image's command or arguments. */
const commandItemSchema = z
  .string()
  .max(MAX_IMAGE_COMMAND_ITEM_CHARS, `image command items: at most ${MAX_IMAGE_COMMAND_ITEM_CHARS} characters each`)
  .refine((item) => !item.includes("\u0000"), "image command items: no NUL character");

/**
 * An image function's image as a request gives it (REST `image`, Tencent Code.ImageConfig):
 * `uri` names a registered image by its last path segment's repository name (tag and digest are
 * kept, not checked); `command` replaces the image's ENTRYPOINT (and CMD), `args` its CMD.
 */
export const imageInputSchema = z
  .strictObject({
    uri: z
      .string()
      .min(1, "image.uri is required")
      .max(MAX_IMAGE_URI_CHARS, `image.uri: at most ${MAX_IMAGE_URI_CHARS} characters`)
      .regex(IMAGE_URI_PATTERN, "image.uri: a registry reference such as ccr.ccs.tencentyun.com/ns/flask-sample:v1"),
    command: z
      .array(commandItemSchema)
      .min(1, "image.command: the program and its arguments (at least the program)")
      .max(MAX_IMAGE_COMMAND_ITEMS, `image.command: at most ${MAX_IMAGE_COMMAND_ITEMS} items`)
      .refine((command) => command[0] !== "", "image.command: the program must not be empty")
      .optional(),
    args: z
      .array(commandItemSchema)
      .max(MAX_IMAGE_COMMAND_ITEMS, `image.args: at most ${MAX_IMAGE_COMMAND_ITEMS} items`)
      .optional(),
    type: z.enum(IMAGE_TYPES, { message: "image.type: personal or enterprise" }).optional(),
    registryId: z
      .string()
      .max(MAX_REGISTRY_ID_CHARS, `image.registryId: at most ${MAX_REGISTRY_ID_CHARS} characters`)
      .optional(),
    containerImageAccelerate: z.boolean().optional(),
    entryPoint: z
      .string()
      .max(MAX_ENTRY_POINT_CHARS, `image.entryPoint: at most ${MAX_ENTRY_POINT_CHARS} characters`)
      .optional(),
  })
  .refine(
    (image) => (image.command?.length ?? 0) + (image.args?.length ?? 0) <= MAX_IMAGE_COMMAND_ITEMS,
    `image: command and args together at most ${MAX_IMAGE_COMMAND_ITEMS} items`,
  );
/** An image as a request gives it. */
export type ImageInput = z.infer<typeof imageInputSchema>;

/** An image function's image as stored (functions.image_config, canonical JSON) and shown. */
export interface StoredImage {
  /** The registered image's name (wrangler.toml [containers.images.<name>]). */
  name: string;
  uri: string;
  type: (typeof IMAGE_TYPES)[number];
  command?: string[];
  args?: string[];
  registryId?: string;
  containerImageAccelerate?: boolean;
  entryPoint?: string;
}

/** The registered images and who may use them: name → its namespaces, or "*" for every one. */
export type ContainerImages = Map<string, Set<string> | "*">;

/**
 * Reads CONTAINER_IMAGES (`<name>=<ns>[|<ns>…][,<name2>=*]`). An entry that is malformed (a bad
 * name or namespace) is skipped and named in `problems`; the rest hold.
 */
export function parseContainerImages(text: string | undefined): { images: ContainerImages; problems: string[] } {
  const images: ContainerImages = new Map();
  const problems: string[] = [];
  if (text === undefined || text.trim() === "") return { images, problems };
  if (text.length > MAX_CONTAINER_IMAGES_CHARS) {
    return { images, problems: [`longer than ${MAX_CONTAINER_IMAGES_CHARS} characters`] };
  }
  for (const raw of text.split(",")) {
    const entry = raw.trim();
    if (entry === "") continue;
    const equals = entry.indexOf("=");
    const name = equals < 0 ? entry : entry.slice(0, equals).trim();
    const scope = equals < 0 ? "" : entry.slice(equals + 1).trim();
    if (!IMAGE_NAME_PATTERN.test(name) || name === "runtime") {
      problems.push(`"${entry.slice(0, 80)}": not <image name>=<namespaces>`);
      continue;
    }
    if (scope === "*") {
      images.set(name, "*");
      continue;
    }
    const namespaces = scope.split("|").map((namespace) => namespace.trim());
    if (namespaces.length === 0 || namespaces.some((namespace) => !NAMESPACE_PATTERN.test(namespace))) {
      problems.push(`"${entry.slice(0, 80)}": namespaces must be * or namespace names separated by |`);
      continue;
    }
    const known = images.get(name);
    if (known === "*") continue;
    images.set(name, new Set([...(known ?? []), ...namespaces]));
  }
  return { images, problems };
}

/** The last CONTAINER_IMAGES text read in this isolate and its reading (logged once per text). */
let lastRead: { text: string | undefined; images: ContainerImages } | undefined;

/** The registered images in force (env CONTAINER_IMAGES); malformed entries are logged once and skipped. */
export function containerImages(env: { CONTAINER_IMAGES?: string }): ContainerImages {
  const text = env.CONTAINER_IMAGES;
  if (lastRead !== undefined && lastRead.text === text) return lastRead.images;
  const reading = parseContainerImages(text);
  if (reading.problems.length > 0) console.warn(`CONTAINER_IMAGES: skipped ${reading.problems.join("; ")}`);
  lastRead = { text, images: reading.images };
  return reading.images;
}

/** The names of the images a namespace may use, sorted. */
export function imagesOpenTo(images: ContainerImages, namespace: string): string[] {
  return [...images.entries()]
    .filter(([, scope]) => scope === "*" || scope.has(namespace))
    .map(([name]) => name)
    .sort();
}

/**
 * The repository name an ImageUri ends with: its last path segment without tag or digest
 * (`ccr.ccs.tencentyun.com/ns/flask-sample:v1@sha256:…` → `flask-sample`).
 */
export function imageNameOfUri(uri: string): string {
  const withoutDigest = uri.split("@")[0] ?? "";
  const last = withoutDigest.slice(withoutDigest.lastIndexOf("/") + 1);
  const colon = last.indexOf(":");
  return colon < 0 ? last : last.slice(0, colon);
}

/**
 * Why an ImageUri cannot be used by a namespace, or undefined (with the name) when it can: an image
 * registered for other namespaces only reads exactly like one that is not registered at all.
 */
export function resolveImageName(
  images: ContainerImages,
  namespace: string,
  uri: string,
): { name: string } | { problem: string } {
  const name = imageNameOfUri(uri);
  const open = imagesOpenTo(images, namespace);
  if (open.includes(name)) return { name };
  const listed = open.length > 0 ? open.join(", ") : "none (register one with npm run image:add)";
  return {
    problem: `image.uri: image ${JSON.stringify(name.slice(0, 64))} is not registered for this namespace; registered: ${listed}`,
  };
}

/** The stored form of a checked image input of a registered image: fixed key order, absent fields left out. */
export function storedImageOf(name: string, input: ImageInput): StoredImage {
  return {
    name,
    uri: input.uri,
    type: input.type ?? "personal",
    ...(input.command !== undefined ? { command: input.command } : {}),
    ...(input.args !== undefined ? { args: input.args } : {}),
    ...(input.registryId !== undefined ? { registryId: input.registryId } : {}),
    ...(input.containerImageAccelerate !== undefined
      ? { containerImageAccelerate: input.containerImageAccelerate }
      : {}),
    ...(input.entryPoint !== undefined ? { entryPoint: input.entryPoint } : {}),
  };
}

/** The column text of a stored image (canonical JSON: the same image, the same text). */
export function imageColumn(image: StoredImage): string {
  return JSON.stringify(image);
}

/** A stored image column read back (undefined for a code function's null). */
export function storedImageFrom(column: string | null | undefined): StoredImage | undefined {
  return column ? (JSON.parse(column) as StoredImage) : undefined;
}

/**
 * What the agent is told to start (the contract's image spec `image`): `command` = Command + Args
 * (replacing ENTRYPOINT and CMD), else `args` alone (replacing CMD), else the image's own.
 */
export function specImageOf(image: StoredImage): { name: string; command?: string[]; args?: string[] } {
  if (image.command && image.command.length > 0) {
    return { name: image.name, command: [...image.command, ...(image.args ?? [])] };
  }
  if (image.args && image.args.length > 0) return { name: image.name, args: image.args };
  return { name: image.name };
}

/** Tencent's space-separated `Command`/`Args` text as a list of items (runs of whitespace split). */
export function splitWords(text: string): string[] {
  return text.split(/\s+/).filter((word) => word !== "");
}
