import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../../auth/credentials";
import { deleteFunctionArchives } from "../../events/event-archive";
import { MAX_OBJECT_CODE_PACKAGE_BYTES } from "../../functions/code-from-object";
import {
  IMAGE_RUNTIME,
  MAX_IMAGE_COMMAND_ITEM_CHARS,
  MAX_IMAGE_COMMAND_ITEMS,
  MAX_IMAGE_URI_CHARS,
} from "../../functions/images";
import {
  codeUpdateSchema,
  createFunctionSchema,
  listFunctionsQuerySchema,
  publicFunction,
  RUNTIMES,
  updateConfigurationSchema,
} from "../../functions/model";
import { FunctionRegistry } from "../../functions/registry";
import { DISPATCH_FIELDS_TIMEOUT_MS, functionDispatchFields } from "../../scheduling/dispatch-pause";
import { functionNameSchema, namespaceSchema } from "../../shared/names";
import { MAX_JSON_BODY_BYTES, readJson } from "../../shared/validation";
import { codeBucketAccess } from "../../triggers/code-buckets";
import {
  COMMON_ERROR_STATUSES,
  documentedJsonBody,
  errorResponses,
  jsonResponse,
  pathFirst,
  queryOf,
  refuseInvalid,
} from "../openapi";

/** Largest body of a configuration update. */
const MAX_CONFIGURATION_BODY_BYTES = 1024 * 1024;

/** Path of the functions of a namespace. */
const namespaceParams = z.object({ namespace: namespaceSchema });
/** Path of one function. */
const functionParams = z.object({ namespace: namespaceSchema, name: functionNameSchema });

/** One kind's result destinations as a function shows them: never the webhook secret. */
const publicDestinationSchema = z.object({
  webhook: z
    .object({
      url: z.string(),
      secret: z.literal("***").openapi({ description: "The secret is never shown" }),
      hasSecret: z.literal(true),
    })
    .optional(),
  queue: z.string().optional(),
});

/** A function as the REST API shows it (functions/model.ts publicFunction). */
const functionSchema = z
  .object({
    namespace: z.string(),
    name: z.string(),
    runtime: z.string().openapi({ examples: [...RUNTIMES] }),
    handler: z.string(),
    codeSha256: z.string(),
    codeSize: z.number().int(),
    timeout: z.number().int().openapi({ description: "seconds" }),
    memorySize: z.number().int().openapi({ description: "MB" }),
    environment: z.record(z.string(), z.string()),
    description: z.string(),
    asyncRunEnable: z.boolean(),
    maxConcurrency: z.number().int(),
    qpsLimit: z.number().int(),
    idempotencyWindowSeconds: z
      .number()
      .int()
      .openapi({ description: "How long an invocation's Idempotency-Key holds, in seconds (1-259200)" }),
    logLimitMb: z.number().int().openapi({
      description:
        "Log output one execution keeps, in MiB of UTF-8 (1-3072; default 1024, or 512 for a memorySize that runs on lite); past it lines are counted and dropped with a [PLATFORM] marker",
    }),
    deadlineWarningSeconds: z.number().int().openapi({
      description:
        "The deadline warning: the handler gets SIGTERM this many seconds before the timeout (a [PLATFORM] line logs it) and runs on until it returns or the timeout ends it; 0 (default) is off, else less than the timeout",
    }),
    destinations: z
      .object({
        onSuccess: publicDestinationSchema.optional(),
        onFailure: publicDestinationSchema.optional(),
        onTerminate: publicDestinationSchema.optional(),
      })
      .openapi({
        description:
          "Where each ended event's end record is delivered: onSuccess (FINISHED), onFailure (FAILED), onTerminate (ABORTED); a webhook (signed POST) and/or a queue (the binding DESTINATION_QUEUE_<queue>). See GET /v1/events/{requestId}/deliveries.",
      }),
    image: z
      .object({
        name: z.string().openapi({ description: "The registered image (wrangler.toml [containers.images.<name>])" }),
        uri: z.string(),
        type: z.enum(["personal", "enterprise"]),
        command: z.array(z.string()).optional(),
        args: z.array(z.string()).optional(),
        registryId: z.string().optional(),
        containerImageAccelerate: z.boolean().optional(),
        entryPoint: z.string().optional(),
      })
      .nullable()
      .openapi({
        description: `An image function's image (runtime ${IMAGE_RUNTIME}; codeSha256 is the SHA-256 of its canonical JSON, codeSize 0); null for a code function`,
      }),
    createdAt: z.string().openapi({ format: "date-time" }),
    updatedAt: z.string().openapi({ format: "date-time" }),
    dispatchPaused: z
      .boolean()
      .nullable()
      .optional()
      .openapi({
        description: `GET of one function only: true while its dispatch is paused (POST .../dispatch/pause): accepted events stay queued; null (and pausedAt null) when its scheduler does not answer within ${DISPATCH_FIELDS_TIMEOUT_MS} ms: unknown`,
      }),
    pausedAt: z.string().nullable().optional().openapi({
      format: "date-time",
      description: "GET of one function only: when its dispatch was paused; null while it runs, or when unknown",
    }),
  })
  .openapi("Function");

