// Function management actions (CreateFunction, GetFunction, ListFunctions,
// UpdateFunctionConfiguration, UpdateFunctionCode, DeleteFunction): Tencent parameters translated
// to the function registry's inputs, and function rows translated to Tencent's function model.
import { z } from "zod";
import type { FunctionRow } from "../db/schema";
import {
  containerImages,
  IMAGE_PORT,
  IMAGE_RUNTIME,
  IMAGE_TYPES,
  type ImageInput,
  imageInputSchema,
  MAX_IMAGE_COMMAND_ITEMS,
  MAX_IMAGE_URI_CHARS,
  MAX_TENCENT_ARGS_CHARS,
  MAX_TENCENT_COMMAND_CHARS,
  resolveImageName,
  splitWords,
  storedImageFrom,
} from "../functions/images";
import { codeSchema, createFunctionSchema, updateConfigurationSchema } from "../functions/model";
import { FunctionRegistry } from "../functions/registry";
import { describeIssues } from "../shared/validation";
import { codeBucketAccess } from "../triggers/code-buckets";
import { tcTime } from "./envelope";
import { type Action, functionNameParam, namespaceOf, namespaceParam, parseParams, TcApiError } from "./params";
import { functionTriggers } from "./trigger-actions";
import { qualifiedFunction, qualifierParam } from "./version-actions";

/** Tencent field name of each domain field, for InvalidParameterValue.<Field> codes. */
const TENCENT_FIELD: Record<string, string> = {
  name: "FunctionName",
  runtime: "Runtime",
  handler: "Handler",
  code: "Code",
  timeout: "Timeout",
  memorySize: "MemorySize",
  environment: "Environment",
  description: "Description",
  idempotencyWindowSeconds: "IdempotencyWindow",
  deadlineWarningSeconds: "DeadlineWarningSeconds",
};

/** Validates a domain input built from Tencent fields, naming the Tencent field on error. */
function parseDomain<Schema extends z.ZodType>(schema: Schema, value: unknown): z.infer<Schema> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const field = parsed.error.issues[0]?.path[0];
  const tencent = typeof field === "string" ? TENCENT_FIELD[field] : undefined;
  throw new TcApiError(`InvalidParameterValue${tencent ? `.${tencent}` : ""}`, describeIssues(parsed.error));
}

/** Tencent's `Environment` parameter: a list of Key/Value variables. */
const environmentParam = z.object({
  Variables: z.array(z.object({ Key: z.string(), Value: z.string() })).optional(),
});

/** The variables of an `Environment` parameter as a record, or undefined when none were given. */
function environmentOf(value: z.infer<typeof environmentParam> | undefined): Record<string, string> | undefined {
  if (!value?.Variables) return undefined;
  return Object.fromEntries(value.Variables.map((variable) => [variable.Key, variable.Value]));
}

/**
 * SCF's code location fields (Code.ZipFile, or Code.CosBucketName and Code.CosObjectName: an R2
 * object of a bucket the namespace owns; CosBucketRegion is accepted and ignored, R2 has one region).
 */
const codeParam = z.object({
  ZipFile: z.string().optional(),
  CosBucketName: z.string().optional(),
  CosObjectName: z.string().optional(),
  CosBucketRegion: z.string().max(64).optional(),
  // SCF's image deployment (checked field by field by imageConfigOf, for its own error codes).
  ImageConfig: z.unknown().optional(),
});

/** An ImageConfig field's refusal: InvalidParameterValue.<Field>. */
function imageFieldError(field: string, message: string): TcApiError {
  return new TcApiError(`InvalidParameterValue.${field}`, `ImageConfig.${field}: ${message}`);
}

/** An optional ImageConfig text field, at most `max` characters. */
function imageText(config: Record<string, unknown>, field: string, max: number): string | undefined {
  const value = config[field];
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw imageFieldError(field, "must be a string");
  if (value.length > max) throw imageFieldError(field, `at most ${max} characters`);
  if (value.includes("\u0000")) throw imageFieldError(field, "no NUL character");
  return value;
}

