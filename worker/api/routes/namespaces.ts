import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../../auth/credentials";
import {
  ARCHIVE_EXPIRY,
  archiveDaySchema,
  deleteArchive,
  listArchive,
  MAX_ARCHIVE_CURSOR_CHARS,
  MAX_ARCHIVE_LIST_LIMIT,
  MAX_ARCHIVE_LOG_BYTES,
  MAX_ARCHIVE_LOG_LINES,
  MAX_ARCHIVE_LOG_PAGE,
  readArchive,
  readArchivedLogPage,
} from "../../events/event-archive";
import {
  DEFAULT_RETENTION_HOURS,
  MAX_RETENTION_HOURS,
  MAX_SETTINGS_BODY_BYTES,
  MIN_RETENTION_HOURS,
  namespaceSettingsUpdateSchema,
  readNamespaceSettings,
  SETTINGS_CACHE_TTL_MS,
  updateNamespaceSettings,
} from "../../events/event-retention";
import { admitRead } from "../../ratelimit/read-limit";
import { functionNameSchemaFor, namespaceSchema } from "../../shared/names";
import { readJson } from "../../shared/validation";
import {
  COMMON_ERROR_STATUSES,
  documentedJsonBody,
  errorResponses,
  jsonResponse,
  pathFirst,
  queryOf,
  refuseInvalid,
} from "../openapi";
import { eventViewSchema } from "./events";

/** Path of a namespace. */
const namespaceParams = z.object({ namespace: namespaceSchema });
/** Path of one archived event. */
const archivedEventParams = z.object({
  namespace: namespaceSchema,
  requestId: z.uuid("requestId: a UUID").openapi({ description: "The event's RequestId (a UUID)" }),
});

/** A namespace's settings (events/event-retention.ts NamespaceSettings). */
const settingsSchema = z
  .object({
    namespace: z.string(),
    retentionHours: z
      .number()
      .int()
      .openapi({
        description: `Hours an ended event stays readable (status, log, list) after its end: ${MIN_RETENTION_HOURS}-${MAX_RETENTION_HOURS}, default ${DEFAULT_RETENTION_HOURS}`,
      }),
    archive: z.boolean().openapi({
      description:
        "Whether an ended event is archived to R2 (status, timeline, tags, progress and log) before it is deleted; read it under /v1/namespaces/{namespace}/archive/events",
    }),
    archiveExpiry: z.string().openapi({
      description:
        "What removes archives: DELETE of an archived event, the deletion of its function (archives written before it), and the R2 lifecycle rule of the afp-archive bucket set at deployment",
    }),
  })
  .openapi("NamespaceSettings");

/** One line of an archived log. */
const archivedLogRecordSchema = z.object({
  seq: z.number().int(),
  ts: z.number().openapi({ description: "epoch ms" }),
  stream: z.enum(["stdout", "stderr", "platform"]),
  line: z.string(),
});

const archivedEventSchema = z
  .object({
    archivedAt: z.string().openapi({ format: "date-time" }),
    event: eventViewSchema,
    logLines: z.number().int().openapi({ description: "Lines the archive holds (read them with .../logs)" }),
    logTruncated: z.boolean().openapi({
      description: `True when the log held more than the archive keeps (${MAX_ARCHIVE_LOG_LINES} lines, ${MAX_ARCHIVE_LOG_BYTES / 1024 / 1024} MiB as stored): its first lines are kept`,
    }),
  })
  .openapi("ArchivedEvent");

const archiveLogQuerySchema = z.strictObject({
  after: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0),
  limit: z.coerce.number().int().min(1).max(MAX_ARCHIVE_LOG_PAGE).default(MAX_ARCHIVE_LOG_PAGE),
});

const archiveListQuerySchema = z.strictObject({
  functionName: functionNameSchemaFor("functionName").optional(),
  date: archiveDaySchema.optional(),
  cursor: z.string().min(1).max(MAX_ARCHIVE_CURSOR_CHARS).optional(),
  limit: z.coerce.number().int().min(1).max(MAX_ARCHIVE_LIST_LIMIT).default(MAX_ARCHIVE_LIST_LIMIT),
});

