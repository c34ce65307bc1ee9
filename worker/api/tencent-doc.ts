import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { ACTION_NAMES } from "../tcapi/actions";
import { TC_API_VERSION } from "../tcapi/envelope";

/** The actions the Tencent Cloud API endpoint implements, as the document lists them. */
export const DOCUMENTED_TENCENT_ACTIONS = ACTION_NAMES;

/** Where the README describes the endpoint (its actions, parameters and error codes). */
export const TENCENT_README_SECTION = "README.md#tencent-cloud-api-30-scf-endpoint";

/** Tencent's answer envelope: `{Response: {...result, RequestId}}` or `{Response: {Error, RequestId}}`. */
const tencentResponseSchema = z
  .object({
    Response: z.looseObject({
      RequestId: z.string(),
      Error: z.object({ Code: z.string(), Message: z.string() }).optional(),
    }),
  })
  .openapi("TencentResponse");

/**
 * Adds the Tencent Cloud API 3.0 endpoint (`POST /`, served by worker/tcapi/routes.ts) to the
 * document as one operation: the action in the X-TC-Action header, its parameters in the body.
 */
export function registerTencentEndpoint(registry: OpenAPIHono["openAPIRegistry"]): void {
  registry.registerPath({
    method: "post",
    path: "/",
    operationId: "tencentCloudApi",
    tags: ["Tencent Cloud API 3.0"],
    summary: "Tencent Cloud API 3.0 (SCF 2018-04-16): one operation per X-TC-Action",
    description:
      "The SCF API for the official Tencent Cloud SDKs: the action is the X-TC-Action header, its " +
      "parameters the JSON body, the answer Tencent's envelope with HTTP 200 (errors too). Requests " +
      "are signed with TC3-HMAC-SHA256 or carry the bearer credentials. Actions, parameters and " +
      `error codes: [README, "Tencent Cloud API 3.0 (SCF) endpoint"](${TENCENT_README_SECTION}).`,
    externalDocs: { description: "README: Tencent Cloud API 3.0 (SCF) endpoint", url: TENCENT_README_SECTION },
    security: [{ tc3: [] }, { bearer: [] }],
    request: {
      headers: z.object({
        "x-tc-action": z.enum(DOCUMENTED_TENCENT_ACTIONS).openapi({ description: "The action" }),
        "x-tc-version": z.literal(TC_API_VERSION),
        "x-tc-timestamp": z
          .string()
          .optional()
          .openapi({ description: "Unix time in seconds (required with a TC3 signature)" }),
        "x-tc-region": z.string().optional(),
      }),
      body: {
        description: "The action's parameters (at most 1 MiB; 32 MiB for CreateFunction and UpdateFunctionCode)",
        required: false,
        content: { "application/json": { schema: { type: "object", additionalProperties: true } } },
      },
    },
    responses: {
      200: {
        description: "The action's result, or its error, in Tencent's envelope",
        content: { "application/json": { schema: tencentResponseSchema } },
      },
    },
  });
}
