// Aliases of a function (SCF's CreateAlias, UpdateAlias, GetAlias, ListAliases, DeleteAlias): a
// name routing to a main version and, optionally, a weighted additional version.
//
// `$DEFAULT` exists for every function from its creation: without a row it points at `$LATEST`;
// UpdateAlias on it writes its row. It cannot be created, deleted or renamed. Every check that
// depends on other rows (the versions exist, the bound, no trigger targets a deleted alias) is made
// in the same D1 statement as the write.
import { z } from "zod";
import type { FunctionAliasRow } from "../db/schema";
import { PlatformError } from "../shared/errors";
import { cachedQualifierLookup, forgetQualifiers } from "./qualifier-cache";
import { functionNotFound } from "./registry";
import { isVersionNumber, LATEST, versionRefSchema } from "./versions";

/** The alias every function has, routing to `$LATEST` until it is updated. */
export const DEFAULT_ALIAS = "$DEFAULT";
/** An alias name (SCF's rule): 1-64 letters, digits, _ or -, starting with a letter. */
export const ALIAS_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
/** The alias name rule, as error messages tell it. */
export const ALIAS_NAME_RULE = "1-64 letters, digits, _ or -, starting with a letter";
/** Most aliases one function may have, `$DEFAULT` not counted. */
export const MAX_ALIASES_PER_FUNCTION = 100;
/** Longest description of an alias, in characters. */
export const MAX_ALIAS_DESCRIPTION_CHARS = 1_000;
/** Most additional versions an alias routes to (SCF allows one). */
export const MAX_ADDITIONAL_VERSIONS = 1;
/** Most aliases one list page returns. */
export const MAX_ALIAS_LIST_LIMIT = 100;

/** True for a name an alias may have (not `$DEFAULT`, which every function has already). */
export function isAliasName(value: string): boolean {
  return ALIAS_NAME_PATTERN.test(value);
}

/** An alias name in a path or parameter: `$DEFAULT` or a name by the rule. */
export const aliasRefSchema = z
  .string()
  .max(64)
  .refine((value) => value === DEFAULT_ALIAS || isAliasName(value), `alias: ${DEFAULT_ALIAS} or ${ALIAS_NAME_RULE}`);

const descriptionSchema = z
  .string()
  .max(MAX_ALIAS_DESCRIPTION_CHARS, `description: at most ${MAX_ALIAS_DESCRIPTION_CHARS} characters`);

/** The weighted routing of an alias: at most one additional version with a weight in (0, 1). */
export const routingConfigSchema = z.strictObject({
  additionalVersionWeights: z
    .array(
      z.strictObject({
        version: versionRefSchema,
        weight: z
          .number()
          .gt(0, "weight: more than 0 and less than 1")
          .lt(1, "weight: more than 0 and less than 1")
          .describe("Fraction of invocations routed to this version (0 < weight < 1); the rest go to the main version"),
      }),
    )
    .max(MAX_ADDITIONAL_VERSIONS, `additionalVersionWeights: at most ${MAX_ADDITIONAL_VERSIONS} entry`)
    .default([]),
  /** SCF's rule routing (its spelling): not supported, refused with UNSUPPORTED_OPERATION when not empty. */
  addtionVersionMatchs: z.array(z.unknown()).max(10).optional(),
});

/** Body of `POST /v1/namespaces/:namespace/functions/:name/aliases`. */
export const createAliasSchema = z.strictObject({
  name: z.string().regex(ALIAS_NAME_PATTERN, `name: ${ALIAS_NAME_RULE}`),
  functionVersion: versionRefSchema.describe("The main version: $LATEST or a published version number"),
  routingConfig: routingConfigSchema.optional(),
  description: descriptionSchema.default(""),
});

/**
 * Body of `PUT /v1/namespaces/:namespace/functions/:name/aliases/:alias`: the alias's routing as a
 * whole (no routingConfig: every invocation goes to the main version); description kept when absent.
 */
export const updateAliasSchema = z.strictObject({
  functionVersion: versionRefSchema.describe("The main version: $LATEST or a published version number"),
  routingConfig: routingConfigSchema.optional(),
  description: descriptionSchema.optional(),
});

/** Query of `GET /v1/namespaces/:namespace/functions/:name/aliases`. */
export const listAliasesQuerySchema = z.object({
  functionVersion: versionRefSchema.optional().describe("Only aliases routing to this version (main or additional)"),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
  limit: z.coerce.number().int().min(1).max(MAX_ALIAS_LIST_LIMIT).default(20),
});

/** Where an alias routes: the main version and an optional weighted additional one. */
export interface AliasRouting {
  functionVersion: string;
  additional?: { version: string; weight: number } | undefined;
}

/** An alias as the services return it. */
export interface FunctionAlias extends AliasRouting {
  name: string;
  description: string;
  createdAt: number;
  updatedAt: number;
}