const archiveEntrySchema = z
  .object({
    requestId: z.string(),
    functionName: z.string(),
    date: z.string().openapi({ description: "The UTC day of the event's end (YYYY-MM-DD)" }),
    status: z.string().nullable(),
    endedAt: z.string().nullable(),
    size: z
      .number()
      .int()
      .openapi({ description: "Bytes of the compressed manifest (status; the log is in separate chunk objects)" }),
    archivedAt: z.string(),
  })
  .openapi("ArchivedEventEntry");

const TAG = "Namespaces";

const getSettings = createRoute({
  method: "get",
  path: "/v1/namespaces/{namespace}/settings",
  tags: [TAG],
  summary: "Get a namespace's retention settings",
  description: `How long the namespace's ended events are kept and whether they are archived to R2 before deletion (the defaults, ${DEFAULT_RETENTION_HOURS} h and no archive, until set). Any credential of the namespace.`,
  middleware: [pathFirst(namespaceParams)],
  request: { params: namespaceParams },
  responses: {
    200: jsonResponse("The namespace's settings", settingsSchema),
    ...errorResponses(...COMMON_ERROR_STATUSES),
  },
});

const putSettings = createRoute({
  method: "put",
  path: "/v1/namespaces/{namespace}/settings",
  tags: [TAG],
  summary: "Set a namespace's retention settings",
  description: `\`{"retentionHours": ${MIN_RETENTION_HOURS}-${MAX_RETENTION_HOURS}, "archive": true|false}\`; a field left out keeps its value (body at most ${MAX_SETTINGS_BODY_BYTES} bytes). Any credential of the namespace may set them within the bounds. Applies to events ending from now on and, when their deletion comes due, to those already ended (a longer retention keeps them longer; a shorter one deletes them at their next due time, the one set when they ended). Other isolates see a change within ${SETTINGS_CACHE_TTL_MS / 1000} s.`,
  middleware: [pathFirst(namespaceParams)],
  request: {
    params: namespaceParams,
    body: documentedJsonBody("NamespaceSettingsUpdate", "retentionHours and/or archive"),
  },
  responses: {
    200: jsonResponse("The namespace's settings, as set", settingsSchema),
    ...errorResponses(...COMMON_ERROR_STATUSES, 413),
  },
});

const getArchived = createRoute({
  method: "get",
  path: "/v1/namespaces/{namespace}/archive/events/{requestId}",
  tags: [TAG],
  summary: "Read an archived event",
  description:
    "The status (timeline, tags and progress included) an event had when it was archived, before its deletion. EVENT_NOT_FOUND when the namespace has no archive of it. Counted by the read limit.",
  middleware: [pathFirst(archivedEventParams)],
  request: { params: archivedEventParams },
  responses: {
    200: jsonResponse("The archived event", archivedEventSchema),
    ...errorResponses(...COMMON_ERROR_STATUSES),
  },
});

const deleteArchived = createRoute({
  method: "delete",
  path: "/v1/namespaces/{namespace}/archive/events/{requestId}",
  tags: [TAG],
  summary: "Delete an archived event",
  description:
    "Deletes the event's archive (status and log) from R2. EVENT_NOT_FOUND when the namespace has no archive of it (as a read).",
  middleware: [pathFirst(archivedEventParams)],
  request: { params: archivedEventParams },
  responses: {
    204: { description: "Deleted" },
    ...errorResponses(...COMMON_ERROR_STATUSES),
  },
});