/**
 * SCF's Code.ImageConfig read into the domain's image input, each field refused with its own code
 * (InvalidParameterValue.ImageType, .ImageUri, .Command, .Args, .ImagePort, .RegistryId, ...);
 * the namespace check of the ImageUri is made here too, so it reads as .ImageUri.
 */
function imageConfigOf(env: Env, namespace: string, raw: unknown): ImageInput {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new TcApiError("InvalidParameterValue.ImageConfig", "ImageConfig must be an object");
  }
  const config = raw as Record<string, unknown>;
  const type = config.ImageType;
  if (typeof type !== "string" || !(IMAGE_TYPES as readonly string[]).includes(type)) {
    throw imageFieldError("ImageType", `required, ${IMAGE_TYPES.join(" or ")}`);
  }
  const uri = imageText(config, "ImageUri", MAX_IMAGE_URI_CHARS);
  if (uri === undefined || uri === "") throw imageFieldError("ImageUri", "required");
  const command = imageText(config, "Command", MAX_TENCENT_COMMAND_CHARS);
  const args = imageText(config, "Args", MAX_TENCENT_ARGS_CHARS);
  const commandItems = command !== undefined ? splitWords(command) : [];
  const argItems = args !== undefined ? splitWords(args) : [];
  if (commandItems.length + argItems.length > MAX_IMAGE_COMMAND_ITEMS) {
    throw imageFieldError("Args", `Command and Args together at most ${MAX_IMAGE_COMMAND_ITEMS} words`);
  }
  if (config.ImagePort !== undefined && config.ImagePort !== IMAGE_PORT) {
    throw imageFieldError("ImagePort", `only ${IMAGE_PORT} is supported (an event function's HTTP server)`);
  }
  const accelerate = config.ContainerImageAccelerate;
  if (accelerate !== undefined && typeof accelerate !== "boolean") {
    throw imageFieldError("ContainerImageAccelerate", "must be a boolean");
  }
  const registryId = imageText(config, "RegistryId", 128);
  const entryPoint = imageText(config, "EntryPoint", 1024);
  const parsed = imageInputSchema.safeParse({
    uri,
    type,
    ...(commandItems.length > 0 ? { command: commandItems } : {}),
    ...(argItems.length > 0 ? { args: argItems } : {}),
    ...(registryId !== undefined ? { registryId } : {}),
    ...(accelerate !== undefined ? { containerImageAccelerate: accelerate } : {}),
    ...(entryPoint !== undefined ? { entryPoint } : {}),
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path[0] === "uri" ? "ImageUri" : issue?.path[0] === "args" ? "Args" : "Command";
    throw imageFieldError(field, describeIssues(parsed.error));
  }
  const resolved = resolveImageName(containerImages(env), namespace, uri);
  if ("problem" in resolved) throw imageFieldError("ImageUri", resolved.problem);
  return parsed.data;
}

/** True when a Code parameter gives a package (ZipFile or Cos*). */
function hasPackage(code: z.infer<typeof codeParam>): boolean {
  return code.ZipFile !== undefined || code.CosBucketName !== undefined || code.CosObjectName !== undefined;
}

