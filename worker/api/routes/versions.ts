import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../../auth/credentials";
import {
  ALIAS_NAME_RULE,
  additionalOf,
  aliasRefSchema,
  createAliasSchema,
  DEFAULT_ALIAS,
  type FunctionAlias,
  FunctionAliases,
  listAliasesQuerySchema,
  MAX_ALIASES_PER_FUNCTION,
  updateAliasSchema,
} from "../../functions/aliases";
import { publicFunction } from "../../functions/model";
import {
  type FunctionVersion,
  FunctionVersions,
  LATEST,
  listVersionsQuerySchema,
  MAX_VERSIONS_PER_FUNCTION,
  publishVersionSchema,
} from "../../functions/versions";
import { PlatformError } from "../../shared/errors";
import { functionNameSchema, namespaceSchema } from "../../shared/names";
import { parseWith, readBodyText, readJson } from "../../shared/validation";
import {
  COMMON_ERROR_STATUSES,
  documentedJsonBody,
  errorResponses,
  jsonResponse,
  pathFirst,
  queryOf,
  refuseInvalid,
} from "../openapi";

/** Largest body of a publish or alias request. */
export const MAX_VERSION_BODY_BYTES = 16 * 1024;

/** Path of one function. */
const functionParams = z.object({ namespace: namespaceSchema, name: functionNameSchema });
/** Path of one version: any text (one the function does not have is QUALIFIER_NOT_FOUND). */
const versionParams = functionParams.extend({
  version: z
    .string()
    .max(64)
    .openapi({ description: `${LATEST} or a published version number` }),
});
/** Path of one alias. */
const aliasParams = functionParams.extend({
  alias: aliasRefSchema.openapi({ description: `${DEFAULT_ALIAS} or an alias name (${ALIAS_NAME_RULE})` }),
});

/** A version as the REST API shows it: its number, description, times and the frozen function. */
const versionSchema = z
  .object({
    version: z.string().openapi({ description: `${LATEST} or the version number` }),
    description: z.string(),
    createdAt: z.string().openapi({ format: "date-time" }),
    modifiedAt: z.string().openapi({ format: "date-time" }),
    function: z.record(z.string(), z.unknown()).openapi({
      description: "The function's code and configuration in this version (as GET of the function shows it)",
    }),
  })
  .openapi("FunctionVersion");

/** An alias as the REST API shows it. */
const aliasSchema = z
  .object({
    name: z.string(),
    functionVersion: z.string(),
    routingConfig: z.object({
      additionalVersionWeights: z.array(z.object({ version: z.string(), weight: z.number() })),
    }),
    description: z.string(),
    createdAt: z.string().openapi({ format: "date-time" }),
    updatedAt: z.string().openapi({ format: "date-time" }),
  })
  .openapi("Alias");

function publicVersion(version: FunctionVersion) {
  return {
    version: version.version,
    description: version.description,
    createdAt: new Date(version.createdAt).toISOString(),
    modifiedAt: new Date(version.modifiedAt).toISOString(),
    function: publicFunction(version.row),
  };
}

function publicAlias(alias: FunctionAlias) {
  return {
    name: alias.name,
    functionVersion: alias.functionVersion,
    routingConfig: {
      additionalVersionWeights: alias.additional
        ? [{ version: alias.additional.version, weight: alias.additional.weight }]
        : [],
    },
    description: alias.description,
    createdAt: new Date(alias.createdAt).toISOString(),
    updatedAt: new Date(alias.updatedAt).toISOString(),
  };
}

const TAG = "Versions and aliases";

const publishVersion = createRoute({
  method: "post",
  path: "/v1/namespaces/{namespace}/functions/{name}/versions",
  tags: [TAG],
  summary: "Publish $LATEST as a new version",
  description: `Freezes $LATEST's code and configuration as the next version number (1, 2, ...; a deleted number is never given again). Versions are immutable; a function keeps at most ${MAX_VERSIONS_PER_FUNCTION} (409 VERSION_LIMIT_EXCEEDED). The body is empty or {"description"} (at most ${MAX_VERSION_BODY_BYTES} bytes).`,
  middleware: [pathFirst(functionParams)],
  request: {
    params: functionParams,
    body: documentedJsonBody("PublishVersionRequest", "The version's description", false),
  },
  responses: {
    201: jsonResponse("The version, published", versionSchema),
    ...errorResponses(...COMMON_ERROR_STATUSES, 409, 413),
  },
});

