// Version and alias actions (PublishVersion, ListVersionByFunction, DeleteFunctionVersion,
// CreateAlias, UpdateAlias, GetAlias, ListAliases, DeleteAlias): Tencent parameters translated to
// the version and alias services, and their answers to SCF's shapes. Also the qualified lookup
// GetFunction uses for its `Qualifier`.
import { z } from "zod";
import {
  ALIAS_NAME_PATTERN,
  ALIAS_NAME_RULE,
  additionalOf,
  aliasRefSchema,
  DEFAULT_ALIAS,
  type FunctionAlias,
  FunctionAliases,
  MAX_ALIAS_DESCRIPTION_CHARS,
  MAX_ALIAS_LIST_LIMIT,
  routingConfigSchema,
} from "../functions/aliases";
import { isAliasQualifier, MAX_QUALIFIER_CHARS } from "../functions/qualifiers";
import {
  type FunctionVersion,
  FunctionVersions,
  LATEST,
  MAX_VERSION_DESCRIPTION_CHARS,
  MAX_VERSION_LIST_LIMIT,
  versionRefSchema,
} from "../functions/versions";
import { describeIssues } from "../shared/validation";
import { tcTime } from "./envelope";
import { type Action, functionNameParam, namespaceOf, namespaceParam, parseParams, TcApiError } from "./params";

/** A version reference parameter (`$LATEST` or a number), named `label` in its errors. */
function versionParam(label: string) {
  return z
    .string()
    .max(16, `${label}: ${LATEST} or a version number`)
    .refine(
      (value) => versionRefSchema.safeParse(value).success,
      `${label}: ${LATEST} or a version number (1, 2, ...)`,
    );
}

/** An alias name parameter (`$DEFAULT` or SCF's name rule). */
const aliasNameParam = z
  .string()
  .max(64, `Name: ${DEFAULT_ALIAS} or ${ALIAS_NAME_RULE}`)
  .refine((value) => aliasRefSchema.safeParse(value).success, `Name: ${DEFAULT_ALIAS} or ${ALIAS_NAME_RULE}`);

/** SCF's RoutingConfig: weighted routing only (rule routing, AddtionVersionMatchs, is refused). */
const routingConfigParam = z.object({
  AdditionalVersionWeights: z
    .array(z.object({ Version: z.string().max(16), Weight: z.number() }))
    .max(10)
    .optional(),
  AddtionVersionMatchs: z.array(z.unknown()).max(10).optional(),
});

/** The routing of a RoutingConfig parameter, checked by the alias rules (InvalidParameterValue.RoutingConfig). */
function routingOf(value: z.infer<typeof routingConfigParam> | undefined) {
  if (value?.AddtionVersionMatchs && value.AddtionVersionMatchs.length > 0) {
    throw new TcApiError(
      "UnsupportedOperation.RoutingConfig",
      "rule routing (RoutingConfig.AddtionVersionMatchs) is not supported; use AdditionalVersionWeights",
    );
  }
  const parsed = routingConfigSchema.safeParse({
    additionalVersionWeights: (value?.AdditionalVersionWeights ?? []).map((entry) => ({
      version: entry.Version,
      weight: entry.Weight,
    })),
  });
  if (!parsed.success) throw new TcApiError("InvalidParameterValue.RoutingConfig", describeIssues(parsed.error));
  return additionalOf(parsed.data);
}

/** An alias in SCF's shape (GetAlias, ListAliases). */
function aliasFields(alias: FunctionAlias) {
  return {
    Name: alias.name,
    FunctionVersion: alias.functionVersion,
    RoutingConfig: {
      AdditionalVersionWeights: alias.additional
        ? [{ Version: alias.additional.version, Weight: alias.additional.weight }]
        : [],
      AddtionVersionMatchs: [],
    },
    Description: alias.description,
    AddTime: tcTime(alias.createdAt),
    ModTime: tcTime(alias.updatedAt),
  };
}

/** A version in SCF's list shape (ListVersionByFunction's Versions). */
function versionFields(version: FunctionVersion) {
  return {
    Version: version.version,
    Description: version.description,
    AddTime: tcTime(version.createdAt),
    ModTime: tcTime(version.modifiedAt),
    Status: "Active",
  };
}

