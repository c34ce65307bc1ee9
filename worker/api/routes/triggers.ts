import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../../auth/credentials";
import type { TriggerRow } from "../../db/schema";
import { functionNameSchema, namespaceSchema } from "../../shared/names";
import { readJson } from "../../shared/validation";
import { TRIGGER_TYPES } from "../../triggers/model";
import {
  isTriggerQualifier,
  MAX_CUSTOM_ARGUMENT_BYTES,
  MAX_TRIGGER_DESC_CHARS,
  MAX_TRIGGER_DESCRIPTION_CHARS,
  MAX_TRIGGER_FILTER_VALUES,
  MAX_TRIGGERS_LISTED,
  MAX_TRIGGERS_PER_FUNCTION,
  TRIGGER_NAME_PATTERN,
  TRIGGER_NAME_RULE,
  TRIGGER_QUALIFIER_RULE,
  TriggerRegistry,
} from "../../triggers/registry";
import { triggerUrlOf } from "../../triggers/types";
import {
  COMMON_ERROR_STATUSES,
  documentedJsonBody,
  errorResponses,
  jsonResponse,
  pathFirst,
  queryOf,
  refuseInvalid,
} from "../openapi";

/** Largest body of a trigger create or update request. */
export const MAX_TRIGGER_BODY_BYTES = 64 * 1024;

const TAG = "Triggers";

const triggerNameSchema = z.string().regex(TRIGGER_NAME_PATTERN, `trigger name: ${TRIGGER_NAME_RULE}`);
const triggerTypeSchema = z.enum(TRIGGER_TYPES);
const qualifierSchema = z.string().refine(isTriggerQualifier, `qualifier: ${TRIGGER_QUALIFIER_RULE}`);
const customArgumentSchema = z
  .string()
  .refine(
    (value) => new TextEncoder().encode(value).byteLength <= MAX_CUSTOM_ARGUMENT_BYTES,
    `customArgument: at most ${MAX_CUSTOM_ARGUMENT_BYTES} bytes`,
  )
  .openapi({ description: `Timers only: the event's Message (at most ${MAX_CUSTOM_ARGUMENT_BYTES} bytes)` });
const triggerDescSchema = z.string().max(MAX_TRIGGER_DESC_CHARS).openapi({
  description:
    'SCF\'s TriggerDesc: a timer\'s cron (7 fields, second precision; also accepted as {"cron":"..."}), or the JSON of the other types',
});
const descriptionSchema = z.string().max(MAX_TRIGGER_DESCRIPTION_CHARS);

/** The body of POST .../triggers. */
const createTriggerSchema = z.strictObject({
  name: triggerNameSchema,
  type: triggerTypeSchema,
  qualifier: qualifierSchema.optional().openapi({ description: "Version or alias invoked (default $DEFAULT)" }),
  triggerDesc: triggerDescSchema.optional(),
  enabled: z.boolean().optional().openapi({ description: "On when absent" }),
  customArgument: customArgumentSchema.optional(),
  description: descriptionSchema.optional(),
});

/** The body of PATCH .../triggers/{type}/{trigger}: the fields given are changed. */
const updateTriggerSchema = z.strictObject({
  enabled: z.boolean().optional(),
  triggerDesc: triggerDescSchema.optional(),
  customArgument: customArgumentSchema.optional(),
  description: descriptionSchema.optional(),
});

/** A comma-separated list query parameter (at most MAX_TRIGGER_FILTER_VALUES values). */
function listParam<Item extends z.ZodType<string, string>>(item: Item) {
  return z
    .string()
    .transform((value) => value.split(","))
    .pipe(z.array(item).min(1).max(MAX_TRIGGER_FILTER_VALUES));
}

