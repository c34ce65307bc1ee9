import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../../auth/credentials";
import {
  BULK_JOB_RETENTION_MS,
  BULK_JOB_STATUSES,
  BULK_MODES,
  BULK_TERMINATE_EVENTS_PER_SECOND,
  bulkTerminateBodySchema,
  cancelBulkTermination,
  getBulkTermination,
  MAX_BULK_TERMINATE_BODY_BYTES,
  MAX_EVENTS_PER_BULK_JOB,
  MAX_RUNNING_BULK_JOBS_PER_NAMESPACE,
  startBulkTermination,
} from "../../events/bulk-terminate";
import { MAX_GRACE_SECONDS, MIN_GRACE_SECONDS } from "../../events/event-deadlines";
import { admitRead } from "../../ratelimit/read-limit";
import { PlatformError } from "../../shared/errors";
import { namespaceSchema } from "../../shared/names";
import { parseWith, readBodyText } from "../../shared/validation";
import {
  COMMON_ERROR_STATUSES,
  documentedJsonBody,
  errorResponses,
  jsonResponse,
  pathFirst,
  refuseInvalid,
} from "../openapi";

const TAG = "Events";

const namespaceParams = z.object({ namespace: namespaceSchema });
/** A job's path: its id is checked by the job's object (any text that is no job of the namespace is NOT_FOUND). */
const jobParams = z.object({
  namespace: namespaceSchema,
  jobId: z.string().max(64).openapi({ description: "The job's id (a UUID)" }),
});

const countsSchema = z.object({
  matched: z.number().int().openapi({ description: "Events found matching, each then terminated, skipped or failed" }),
  terminated: z.number().int(),
  skipped: z.number().int().openapi({ description: "Already ended or terminating when reached" }),
  failed: z.number().int(),
});

const bulkJobSchema = z
  .object({
    jobId: z.string(),
    namespace: z.string(),
    status: z.enum(BULK_JOB_STATUSES),
    filter: z.object({
      functionName: z.string().nullable(),
      statuses: z.array(z.string()),
      qualifier: z.string().nullable(),
      invokeTypes: z.array(z.string()).nullable(),
      startTimeFrom: z.string().nullable(),
      startTimeTo: z
        .string()
        .openapi({ description: "Exclusive; at most the job's creation: later events are never touched" }),
      tags: z.record(z.string(), z.string()),
    }),
    mode: z.enum(BULK_MODES),
    graceSeconds: z.number().int().nullable(),
    counts: countsSchema,
    limitReached: z
      .boolean()
      .openapi({ description: `True when the job stopped at ${MAX_EVENTS_PER_BULK_JOB} events with more matching` }),
    createdAt: z.string(),
    finishedAt: z.string().nullable(),
    expiresAt: z.string().openapi({ description: "When the job is forgotten (72 h after its creation)" }),
    error: z.string().nullable(),
  })
  .openapi("BulkTermination");

const create = createRoute({
  method: "post",
  path: "/v1/namespaces/{namespace}/bulk-terminations",
  tags: [TAG],
  summary: "Terminate many events (a background job)",
  description: `Terminates every not-ended (RUNNING: queued, starting or running) event of the namespace, or of \`functionName\`, matching the filter (\`qualifier\`, \`invokeTypes\`, \`startTimeFrom\`/\`startTimeTo\`, \`tags\`: all must match), as the single terminate does (\`mode\`: "forced" by default or "graceful" with \`graceSeconds\` ${MIN_GRACE_SECONDS}-${MAX_GRACE_SECONDS}). Only events started before the job is created are touched. \`dryRun: true\` answers 200 with the count (at most ${MAX_EVENTS_PER_BULK_JOB}, \`countCapped\` when more match) and starts nothing; it is a read, under the caller's per-second read limit. The job ends at most ${BULK_TERMINATE_EVENTS_PER_SECOND} events per second per namespace and at most ${MAX_EVENTS_PER_BULK_JOB} events; at most ${MAX_RUNNING_BULK_JOBS_PER_NAMESPACE} jobs of a namespace run at once (RATE_LIMITED past it); a job is kept ${BULK_JOB_RETENTION_MS / 3_600_000} h. The body is at most ${MAX_BULK_TERMINATE_BODY_BYTES} bytes.`,
  middleware: [pathFirst(namespaceParams)],
  request: {
    params: namespaceParams,
    body: documentedJsonBody("BulkTerminationRequest", "The filter, the mode and dryRun ({} selects every event)"),
  },
  responses: {
    200: jsonResponse(
      "The dry run's count",
      z.object({
        count: z
          .number()
          .int()
          .openapi({ description: `Matching events, counted up to ${MAX_EVENTS_PER_BULK_JOB}` }),
        countCapped: z.boolean().openapi({
          description: `True when more than ${MAX_EVENTS_PER_BULK_JOB} events match (a job would stop at ${MAX_EVENTS_PER_BULK_JOB} with limitReached)`,
        }),
      }),
    ),
    202: jsonResponse("The job, started", bulkJobSchema),
    ...errorResponses(...COMMON_ERROR_STATUSES, 413),
  },
});

const get = createRoute({
  method: "get",
  path: "/v1/namespaces/{namespace}/bulk-terminations/{jobId}",
  tags: [TAG],
  summary: "A bulk termination's progress",
  middleware: [pathFirst(namespaceParams)],
  request: { params: jobParams },
  responses: {
    200: jsonResponse("The job", bulkJobSchema),
    ...errorResponses(...COMMON_ERROR_STATUSES),
  },
});

const cancel = createRoute({
  method: "delete",
  path: "/v1/namespaces/{namespace}/bulk-terminations/{jobId}",
  tags: [TAG],
  summary: "Cancel a bulk termination",
  description:
    "A running job stops (CANCELLED); the events it terminated stay terminated. An ended job is answered unchanged.",
  middleware: [pathFirst(namespaceParams)],
  request: { params: jobParams },
  responses: {
    200: jsonResponse("The job", bulkJobSchema),
    ...errorResponses(...COMMON_ERROR_STATUSES),
  },
});

/** REST routes: bulk termination jobs of a namespace. */
export const bulkRoutes = new OpenAPIHono<AppEnv>({ defaultHook: refuseInvalid })
  .openapi(create, async (c) => {
    const { namespace } = c.req.valid("param");
    const text = await readBodyText(c, MAX_BULK_TERMINATE_BODY_BYTES);
    // A body is required: `{}` (every event of the namespace) is never assumed from an empty one.
    if (text.trim().length === 0) {
      throw new PlatformError("INVALID_PARAMETER", "body: a JSON object is required ({} selects every event)");
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new PlatformError("INVALID_JSON", "request body is not valid JSON");
    }
    const parsed = parseWith(bulkTerminateBodySchema, body);
    // A dry run is a read of the index (a count), metered as the lists are.
    if (parsed.dryRun) admitRead(c.var.principal.secretId);
    const started = await startBulkTermination(c.env, namespace, parsed);
    if (started.dryRun) return c.json({ count: started.count, countCapped: started.countCapped }, 200);
    return c.json(started.job, 202);
  })
  .openapi(get, async (c) => {
    const { namespace, jobId } = c.req.valid("param");
    admitRead(c.var.principal.secretId);
    return c.json(await getBulkTermination(c.env, namespace, jobId), 200);
  })
  .openapi(cancel, async (c) => {
    const { namespace, jobId } = c.req.valid("param");
    return c.json(await cancelBulkTermination(c.env, namespace, jobId), 200);
  });

bulkRoutes.openAPIRegistry.register("BulkTerminationRequest", bulkTerminateBodySchema);