/**
 * The version a GetFunction `Qualifier` names: `$LATEST` (also when absent), a version number, or
 * an alias (its main version). ResourceNotFound.Function / ResourceNotFound.Qualifier.
 */
export async function qualifiedFunction(
  env: Env,
  namespace: string,
  name: string,
  qualifier: string | undefined,
): Promise<FunctionVersion> {
  const versions = new FunctionVersions(env);
  if (qualifier === undefined || qualifier === "" || !isAliasQualifier(qualifier)) {
    return versions.get(namespace, name, qualifier || LATEST);
  }
  const alias = await new FunctionAliases(env).get(namespace, name, qualifier);
  return versions.get(namespace, name, alias.functionVersion);
}

/** A Qualifier parameter of GetFunction / GetFunctionLogs: a version or an alias, bounded. */
export const qualifierParam = z
  .string()
  .max(MAX_QUALIFIER_CHARS, `Qualifier: at most ${MAX_QUALIFIER_CHARS} characters`);

/** PublishVersion: freezes `$LATEST` as the next version. */
export const publishVersion: Action = async ({ env, principal, params }) => {
  const p = parseParams(
    z.object({
      FunctionName: functionNameParam,
      Namespace: namespaceParam.optional(),
      Description: z
        .string()
        .max(MAX_VERSION_DESCRIPTION_CHARS, `Description: at most ${MAX_VERSION_DESCRIPTION_CHARS} characters`)
        .optional(),
    }),
    params,
  );
  const namespace = namespaceOf(principal, p.Namespace);
  const version = await new FunctionVersions(env).publish(namespace, p.FunctionName, {
    description: p.Description ?? "",
  });
  return {
    FunctionVersion: version.version,
    CodeSize: version.row.codeSize,
    MemorySize: version.row.memoryMb,
    Description: version.description,
    Handler: version.row.handler,
    Timeout: version.row.timeoutSeconds,
    Runtime: version.row.runtime,
    Namespace: namespace,
  };
};

/** ListVersionByFunction: `$LATEST` and the published versions, a page of them. */
export const listVersionByFunction: Action = async ({ env, principal, params }) => {
  const p = parseParams(
    z.object({
      FunctionName: functionNameParam,
      Namespace: namespaceParam.optional(),
      Offset: z.number().int().min(0).max(1_000_000).default(0),
      Limit: z.number().int().min(1).max(MAX_VERSION_LIST_LIMIT).default(20),
      Order: z.enum(["ASC", "DESC"]).default("DESC"),
      // Published versions never change, so both orders are the same.
      OrderBy: z.enum(["AddTime", "ModTime"]).optional(),
    }),
    params,
  );
  const namespace = namespaceOf(principal, p.Namespace);
  const page = await new FunctionVersions(env).list(namespace, p.FunctionName, {
    order: p.Order,
    offset: p.Offset,
    limit: p.Limit,
  });
  return {
    FunctionVersion: page.versions.map((version) => version.version),
    Versions: page.versions.map(versionFields),
    TotalCount: page.total,
  };
};

/** DeleteFunctionVersion: deletes a published version that nothing routes to. */
export const deleteFunctionVersion: Action = async ({ env, principal, params }) => {
  const p = parseParams(
    z.object({
      FunctionName: functionNameParam,
      Qualifier: versionParam("Qualifier"),
      Namespace: namespaceParam.optional(),
      ForceDelete: z.union([z.enum(["true", "false"]), z.boolean()]).optional(),
    }),
    params,
  );
  const namespace = namespaceOf(principal, p.Namespace);
  if (p.Qualifier === LATEST) {
    throw new TcApiError("InvalidParameterValue.Qualifier", `${LATEST} cannot be deleted; delete the function instead`);
  }
  const force = p.ForceDelete === true || p.ForceDelete === "true";
  await new FunctionVersions(env).delete(namespace, p.FunctionName, p.Qualifier, force);
  return {};
};

const descriptionParam = z
  .string()
  .max(MAX_ALIAS_DESCRIPTION_CHARS, `Description: at most ${MAX_ALIAS_DESCRIPTION_CHARS} characters`);