const listTriggersQuerySchema = z.strictObject({
  offset: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(MAX_TRIGGERS_LISTED).default(20),
  orderBy: z.enum(["addTime", "modTime"]).default("modTime"),
  order: z.enum(["asc", "desc"]).default("desc"),
  type: listParam(triggerTypeSchema).optional().openapi({ description: "Comma-separated types" }),
  qualifier: listParam(qualifierSchema).optional().openapi({ description: "Comma-separated qualifiers" }),
  name: listParam(triggerNameSchema).optional().openapi({ description: "Comma-separated trigger names" }),
  description: descriptionSchema
    .min(1)
    .optional()
    .openapi({ description: "Keeps the triggers whose description contains it" }),
});

/** Path of a function's triggers. */
const functionParams = z.object({ namespace: namespaceSchema, name: functionNameSchema });
/** Path of one trigger: its type and name. */
const triggerParams = z.object({
  namespace: namespaceSchema,
  name: functionNameSchema,
  type: triggerTypeSchema.openapi({ description: "timer, http, ckafka or cos" }),
  trigger: triggerNameSchema.openapi({ description: "The trigger's name" }),
});

/** A trigger as the REST API shows it. */
const triggerSchema = z
  .object({
    id: z.string().openapi({ description: "Fresh for every created trigger" }),
    namespace: z.string(),
    functionName: z.string(),
    name: z.string(),
    type: triggerTypeSchema,
    qualifier: z.string(),
    triggerDesc: z.string().openapi({ description: "As stored: a timer's normalised cron; JSON for the others" }),
    enabled: z.boolean(),
    customArgument: z.string(),
    description: z.string(),
    url: z.string().nullable().openapi({ description: "An http trigger's function URL; null for other types" }),
    createdAt: z.string().openapi({ format: "date-time" }),
    updatedAt: z.string().openapi({ format: "date-time" }),
  })
  .openapi("Trigger");

/** A trigger row as the REST API shows it. */
function publicTrigger(row: TriggerRow, requestUrl: string) {
  return {
    id: row.id,
    namespace: row.namespace,
    functionName: row.functionName,
    name: row.name,
    type: row.type as (typeof TRIGGER_TYPES)[number],
    qualifier: row.qualifier,
    triggerDesc: row.triggerDesc,
    enabled: row.enabled,
    customArgument: row.customArgument,
    description: row.description,
    url: triggerUrlOf(requestUrl, row) ?? null,
    createdAt: new Date(row.createdAt).toISOString(),
    updatedAt: new Date(row.updatedAt).toISOString(),
  };
}

const createTrigger = createRoute({
  method: "post",
  path: "/v1/namespaces/{namespace}/functions/{name}/triggers",
  tags: [TAG],
  summary: "Create a trigger of a function",
  description: `Trigger names are unique per function and type (409 TRIGGER_EXISTS); a function has at most ${MAX_TRIGGERS_PER_FUNCTION} triggers (409 TRIGGER_LIMIT_EXCEEDED). The body is at most ${MAX_TRIGGER_BODY_BYTES} bytes. An enabled timer fires from its next tick on.`,
  middleware: [pathFirst(functionParams)],
  request: { params: functionParams, body: documentedJsonBody("CreateTriggerRequest", "The trigger") },
  responses: {
    201: jsonResponse("The trigger", triggerSchema),
    ...errorResponses(...COMMON_ERROR_STATUSES, 409, 413),
  },
});

const listTriggers = createRoute({
  method: "get",
  path: "/v1/namespaces/{namespace}/functions/{name}/triggers",
  tags: [TAG],
  summary: "List a function's triggers",
  middleware: [pathFirst(functionParams)],
  request: { params: functionParams, query: queryOf(listTriggersQuerySchema) },
  responses: {
    200: jsonResponse("One page of triggers", z.object({ total: z.number().int(), triggers: z.array(triggerSchema) })),
    ...errorResponses(...COMMON_ERROR_STATUSES),
  },
});