/** What creating or updating an alias sets. */
export interface AliasInput extends AliasRouting {
  description?: string | undefined;
}

/**
 * The routing of a validated routingConfig (undefined: the main version only); UNSUPPORTED_OPERATION
 * for rule routing (addtionVersionMatchs).
 */
export function additionalOf(
  routing: z.infer<typeof routingConfigSchema> | undefined,
): { version: string; weight: number } | undefined {
  if (routing?.addtionVersionMatchs && routing.addtionVersionMatchs.length > 0) {
    throw new PlatformError(
      "UNSUPPORTED_OPERATION",
      "routingConfig.addtionVersionMatchs: rule routing is not supported; use additionalVersionWeights",
    );
  }
  const [first] = routing?.additionalVersionWeights ?? [];
  return first ? { version: first.version, weight: first.weight } : undefined;
}

function aliasOf(row: FunctionAliasRow): FunctionAlias {
  return {
    name: row.name,
    functionVersion: row.functionVersion,
    additional:
      row.additionalVersion !== null && row.additionalWeight !== null
        ? { version: row.additionalVersion, weight: row.additionalWeight }
        : undefined,
    description: row.description,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

/** `$DEFAULT` before it has a row: `$LATEST`, since the function's creation. */
function virtualDefault(functionCreatedAt: number): FunctionAlias {
  return {
    name: DEFAULT_ALIAS,
    functionVersion: LATEST,
    description: "",
    createdAt: functionCreatedAt,
    updatedAt: functionCreatedAt,
  };
}

/** The error for an alias the function does not have. */
export function aliasNotFound(name: string, alias: string): PlatformError {
  return new PlatformError("QUALIFIER_NOT_FOUND", `function ${name} has no alias ${alias}`);
}

/** Checks routing rules that need no lookup: the additional version differs from the main one. */
function checkRouting(input: AliasRouting): void {
  if (input.additional && input.additional.version === input.functionVersion) {
    throw new PlatformError(
      "INVALID_PARAMETER",
      "routingConfig: the additional version must differ from the main functionVersion",
    );
  }
}

/** SQL true when a version reference (?n) names `$LATEST` or a live published version of the function. */
function versionExists(param: string): string {
  return `(${param} IS NULL OR ${param} = '${LATEST}' OR EXISTS (SELECT 1 FROM function_versions v
    WHERE v.namespace = f.namespace AND v.function_name = f.name AND v.version = CAST(${param} AS INTEGER)
    AND v.config <> ''))`;
}

const ALIAS_COLUMNS = `namespace, function_name AS functionName, name, function_version AS functionVersion,
  additional_version AS additionalVersion, additional_weight AS additionalWeight, description,
  created_at AS createdAt, updated_at AS updatedAt`;

/** Creates an alias while the function exists, its versions exist and it is under the bound. */
const CREATE_SQL = `INSERT INTO function_aliases
  (namespace, function_name, name, function_version, additional_version, additional_weight, description, created_at, updated_at)
  SELECT f.namespace, f.name, ?3, ?4, ?5, ?6, ?7, ?8, ?8 FROM functions f
  WHERE f.namespace = ?1 AND f.name = ?2 AND ${versionExists("?4")} AND ${versionExists("?5")}
    AND (SELECT count(*) FROM function_aliases c WHERE c.namespace = ?1 AND c.function_name = ?2
         AND c.name <> '${DEFAULT_ALIAS}') < ?9
  ON CONFLICT (namespace, function_name, name) DO NOTHING
  RETURNING ${ALIAS_COLUMNS}`;

/** Updates an existing alias (not `$DEFAULT`) while its new versions exist. */
const UPDATE_SQL = `UPDATE function_aliases AS a SET function_version = ?4, additional_version = ?5, additional_weight = ?6,
    description = coalesce(?7, a.description), updated_at = ?8
  WHERE a.namespace = ?1 AND a.function_name = ?2 AND a.name = ?3
    AND EXISTS (SELECT 1 FROM functions f WHERE f.namespace = ?1 AND f.name = ?2
                AND ${versionExists("?4")} AND ${versionExists("?5")})
  RETURNING ${ALIAS_COLUMNS}`;

/** Writes `$DEFAULT`'s row (created on its first update) while the function and its versions exist. */
const UPSERT_DEFAULT_SQL = `INSERT INTO function_aliases
  (namespace, function_name, name, function_version, additional_version, additional_weight, description, created_at, updated_at)
  SELECT f.namespace, f.name, '${DEFAULT_ALIAS}', ?4, ?5, ?6, coalesce(?7, ''), f.created_at, ?8 FROM functions f
  WHERE f.namespace = ?1 AND f.name = ?2 AND ?3 = '${DEFAULT_ALIAS}' AND ${versionExists("?4")} AND ${versionExists("?5")}
  ON CONFLICT (namespace, function_name, name) DO UPDATE SET function_version = excluded.function_version,
    additional_version = excluded.additional_version, additional_weight = excluded.additional_weight,
    description = coalesce(?7, function_aliases.description), updated_at = excluded.updated_at
  RETURNING ${ALIAS_COLUMNS}`;

/** Deletes an alias while no trigger targets it. */
const DELETE_SQL = `DELETE FROM function_aliases
  WHERE namespace = ?1 AND function_name = ?2 AND name = ?3
    AND NOT EXISTS (SELECT 1 FROM triggers t WHERE t.namespace = ?1 AND t.function_name = ?2 AND t.qualifier = ?3)
  RETURNING name`;

/** The aliases of functions in D1 (see the file's header). */
export class FunctionAliases {
  constructor(private readonly env: Env) {}

  private async functionCreatedAt(namespace: string, name: string): Promise<number> {
    const row = await this.env.DB.prepare(
      "SELECT created_at AS createdAt FROM functions WHERE namespace = ?1 AND name = ?2",
    )
      .bind(namespace, name)
      .first<{ createdAt: number }>();
    if (!row) throw functionNotFound(namespace, name);
    return row.createdAt;
  }

  private async row(namespace: string, name: string, alias: string): Promise<FunctionAliasRow | undefined> {
    const row = await this.env.DB.prepare(
      `SELECT ${ALIAS_COLUMNS} FROM function_aliases WHERE namespace = ?1 AND function_name = ?2 AND name = ?3`,
    )
      .bind(namespace, name, alias)
      .first<FunctionAliasRow>();
    return row ?? undefined;
  }

  /** Why versions of a routing were refused: the first one the function does not have. */
  private async missingVersion(namespace: string, name: string, routing: AliasRouting): Promise<PlatformError> {
    for (const version of [routing.functionVersion, routing.additional?.version]) {
      if (version === undefined || version === LATEST || !isVersionNumber(version)) continue;
      const found = await this.env.DB.prepare(
        `SELECT 1 AS found FROM function_versions WHERE namespace = ?1 AND function_name = ?2 AND version = ?3 AND config <> ''`,
      )
        .bind(namespace, name, Number(version))
        .first();
      if (!found) return new PlatformError("QUALIFIER_NOT_FOUND", `function ${name} has no version ${version}`);
    }
    return new PlatformError("UNAVAILABLE", "the function's versions changed meanwhile; retry");
  }

  private bindings(namespace: string, name: string, alias: string, input: AliasInput): unknown[] {
    return [
      namespace,
      name,
      alias,
      input.functionVersion,
      input.additional?.version ?? null,
      input.additional?.weight ?? null,
      input.description ?? null,
      Date.now(),
    ];
  }

  /**
   * Creates an alias: INVALID_PARAMETER (`$DEFAULT`, bad routing), FUNCTION_NOT_FOUND,
   * QUALIFIER_NOT_FOUND (a version it names), ALIAS_EXISTS, ALIAS_LIMIT_EXCEEDED.
   */
  async create(namespace: string, name: string, alias: string, input: AliasInput): Promise<FunctionAlias> {
    if (alias === DEFAULT_ALIAS) {
      throw new PlatformError("ALIAS_EXISTS", `every function has the alias ${DEFAULT_ALIAS}; update it instead`);
    }
    if (!isAliasName(alias)) throw new PlatformError("INVALID_PARAMETER", `alias name: ${ALIAS_NAME_RULE}`);
    checkRouting(input);
    const row = await this.env.DB.prepare(CREATE_SQL)
      .bind(
        ...this.bindings(namespace, name, alias, { ...input, description: input.description ?? "" }),
        MAX_ALIASES_PER_FUNCTION,
      )
      .first<FunctionAliasRow>();
    forgetQualifiers(namespace, name);
    if (row) return aliasOf(row);
    await this.functionCreatedAt(namespace, name);
    if (await this.row(namespace, name, alias)) {
      throw new PlatformError("ALIAS_EXISTS", `function ${name} already has an alias ${alias}`);
    }
    const missing = await this.missingVersion(namespace, name, input);
    if (missing.code === "QUALIFIER_NOT_FOUND") throw missing;
    throw new PlatformError(
      "ALIAS_LIMIT_EXCEEDED",
      `function ${name} already has ${MAX_ALIASES_PER_FUNCTION} aliases (besides ${DEFAULT_ALIAS}); delete one first`,
    );
  }

  /**
   * Replaces an alias's routing (and its description when given): FUNCTION_NOT_FOUND,
   * QUALIFIER_NOT_FOUND (the alias, or a version it names), INVALID_PARAMETER (bad routing).
   */
  async update(namespace: string, name: string, alias: string, input: AliasInput): Promise<FunctionAlias> {
    checkRouting(input);
    const sql = alias === DEFAULT_ALIAS ? UPSERT_DEFAULT_SQL : UPDATE_SQL;
    const row = await this.env.DB.prepare(sql)
      .bind(...this.bindings(namespace, name, alias, input))
      .first<FunctionAliasRow>();
    forgetQualifiers(namespace, name);
    if (row) return aliasOf(row);
    await this.functionCreatedAt(namespace, name);
    if (alias !== DEFAULT_ALIAS && !(await this.row(namespace, name, alias))) throw aliasNotFound(name, alias);
    throw await this.missingVersion(namespace, name, input);
  }

  /** One alias (`$DEFAULT` always exists): FUNCTION_NOT_FOUND, QUALIFIER_NOT_FOUND. */
  async get(namespace: string, name: string, alias: string): Promise<FunctionAlias> {
    const createdAt = await this.functionCreatedAt(namespace, name);
    const row = await this.row(namespace, name, alias);
    if (row) return aliasOf(row);
    if (alias === DEFAULT_ALIAS) return virtualDefault(createdAt);
    throw aliasNotFound(name, alias);
  }

  /**
   * One page of the function's aliases: `$DEFAULT` first, then by name; `functionVersion` keeps
   * those routing to it (as main or additional version).
   */
  async list(
    namespace: string,
    name: string,
    query: { functionVersion?: string | undefined; offset: number; limit: number },
  ): Promise<{ total: number; aliases: FunctionAlias[] }> {
    const createdAt = await this.functionCreatedAt(namespace, name);
    // At most MAX_ALIASES_PER_FUNCTION + 1 rows: read whole, then paged here.
    const { results } = await this.env.DB.prepare(
      `SELECT ${ALIAS_COLUMNS} FROM function_aliases WHERE namespace = ?1 AND function_name = ?2 ORDER BY name`,
    )
      .bind(namespace, name)
      .all<FunctionAliasRow>();
    const aliases = results.map(aliasOf);
    const defaultAlias = aliases.find((alias) => alias.name === DEFAULT_ALIAS) ?? virtualDefault(createdAt);
    const all = [defaultAlias, ...aliases.filter((alias) => alias.name !== DEFAULT_ALIAS)];
    const kept =
      query.functionVersion === undefined
        ? all
        : all.filter(
            (alias) =>
              alias.functionVersion === query.functionVersion || alias.additional?.version === query.functionVersion,
          );
    return { total: kept.length, aliases: kept.slice(query.offset, query.offset + query.limit) };
  }

  /**
   * Deletes an alias: INVALID_PARAMETER for `$DEFAULT`, FUNCTION_NOT_FOUND, QUALIFIER_NOT_FOUND,
   * ALIAS_IN_USE while a trigger targets it.
   */
  async delete(namespace: string, name: string, alias: string): Promise<void> {
    if (alias === DEFAULT_ALIAS) {
      throw new PlatformError("INVALID_PARAMETER", `the alias ${DEFAULT_ALIAS} cannot be deleted`);
    }
    await this.functionCreatedAt(namespace, name);
    const deleted = await this.env.DB.prepare(DELETE_SQL).bind(namespace, name, alias).first();
    forgetQualifiers(namespace, name);
    if (deleted) return;
    if (!(await this.row(namespace, name, alias))) throw aliasNotFound(name, alias);
    const { results } = await this.env.DB.prepare(
      `SELECT type || ' ' || name AS label FROM triggers WHERE namespace = ?1 AND function_name = ?2 AND qualifier = ?3
       ORDER BY type, name LIMIT 5`,
    )
      .bind(namespace, name, alias)
      .all<{ label: string }>();
    throw new PlatformError(
      "ALIAS_IN_USE",
      `alias ${alias} of function ${name} is targeted by trigger(s) ${results.map((r) => r.label).join(", ") || "(changed meanwhile; retry)"}; delete them or point them elsewhere first`,
    );
  }
}

/** An alias's routing for the invoke path, cached (qualifier-cache.ts); undefined when it does not exist. */
export function cachedAliasRouting(
  env: Env,
  namespace: string,
  name: string,
  alias: string,
): Promise<AliasRouting | undefined> {
  return cachedQualifierLookup(namespace, name, `a/${alias}`, async () => {
    const row = await env.DB.prepare(
      `SELECT ${ALIAS_COLUMNS} FROM function_aliases WHERE namespace = ?1 AND function_name = ?2 AND name = ?3`,
    )
      .bind(namespace, name, alias)
      .first<FunctionAliasRow>();
    if (row) {
      const found = aliasOf(row);
      return { functionVersion: found.functionVersion, additional: found.additional };
    }
    return alias === DEFAULT_ALIAS ? { functionVersion: LATEST } : undefined;
  });
}