const listVersions = createRoute({
  method: "get",
  path: "/v1/namespaces/{namespace}/functions/{name}/versions",
  tags: [TAG],
  summary: "List a function's versions ($LATEST included)",
  middleware: [pathFirst(functionParams)],
  request: { params: functionParams, query: queryOf(listVersionsQuerySchema) },
  responses: {
    200: jsonResponse(
      "One page of versions; total counts $LATEST too",
      z.object({ total: z.number().int(), versions: z.array(versionSchema) }),
    ),
    ...errorResponses(...COMMON_ERROR_STATUSES),
  },
});

const getVersion = createRoute({
  method: "get",
  path: "/v1/namespaces/{namespace}/functions/{name}/versions/{version}",
  tags: [TAG],
  summary: "Get one version ($LATEST or a number)",
  middleware: [pathFirst(versionParams)],
  request: { params: versionParams },
  responses: { 200: jsonResponse("The version", versionSchema), ...errorResponses(...COMMON_ERROR_STATUSES) },
});

const deleteVersion = createRoute({
  method: "delete",
  path: "/v1/namespaces/{namespace}/functions/{name}/versions/{version}",
  tags: [TAG],
  summary: "Delete a published version",
  description:
    "Refused with 409 VERSION_IN_USE while an alias routes to it, a trigger targets it or (without force=true) the event index shows RUNNING events of it; those events run to their end either way. $LATEST cannot be deleted (400).",
  middleware: [pathFirst(versionParams)],
  request: {
    params: versionParams,
    query: queryOf(
      z.strictObject({
        force: z
          .enum(["true", "false"])
          .optional()
          .openapi({ description: "true: delete even while events of the version are RUNNING" }),
      }),
    ),
  },
  responses: { 204: { description: "Deleted" }, ...errorResponses(...COMMON_ERROR_STATUSES, 409) },
});

const createAlias = createRoute({
  method: "post",
  path: "/v1/namespaces/{namespace}/functions/{name}/aliases",
  tags: [TAG],
  summary: "Create an alias",
  description: `An alias routes to a main version and optionally one additional version taking \`weight\` (0 < weight < 1) of the invocations. ${DEFAULT_ALIAS} exists for every function (update it instead). At most ${MAX_ALIASES_PER_FUNCTION} aliases per function besides ${DEFAULT_ALIAS}. Body at most ${MAX_VERSION_BODY_BYTES} bytes.`,
  middleware: [pathFirst(functionParams)],
  request: { params: functionParams, body: documentedJsonBody("CreateAliasRequest", "The new alias") },
  responses: {
    201: jsonResponse("The alias, created", aliasSchema),
    ...errorResponses(...COMMON_ERROR_STATUSES, 409, 413),
  },
});

const listAliases = createRoute({
  method: "get",
  path: "/v1/namespaces/{namespace}/functions/{name}/aliases",
  tags: [TAG],
  summary: `List a function's aliases (${DEFAULT_ALIAS} first)`,
  middleware: [pathFirst(functionParams)],
  request: { params: functionParams, query: queryOf(listAliasesQuerySchema) },
  responses: {
    200: jsonResponse("One page of aliases", z.object({ total: z.number().int(), aliases: z.array(aliasSchema) })),
    ...errorResponses(...COMMON_ERROR_STATUSES),
  },
});

const getAlias = createRoute({
  method: "get",
  path: "/v1/namespaces/{namespace}/functions/{name}/aliases/{alias}",
  tags: [TAG],
  summary: "Get an alias",
  middleware: [pathFirst(aliasParams)],
  request: { params: aliasParams },
  responses: { 200: jsonResponse("The alias", aliasSchema), ...errorResponses(...COMMON_ERROR_STATUSES) },
});

const updateAlias = createRoute({
  method: "put",
  path: "/v1/namespaces/{namespace}/functions/{name}/aliases/{alias}",
  tags: [TAG],
  summary: "Replace an alias's routing",
  description: `Sets the main version and the routing as a whole (no routingConfig: every invocation goes to the main version); the description is kept when absent. ${DEFAULT_ALIAS} can be updated, not deleted. Body at most ${MAX_VERSION_BODY_BYTES} bytes.`,
  middleware: [pathFirst(aliasParams)],
  request: { params: aliasParams, body: documentedJsonBody("UpdateAliasRequest", "The alias's routing") },
  responses: {
    200: jsonResponse("The alias, updated", aliasSchema),
    ...errorResponses(...COMMON_ERROR_STATUSES, 413),
  },
});