const getTrigger = createRoute({
  method: "get",
  path: "/v1/namespaces/{namespace}/functions/{name}/triggers/{type}/{trigger}",
  tags: [TAG],
  summary: "Get a trigger",
  middleware: [pathFirst(triggerParams)],
  request: { params: triggerParams },
  responses: { 200: jsonResponse("The trigger", triggerSchema), ...errorResponses(...COMMON_ERROR_STATUSES) },
});

const updateTrigger = createRoute({
  method: "patch",
  path: "/v1/namespaces/{namespace}/functions/{name}/triggers/{type}/{trigger}",
  tags: [TAG],
  summary: "Switch a trigger on or off, or change its TriggerDesc, CustomArgument or description",
  description: `The fields given are changed (an empty text clears it); body at most ${MAX_TRIGGER_BODY_BYTES} bytes. A timer switched off, or deleted, does not fire again.`,
  middleware: [pathFirst(triggerParams)],
  request: { params: triggerParams, body: documentedJsonBody("UpdateTriggerRequest", "Fields to change") },
  responses: {
    200: jsonResponse("The trigger, updated", triggerSchema),
    ...errorResponses(...COMMON_ERROR_STATUSES, 413),
  },
});

const deleteTrigger = createRoute({
  method: "delete",
  path: "/v1/namespaces/{namespace}/functions/{name}/triggers/{type}/{trigger}",
  tags: [TAG],
  summary: "Delete a trigger",
  middleware: [pathFirst(triggerParams)],
  request: { params: triggerParams },
  responses: { 204: { description: "Deleted" }, ...errorResponses(...COMMON_ERROR_STATUSES) },
});

/** REST routes of a function's triggers (worker/triggers/registry.ts). */
export const triggerRoutes = new OpenAPIHono<AppEnv>({ defaultHook: refuseInvalid })
  .openapi(createTrigger, async (c) => {
    const { namespace, name } = c.req.valid("param");
    const input = await readJson(c, createTriggerSchema, MAX_TRIGGER_BODY_BYTES);
    const row = await new TriggerRegistry(c.env).create(namespace, name, input);
    return c.json(publicTrigger(row, c.req.url), 201);
  })
  .openapi(listTriggers, async (c) => {
    const { namespace, name } = c.req.valid("param");
    const query = c.req.valid("query");
    const page = await new TriggerRegistry(c.env).list(namespace, name, {
      offset: query.offset,
      limit: query.limit,
      orderBy: query.orderBy === "addTime" ? "add_time" : "mod_time",
      order: query.order === "asc" ? "ASC" : "DESC",
      types: query.type,
      qualifiers: query.qualifier,
      names: query.name,
      descriptions: query.description !== undefined ? [query.description] : undefined,
    });
    return c.json({ total: page.total, triggers: page.triggers.map((row) => publicTrigger(row, c.req.url)) }, 200);
  })
  .openapi(getTrigger, async (c) => {
    const { namespace, name, type, trigger } = c.req.valid("param");
    const row = await new TriggerRegistry(c.env).get({ namespace, functionName: name, type, name: trigger });
    return c.json(publicTrigger(row, c.req.url), 200);
  })
  .openapi(updateTrigger, async (c) => {
    const { namespace, name, type, trigger } = c.req.valid("param");
    const input = await readJson(c, updateTriggerSchema, MAX_TRIGGER_BODY_BYTES);
    const row = await new TriggerRegistry(c.env).update({ namespace, functionName: name, type, name: trigger }, input);
    return c.json(publicTrigger(row, c.req.url), 200);
  })
  .openapi(deleteTrigger, async (c) => {
    const { namespace, name, type, trigger } = c.req.valid("param");
    await new TriggerRegistry(c.env).delete({ namespace, functionName: name, type, name: trigger });
    return c.body(null, 204);
  });

triggerRoutes.openAPIRegistry.register("CreateTriggerRequest", createTriggerSchema);
triggerRoutes.openAPIRegistry.register("UpdateTriggerRequest", updateTriggerSchema);