const TAG = "Functions";

const createFunction = createRoute({
  method: "post",
  path: "/v1/namespaces/{namespace}/functions",
  tags: [TAG],
  summary: "Create a function",
  description: `The body (at most ${MAX_JSON_BODY_BYTES} bytes) carries the code package as base64 of a zip (code.zipFile), or names an R2 object holding it (code.bucket and code.key: a bucket the namespace owns, an object of at most ${MAX_OBJECT_CODE_PACKAGE_BYTES} bytes), or instead of code names a registered image (image.uri, at most ${MAX_IMAGE_URI_CHARS} characters: its last path segment's repository name, e.g. ccr.ccs.tencentyun.com/ns/flask-sample:v1 → flask-sample, must be an image of CONTAINER_IMAGES open to the namespace; image.command and image.args: at most ${MAX_IMAGE_COMMAND_ITEMS} items together, each at most ${MAX_IMAGE_COMMAND_ITEM_CHARS} characters; runtime absent or ${IMAGE_RUNTIME}). Exactly one of code and image.`,
  middleware: [pathFirst(namespaceParams)],
  request: { params: namespaceParams, body: documentedJsonBody("CreateFunctionRequest", "The new function") },
  responses: {
    201: jsonResponse("The function, created", functionSchema),
    ...errorResponses(...COMMON_ERROR_STATUSES, 409, 413),
  },
});

const listFunctions = createRoute({
  method: "get",
  path: "/v1/namespaces/{namespace}/functions",
  tags: [TAG],
  summary: "List the functions of a namespace",
  middleware: [pathFirst(namespaceParams)],
  request: { params: namespaceParams, query: queryOf(listFunctionsQuerySchema) },
  responses: {
    200: jsonResponse(
      "One page of functions",
      z.object({ total: z.number().int(), functions: z.array(functionSchema) }),
    ),
    ...errorResponses(...COMMON_ERROR_STATUSES),
  },
});

const getFunction = createRoute({
  method: "get",
  path: "/v1/namespaces/{namespace}/functions/{name}",
  tags: [TAG],
  summary: "Get a function",
  middleware: [pathFirst(functionParams)],
  request: { params: functionParams },
  responses: { 200: jsonResponse("The function", functionSchema), ...errorResponses(...COMMON_ERROR_STATUSES) },
});

const updateConfiguration = createRoute({
  method: "patch",
  path: "/v1/namespaces/{namespace}/functions/{name}",
  tags: [TAG],
  summary: "Update a function's configuration",
  description: `The fields given are changed (body at most ${MAX_CONFIGURATION_BODY_BYTES} bytes); asyncRunEnable is fixed at creation.`,
  middleware: [pathFirst(functionParams)],
  request: { params: functionParams, body: documentedJsonBody("UpdateConfigurationRequest", "Fields to change") },
  responses: {
    200: jsonResponse("The function, updated", functionSchema),
    ...errorResponses(...COMMON_ERROR_STATUSES, 409, 413),
  },
});