const deleteAlias = createRoute({
  method: "delete",
  path: "/v1/namespaces/{namespace}/functions/{name}/aliases/{alias}",
  tags: [TAG],
  summary: "Delete an alias",
  description: `Refused with 409 ALIAS_IN_USE while a trigger targets it; ${DEFAULT_ALIAS} cannot be deleted (400).`,
  middleware: [pathFirst(aliasParams)],
  request: { params: aliasParams },
  responses: { 204: { description: "Deleted" }, ...errorResponses(...COMMON_ERROR_STATUSES, 409) },
});

/**
 * REST routes of versions and aliases under /v1/namespaces/:namespace/functions/:name. Bodies are
 * read with readJson (bounded while streaming) and validated with the domain's schemas.
 */
export const versionRoutes = new OpenAPIHono<AppEnv>({ defaultHook: refuseInvalid })
  .openapi(publishVersion, async (c) => {
    const { namespace, name } = c.req.valid("param");
    // The body is optional: empty means {}.
    const text = await readBodyText(c, MAX_VERSION_BODY_BYTES);
    let body: unknown = {};
    if (text.trim().length > 0) {
      try {
        body = JSON.parse(text);
      } catch {
        throw new PlatformError("INVALID_JSON", "request body is not valid JSON");
      }
    }
    const input = parseWith(publishVersionSchema, body);
    const version = await new FunctionVersions(c.env).publish(namespace, name, input);
    return c.json(publicVersion(version), 201);
  })
  .openapi(listVersions, async (c) => {
    const { namespace, name } = c.req.valid("param");
    const query = c.req.valid("query");
    const page = await new FunctionVersions(c.env).list(namespace, name, query);
    return c.json({ total: page.total, versions: page.versions.map(publicVersion) }, 200);
  })
  .openapi(getVersion, async (c) => {
    const { namespace, name, version } = c.req.valid("param");
    return c.json(publicVersion(await new FunctionVersions(c.env).get(namespace, name, version)), 200);
  })
  .openapi(deleteVersion, async (c) => {
    const { namespace, name, version } = c.req.valid("param");
    const { force } = c.req.valid("query");
    await new FunctionVersions(c.env).delete(namespace, name, version, force === "true");
    return c.body(null, 204);
  })
  .openapi(createAlias, async (c) => {
    const { namespace, name } = c.req.valid("param");
    const input = await readJson(c, createAliasSchema, MAX_VERSION_BODY_BYTES);
    const alias = await new FunctionAliases(c.env).create(namespace, name, input.name, {
      functionVersion: input.functionVersion,
      additional: additionalOf(input.routingConfig),
      description: input.description,
    });
    return c.json(publicAlias(alias), 201);
  })
  .openapi(listAliases, async (c) => {
    const { namespace, name } = c.req.valid("param");
    const query = c.req.valid("query");
    const page = await new FunctionAliases(c.env).list(namespace, name, query);
    return c.json({ total: page.total, aliases: page.aliases.map(publicAlias) }, 200);
  })
  .openapi(getAlias, async (c) => {
    const { namespace, name, alias } = c.req.valid("param");
    return c.json(publicAlias(await new FunctionAliases(c.env).get(namespace, name, alias)), 200);
  })
  .openapi(updateAlias, async (c) => {
    const { namespace, name, alias } = c.req.valid("param");
    const input = await readJson(c, updateAliasSchema, MAX_VERSION_BODY_BYTES);
    const updated = await new FunctionAliases(c.env).update(namespace, name, alias, {
      functionVersion: input.functionVersion,
      additional: additionalOf(input.routingConfig),
      description: input.description,
    });
    return c.json(publicAlias(updated), 200);
  })
  .openapi(deleteAlias, async (c) => {
    const { namespace, name, alias } = c.req.valid("param");
    await new FunctionAliases(c.env).delete(namespace, name, alias);
    return c.body(null, 204);
  });

versionRoutes.openAPIRegistry.register("PublishVersionRequest", publishVersionSchema);
versionRoutes.openAPIRegistry.register("CreateAliasRequest", createAliasSchema);
versionRoutes.openAPIRegistry.register("UpdateAliasRequest", updateAliasSchema);
