import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../../auth/credentials";
import { indexDatabaseOf } from "../../db/index-databases";
import {
  functionStatistics,
  MAX_STATISTICS_HOURS,
  STATISTICS_BUCKET_MS,
  statisticsQuerySchema,
} from "../../events/event-statistics";
import { MAX_TAG_FILTERS } from "../../events/event-tags";
import { FunctionRegistry } from "../../functions/registry";
import { admitRead } from "../../ratelimit/read-limit";
import { functionNameSchema, namespaceSchema } from "../../shared/names";
import { COMMON_ERROR_STATUSES, errorResponses, jsonResponse, pathFirst, queryOf, refuseInvalid } from "../openapi";

/** Path of one function. */
const functionParams = z.object({ namespace: namespaceSchema, name: functionNameSchema });

const countFields = {
  RUNNING: z.number().int(),
  FINISHED: z.number().int(),
  FAILED: z.number().int(),
  ABORTED: z.number().int(),
};

const statisticsSchema = z
  .object({
    namespace: z.string(),
    functionName: z.string(),
    from: z.string().openapi({ format: "date-time", description: "Start of the first hour" }),
    to: z.string().openapi({ format: "date-time", description: "End of the last hour (exclusive)" }),
    bucketMs: z
      .number()
      .int()
      .openapi({ description: `Width of a bucket: ${STATISTICS_BUCKET_MS} ms (an hour)` }),
    buckets: z
      .array(z.object({ start: z.string().openapi({ format: "date-time" }), ...countFields }))
      .openapi({ description: "Every hour of the window, oldest first, with its counts (zeros included)" }),
    totals: z.object(countFields),
  })
  .openapi("FunctionStatistics");

const getStatistics = createRoute({
  method: "get",
  path: "/v1/namespaces/{namespace}/functions/{name}/statistics",
  tags: ["Events"],
  summary: "Count a function's events per status and hour (the last 72 hours)",
  description: `Events of the index counted by status per hour of their start time, over the last \`hours\` hours (1-${MAX_STATISTICS_HOURS}, default ${MAX_STATISTICS_HOURS}; the current hour included). \`tags\` (as the list's: \`env=prod,team=video\`, at most ${MAX_TAG_FILTERS}) counts only the events carrying every one of them. Counted by the read limit.`,
  middleware: [pathFirst(functionParams)],
  request: { params: functionParams, query: queryOf(statisticsQuerySchema) },
  responses: {
    200: jsonResponse("Counts per status and hour", statisticsSchema),
    ...errorResponses(...COMMON_ERROR_STATUSES),
  },
});

/** REST route: a function's event statistics (what the console's chart draws). */
export const statisticsRoutes = new OpenAPIHono<AppEnv>({ defaultHook: refuseInvalid }).openapi(
  getStatistics,
  async (c) => {
    const { namespace, name } = c.req.valid("param");
    const { hours, tags } = c.req.valid("query");
    admitRead(c.var.principal.secretId);
    // An unknown function is FUNCTION_NOT_FOUND rather than an empty chart.
    await new FunctionRegistry(c.env).get(namespace, name);
    return c.json(
      await functionStatistics(indexDatabaseOf(c.env, namespace), namespace, name, hours, Date.now(), tags ?? {}),
      200,
    );
  },
);