const updateCode = createRoute({
  method: "put",
  path: "/v1/namespaces/{namespace}/functions/{name}/code",
  tags: [TAG],
  summary: "Replace a function's code package or image",
  description: `The body (at most ${MAX_JSON_BODY_BYTES} bytes) carries the zip as base64 (zipFile), or names an R2 object holding it (bucket and key: a bucket the namespace owns, an object of at most ${MAX_OBJECT_CODE_PACKAGE_BYTES} bytes), or gives image (as on create: the function becomes an image function, runtime ${IMAGE_RUNTIME}). An image function given a package needs runtime too (its code runtime).`,
  middleware: [pathFirst(functionParams)],
  request: { params: functionParams, body: documentedJsonBody("CodeRequest", "The new code package") },
  responses: {
    200: jsonResponse("The function, updated", functionSchema),
    ...errorResponses(...COMMON_ERROR_STATUSES, 409, 413),
  },
});

const deleteFunction = createRoute({
  method: "delete",
  path: "/v1/namespaces/{namespace}/functions/{name}",
  tags: [TAG],
  summary: "Delete a function",
  middleware: [pathFirst(functionParams)],
  request: { params: functionParams },
  responses: { 204: { description: "Deleted" }, ...errorResponses(...COMMON_ERROR_STATUSES, 409) },
});

/**
 * REST routes of the function registry under /v1/namespaces/:namespace/functions. Request bodies
 * are read with readJson (bounded while streaming) and validated with the same schemas the
 * document's request components are generated from.
 */
export const functionRoutes = new OpenAPIHono<AppEnv>({ defaultHook: refuseInvalid })
  .openapi(createFunction, async (c) => {
    const { namespace } = c.req.valid("param");
    const input = await readJson(c, createFunctionSchema);
    const row = await new FunctionRegistry(c.env, codeBucketAccess(c.env)).create(namespace, input);
    return c.json(publicFunction(row), 201);
  })
  .openapi(listFunctions, async (c) => {
    const { namespace } = c.req.valid("param");
    const query = c.req.valid("query");
    const page = await new FunctionRegistry(c.env).list(namespace, query.offset, query.limit, query.search);
    return c.json({ total: page.total, functions: page.functions.map(publicFunction) }, 200);
  })
  .openapi(getFunction, async (c) => {
    const { namespace, name } = c.req.valid("param");
    const row = await new FunctionRegistry(c.env).get(namespace, name);
    return c.json({ ...publicFunction(row), ...(await functionDispatchFields(c.env, namespace, name)) }, 200);
  })
  .openapi(updateConfiguration, async (c) => {
    const { namespace, name } = c.req.valid("param");
    const input = await readJson(c, updateConfigurationSchema, MAX_CONFIGURATION_BODY_BYTES);
    const row = await new FunctionRegistry(c.env).updateConfiguration(namespace, name, input);
    return c.json(publicFunction(row), 200);
  })
  .openapi(updateCode, async (c) => {
    const { namespace, name } = c.req.valid("param");
    const input = await readJson(c, codeUpdateSchema);
    const row = await new FunctionRegistry(c.env, codeBucketAccess(c.env)).updateCode(namespace, name, input);
    return c.json(publicFunction(row), 200);
  })
  .openapi(deleteFunction, async (c) => {
    const { namespace, name } = c.req.valid("param");
    await new FunctionRegistry(c.env).delete(namespace, name);
    // Its archives written until now go in the background (bounded; later ones are kept).
    const deletedAt = Date.now();
    c.executionCtx.waitUntil(
      deleteFunctionArchives(c.env.ARCHIVE_BUCKET, namespace, name, deletedAt).catch((error: unknown) =>
        console.warn("a deleted function's archives were not all deleted", namespace, name, String(error)),
      ),
    );
    return c.body(null, 204);
  });

functionRoutes.openAPIRegistry.register("CreateFunctionRequest", createFunctionSchema);
functionRoutes.openAPIRegistry.register("UpdateConfigurationRequest", updateConfigurationSchema);
functionRoutes.openAPIRegistry.register("CodeRequest", codeUpdateSchema);