/** CreateAlias: a new alias routing to a version (and optionally a weighted second one). */
export const createAlias: Action = async ({ env, principal, params }) => {
  const p = parseParams(
    z.object({
      Name: z.string().max(64, `Name: ${ALIAS_NAME_RULE}`),
      FunctionName: functionNameParam,
      FunctionVersion: versionParam("FunctionVersion"),
      Namespace: namespaceParam.optional(),
      RoutingConfig: routingConfigParam.optional(),
      Description: descriptionParam.optional(),
    }),
    params,
  );
  const namespace = namespaceOf(principal, p.Namespace);
  if (p.Name === DEFAULT_ALIAS) {
    throw new TcApiError("InvalidParameterValue.Name", `every function has the alias ${DEFAULT_ALIAS}; update it`);
  }
  if (!ALIAS_NAME_PATTERN.test(p.Name)) throw new TcApiError("InvalidParameterValue.Name", `Name: ${ALIAS_NAME_RULE}`);
  await new FunctionAliases(env).create(namespace, p.FunctionName, p.Name, {
    functionVersion: p.FunctionVersion,
    additional: routingOf(p.RoutingConfig),
    description: p.Description ?? "",
  });
  return {};
};

/** UpdateAlias: an alias's routing as a whole (no RoutingConfig: the main version only). */
export const updateAlias: Action = async ({ env, principal, params }) => {
  const p = parseParams(
    z.object({
      FunctionName: functionNameParam,
      Name: aliasNameParam,
      FunctionVersion: versionParam("FunctionVersion"),
      Namespace: namespaceParam.optional(),
      RoutingConfig: routingConfigParam.optional(),
      Description: descriptionParam.optional(),
    }),
    params,
  );
  const namespace = namespaceOf(principal, p.Namespace);
  await new FunctionAliases(env).update(namespace, p.FunctionName, p.Name, {
    functionVersion: p.FunctionVersion,
    additional: routingOf(p.RoutingConfig),
    description: p.Description,
  });
  return {};
};

/** GetAlias: one alias (`$DEFAULT` always exists). */
export const getAlias: Action = async ({ env, principal, params }) => {
  const p = parseParams(
    z.object({ FunctionName: functionNameParam, Name: aliasNameParam, Namespace: namespaceParam.optional() }),
    params,
  );
  const namespace = namespaceOf(principal, p.Namespace);
  return aliasFields(await new FunctionAliases(env).get(namespace, p.FunctionName, p.Name));
};

/** SCF's ListAliases Offset/Limit: strings in the SDK, numbers accepted too. */
function countParam(label: string, min: number, max: number) {
  return z
    .union([z.number(), z.string().max(10).regex(/^\d+$/, `${label}: a whole number`).transform(Number)])
    .pipe(
      z
        .number()
        .int(`${label}: a whole number`)
        .min(min, `${label}: ${min}-${max}`)
        .max(max, `${label}: ${min}-${max}`),
    );
}

/** ListAliases: the function's aliases, `$DEFAULT` first; FunctionVersion keeps those routing to it. */
export const listAliases: Action = async ({ env, principal, params }) => {
  const p = parseParams(
    z.object({
      FunctionName: functionNameParam,
      Namespace: namespaceParam.optional(),
      FunctionVersion: versionParam("FunctionVersion").optional(),
      Offset: countParam("Offset", 0, 1_000_000).optional(),
      Limit: countParam("Limit", 1, MAX_ALIAS_LIST_LIMIT).optional(),
    }),
    params,
  );
  const namespace = namespaceOf(principal, p.Namespace);
  const page = await new FunctionAliases(env).list(namespace, p.FunctionName, {
    functionVersion: p.FunctionVersion,
    offset: p.Offset ?? 0,
    limit: p.Limit ?? 20,
  });
  return { Aliases: page.aliases.map(aliasFields), TotalCount: page.total };
};

/** DeleteAlias: deletes an alias no trigger targets (`$DEFAULT` cannot be deleted). */
export const deleteAlias: Action = async ({ env, principal, params }) => {
  const p = parseParams(
    z.object({ FunctionName: functionNameParam, Name: aliasNameParam, Namespace: namespaceParam.optional() }),
    params,
  );
  const namespace = namespaceOf(principal, p.Namespace);
  if (p.Name === DEFAULT_ALIAS) {
    throw new TcApiError("InvalidParameterValue.Alias", `the alias ${DEFAULT_ALIAS} cannot be deleted`);
  }
  await new FunctionAliases(env).delete(namespace, p.FunctionName, p.Name);
  return {};
};