/** The domain's code input of SCF's code fields (checked by codeSchema afterwards). */
function codeOf(code: z.infer<typeof codeParam>): Record<string, string> {
  return {
    ...(code.ZipFile !== undefined ? { zipFile: code.ZipFile } : {}),
    ...(code.CosBucketName !== undefined ? { bucket: code.CosBucketName } : {}),
    ...(code.CosObjectName !== undefined ? { key: code.CosObjectName.replace(/^\//, "") } : {}),
  };
}

/** Tencent's "TRUE"/"FALSE" strings as a boolean. */
const booleanString = z.enum(["TRUE", "FALSE"]).transform((value) => value === "TRUE");

/** An image function's image in SCF's model (ImageConfig). */
function imageConfigFields(column: string | null | undefined) {
  const image = storedImageFrom(column);
  if (!image) return {};
  return {
    ImageConfig: {
      ImageType: image.type,
      ImageUri: image.uri,
      ...(image.registryId !== undefined ? { RegistryId: image.registryId } : {}),
      ...(image.command !== undefined ? { Command: image.command.join(" ") } : {}),
      ...(image.args !== undefined ? { Args: image.args.join(" ") } : {}),
      ...(image.entryPoint !== undefined ? { EntryPoint: image.entryPoint } : {}),
      ContainerImageAccelerate: image.containerImageAccelerate ?? false,
      ImagePort: IMAGE_PORT,
    },
  };
}

/** A stored function in Tencent's function model (GetFunction, ListFunctions). */
function functionFields(row: FunctionRow) {
  const environment = JSON.parse(row.environment) as Record<string, string>;
  return {
    ...imageConfigFields(row.imageConfig),
    FunctionName: row.name,
    Namespace: row.namespace,
    Runtime: row.runtime,
    Handler: row.handler,
    CodeSize: row.codeSize,
    Description: row.description,
    MemorySize: row.memoryMb,
    Timeout: row.timeoutSeconds,
    Environment: { Variables: Object.entries(environment).map(([Key, Value]) => ({ Key, Value })) },
    AsyncRunEnable: row.asyncRunEnable ? "TRUE" : "FALSE",
    IdempotencyWindow: row.idempotencyWindowSeconds,
    DeadlineWarningSeconds: row.deadlineWarningSeconds ?? 0,
    Status: "Active",
    FunctionVersion: "$LATEST",
    Qualifier: "$LATEST",
    Type: "Event",
    AddTime: tcTime(row.createdAt),
    ModTime: tcTime(row.updatedAt),
  };
}

/** CreateFunction: stores a new function from a base64 zip (Code.ZipFile) or an R2 object (Code.CosBucketName/CosObjectName). */
export const createFunction: Action = async ({ env, principal, params }) => {
  const p = parseParams(
    z.object({
      FunctionName: functionNameParam,
      Code: codeParam,
      Handler: z.string().optional(),
      Description: z.string().optional(),
      MemorySize: z.number().optional(),
      Timeout: z.number().optional(),
      Environment: environmentParam.optional(),
      // Required with a code package; with Code.ImageConfig absent or CustomImage (implied).
      Runtime: z.string().optional(),
      Namespace: namespaceParam.optional(),
      AsyncRunEnable: booleanString.optional(),
      // This platform's extension: the function's idempotency window, seconds (idempotencyWindowSeconds).
      IdempotencyWindow: z.number().optional(),
      // This platform's extension: SIGTERM this many seconds before the timeout (0: off).
      DeadlineWarningSeconds: z.number().optional(),
    }),
    params,
  );
  const namespace = namespaceOf(principal, p.Namespace);
  const environment = environmentOf(p.Environment);
  const image = p.Code.ImageConfig !== undefined ? imageConfigOf(env, namespace, p.Code.ImageConfig) : undefined;
  if (image && hasPackage(p.Code)) {
    throw new TcApiError(
      "InvalidParameterValue.Code",
      "Code: give ImageConfig or a code package (ZipFile, Cos*), not both",
    );
  }
  if (!image && p.Runtime === undefined) throw new TcApiError("MissingParameter", "Runtime is required");
  if (image && p.Runtime !== undefined && p.Runtime !== IMAGE_RUNTIME) {
    throw new TcApiError(
      "InvalidParameterValue.Runtime",
      `Runtime: ${IMAGE_RUNTIME} (or absent) with Code.ImageConfig`,
    );
  }
  const input = parseDomain(createFunctionSchema, {
    name: p.FunctionName,
    ...(p.Runtime !== undefined ? { runtime: p.Runtime } : {}),
    ...(image ? { image } : { code: codeOf(p.Code) }),
    ...(p.Handler !== undefined ? { handler: p.Handler } : {}),
    ...(p.Description !== undefined ? { description: p.Description } : {}),
    ...(p.MemorySize !== undefined ? { memorySize: p.MemorySize } : {}),
    ...(p.Timeout !== undefined ? { timeout: p.Timeout } : {}),
    ...(environment !== undefined ? { environment } : {}),
    ...(p.AsyncRunEnable !== undefined ? { asyncRunEnable: p.AsyncRunEnable } : {}),
    ...(p.IdempotencyWindow !== undefined ? { idempotencyWindowSeconds: p.IdempotencyWindow } : {}),
    ...(p.DeadlineWarningSeconds !== undefined ? { deadlineWarningSeconds: p.DeadlineWarningSeconds } : {}),
  });
  await new FunctionRegistry(env, codeBucketAccess(env)).create(namespace, input);
  return {};
};

/**
 * GetFunction: one function's configuration; with `Qualifier`, that version's (`$LATEST`, a version
 * number, or an alias: its main version).
 */
export const getFunction: Action = async ({ env, principal, params, requestUrl }) => {
  const p = parseParams(
    z.object({
      FunctionName: functionNameParam,
      Namespace: namespaceParam.optional(),
      Qualifier: qualifierParam.optional(),
    }),
    params,
  );
  const namespace = namespaceOf(principal, p.Namespace);
  const version = await qualifiedFunction(env, namespace, p.FunctionName, p.Qualifier);
  return {
    ...functionFields(version.row),
    FunctionVersion: version.version,
    Qualifier: version.version,
    Triggers: await functionTriggers(env, namespace, p.FunctionName, requestUrl, p.Qualifier),
  };
};

/** ListFunctions: a page of a namespace's functions and their total count. */
export const listFunctions: Action = async ({ env, principal, params }) => {
  const p = parseParams(
    z.object({
      Namespace: namespaceParam.optional(),
      Offset: z.number().int().min(0).default(0),
      Limit: z.number().int().min(1).max(100).default(20),
    }),
    params,
  );
  const page = await new FunctionRegistry(env).list(namespaceOf(principal, p.Namespace), p.Offset, p.Limit);
  return { Functions: page.functions.map(functionFields), TotalCount: page.total };
};

/** UpdateFunctionConfiguration: changes a function's settings (never AsyncRunEnable). */
export const updateFunctionConfiguration: Action = async ({ env, principal, params }) => {
  if ("AsyncRunEnable" in params) {
    throw new TcApiError(
      "InvalidParameterValue.AsyncRunEnable",
      "AsyncRunEnable is chosen when the function is created and cannot be changed",
    );
  }
  const p = parseParams(
    z.object({
      FunctionName: functionNameParam,
      Namespace: namespaceParam.optional(),
      Description: z.string().optional(),
      MemorySize: z.number().optional(),
      Timeout: z.number().optional(),
      Runtime: z.string().optional(),
      Environment: environmentParam.optional(),
      // This platform's extension: the function's idempotency window, seconds (idempotencyWindowSeconds).
      IdempotencyWindow: z.number().optional(),
      // This platform's extension: SIGTERM this many seconds before the timeout (0: off).
      DeadlineWarningSeconds: z.number().optional(),
    }),
    params,
  );
  const environment = environmentOf(p.Environment);
  const input = parseDomain(updateConfigurationSchema, {
    ...(p.Description !== undefined ? { description: p.Description } : {}),
    ...(p.MemorySize !== undefined ? { memorySize: p.MemorySize } : {}),
    ...(p.Timeout !== undefined ? { timeout: p.Timeout } : {}),
    ...(p.Runtime !== undefined ? { runtime: p.Runtime } : {}),
    ...(environment !== undefined ? { environment } : {}),
    ...(p.IdempotencyWindow !== undefined ? { idempotencyWindowSeconds: p.IdempotencyWindow } : {}),
    ...(p.DeadlineWarningSeconds !== undefined ? { deadlineWarningSeconds: p.DeadlineWarningSeconds } : {}),
  });
  await new FunctionRegistry(env).updateConfiguration(namespaceOf(principal, p.Namespace), p.FunctionName, input);
  return {};
};

/**
 * UpdateFunctionCode: replaces a function's code (ZipFile, or CosBucketName and CosObjectName; at
 * the top level or in Code; or Code.ImageConfig: the function becomes an image function),
 * optionally its Handler. An image function given a package needs Runtime (this platform's
 * extension: SCF keeps the runtime, which for an image function is CustomImage).
 */
export const updateFunctionCode: Action = async ({ env, principal, params }) => {
  const p = parseParams(
    z.object({
      FunctionName: functionNameParam,
      Namespace: namespaceParam.optional(),
      Handler: z.string().optional(),
      Runtime: z.string().optional(),
      ...codeParam.shape,
      Code: codeParam.optional(),
    }),
    params,
  );
  // The top-level fields when any is given (as SCF documents them), else those of Code.
  const top = { ZipFile: p.ZipFile, CosBucketName: p.CosBucketName, CosObjectName: p.CosObjectName };
  const given = codeOf(Object.values(top).some((value) => value !== undefined) ? top : (p.Code ?? {}));
  const imageConfig = p.Code?.ImageConfig ?? p.ImageConfig;
  if (imageConfig !== undefined) {
    if (Object.keys(given).length > 0) {
      throw new TcApiError(
        "InvalidParameterValue.Code",
        "Code: give ImageConfig or a code package (ZipFile, Cos*), not both",
      );
    }
    if (p.Runtime !== undefined && p.Runtime !== IMAGE_RUNTIME) {
      throw new TcApiError(
        "InvalidParameterValue.Runtime",
        `Runtime: ${IMAGE_RUNTIME} (or absent) with Code.ImageConfig`,
      );
    }
    const namespace = namespaceOf(principal, p.Namespace);
    const image = imageConfigOf(env, namespace, imageConfig);
    const configuration =
      p.Handler !== undefined ? parseDomain(updateConfigurationSchema, { handler: p.Handler }) : undefined;
    const registry = new FunctionRegistry(env);
    await registry.updateCode(namespace, p.FunctionName, { image });
    if (configuration) await registry.updateConfiguration(namespace, p.FunctionName, configuration);
    return {};
  }
  if (Object.keys(given).length === 0) {
    throw new TcApiError(
      "MissingParameter",
      "ZipFile, or CosBucketName and CosObjectName (at the top level or in Code), is required",
    );
  }
  const namespace = namespaceOf(principal, p.Namespace);
  // Every input is validated before anything is stored: a bad Handler must not leave new code behind.
  const { code } = parseDomain(z.object({ code: codeSchema }), { code: given });
  const configuration =
    p.Handler !== undefined ? parseDomain(updateConfigurationSchema, { handler: p.Handler }) : undefined;
  const runtime =
    p.Runtime !== undefined ? parseDomain(updateConfigurationSchema, { runtime: p.Runtime }).runtime : undefined;
  if (runtime === IMAGE_RUNTIME) {
    throw new TcApiError("InvalidParameterValue.Runtime", `Runtime: ${IMAGE_RUNTIME} needs Code.ImageConfig`);
  }
  const registry = new FunctionRegistry(env, codeBucketAccess(env));
  await registry.updateCode(namespace, p.FunctionName, { ...code, ...(runtime !== undefined ? { runtime } : {}) });
  if (configuration) await registry.updateConfiguration(namespace, p.FunctionName, configuration);
  return {};
};

/** DeleteFunction: removes a function that has no running event (ResourceInUse.Function otherwise). */
export const deleteFunction: Action = async ({ env, principal, params }) => {
  const p = parseParams(z.object({ FunctionName: functionNameParam, Namespace: namespaceParam.optional() }), params);
  await new FunctionRegistry(env).delete(namespaceOf(principal, p.Namespace), p.FunctionName);
  return {};
};