const getArchivedLog = createRoute({
  method: "get",
  path: "/v1/namespaces/{namespace}/archive/events/{requestId}/logs",
  tags: [TAG],
  summary: "Read an archived event's log, page by page",
  description: `Pages of at most ${MAX_ARCHIVE_LOG_PAGE} lines after \`after\` (a seq), as GET /v1/events/{requestId}/logs pages the live log; a page may hold fewer lines while \`more\` is true (it ends at a stored chunk's end). Counted by the read limit.`,
  middleware: [pathFirst(archivedEventParams)],
  request: { params: archivedEventParams, query: queryOf(archiveLogQuerySchema) },
  responses: {
    200: jsonResponse(
      "Archived log lines after `after`; page on with after=lastSeq while `more` is true",
      z.object({
        records: z.array(archivedLogRecordSchema),
        lastSeq: z.number().int(),
        more: z.boolean(),
        truncated: z.boolean().openapi({ description: "The archive kept only the log's first lines" }),
      }),
    ),
    ...errorResponses(...COMMON_ERROR_STATUSES),
  },
});

const listArchived = createRoute({
  method: "get",
  path: "/v1/namespaces/{namespace}/archive/events",
  tags: [TAG],
  summary: "List a namespace's archived events",
  description: `By function, then UTC day of the end, then RequestId; \`functionName\` and \`date\` (YYYY-MM-DD, needs functionName) narrow the list. Pages of at most ${MAX_ARCHIVE_LIST_LIMIT}; pass \`nextCursor\` as \`cursor\`. Counted by the read limit.`,
  middleware: [pathFirst(namespaceParams)],
  request: { params: namespaceParams, query: queryOf(archiveListQuerySchema) },
  responses: {
    200: jsonResponse(
      "A page of archived events",
      z.object({ events: z.array(archiveEntrySchema), nextCursor: z.string().nullable() }),
    ),
    ...errorResponses(...COMMON_ERROR_STATUSES),
  },
});

/** REST routes: a namespace's retention settings and its archive of deleted events. */
export const namespaceRoutes = new OpenAPIHono<AppEnv>({ defaultHook: refuseInvalid })
  .openapi(getSettings, async (c) => {
    const { namespace } = c.req.valid("param");
    return c.json(
      { namespace, ...(await readNamespaceSettings(c.env.DB, namespace)), archiveExpiry: ARCHIVE_EXPIRY },
      200,
    );
  })
  .openapi(putSettings, async (c) => {
    const { namespace } = c.req.valid("param");
    const update = await readJson(c, namespaceSettingsUpdateSchema, MAX_SETTINGS_BODY_BYTES);
    return c.json(
      { namespace, ...(await updateNamespaceSettings(c.env.DB, namespace, update)), archiveExpiry: ARCHIVE_EXPIRY },
      200,
    );
  })
  .openapi(getArchived, async (c) => {
    const { namespace, requestId } = c.req.valid("param");
    admitRead(c.var.principal.secretId);
    const archived = await readArchive(c.env.ARCHIVE_BUCKET, namespace, requestId);
    return c.json(
      {
        archivedAt: archived.archivedAt,
        event: archived.event,
        logLines: archived.log.lines,
        logTruncated: archived.log.truncated,
      },
      200,
    );
  })
  .openapi(getArchivedLog, async (c) => {
    const { namespace, requestId } = c.req.valid("param");
    const { after, limit } = c.req.valid("query");
    admitRead(c.var.principal.secretId);
    const archived = await readArchive(c.env.ARCHIVE_BUCKET, namespace, requestId);
    return c.json(await readArchivedLogPage(c.env.ARCHIVE_BUCKET, archived, after, limit), 200);
  })
  .openapi(deleteArchived, async (c) => {
    const { namespace, requestId } = c.req.valid("param");
    await deleteArchive(c.env.ARCHIVE_BUCKET, namespace, requestId);
    return c.body(null, 204);
  })
  .openapi(listArchived, async (c) => {
    const { namespace } = c.req.valid("param");
    const query = c.req.valid("query");
    admitRead(c.var.principal.secretId);
    return c.json(await listArchive(c.env.ARCHIVE_BUCKET, namespace, query), 200);
  });

namespaceRoutes.openAPIRegistry.register("NamespaceSettingsUpdate", namespaceSettingsUpdateSchema);
