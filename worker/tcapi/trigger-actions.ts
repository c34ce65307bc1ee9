// Trigger management actions (CreateTrigger, DeleteTrigger, UpdateTrigger, UpdateTriggerStatus,
// ListTriggers) and GetFunction's Triggers: Tencent parameters translated to the trigger
// registry's inputs, and trigger rows translated to SCF's Trigger / TriggerInfo models.
import { z } from "zod";
import type { TriggerRow } from "../db/schema";
import { toPlatformError } from "../shared/errors";
import { TRIGGER_TYPES } from "../triggers/model";
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
  type TriggerKey,
  TriggerRegistry,
} from "../triggers/registry";
import { wrappedCron } from "../triggers/timer";
import { triggerUrlOf } from "../triggers/types";
import { tcTime } from "./envelope";
import { type Action, functionNameParam, namespaceOf, namespaceParam, parseParams, TcApiError } from "./params";

/** Most Filters entries of one ListTriggers request. */
const MAX_TRIGGER_FILTERS = 10;

const triggerNameParam = z.string().regex(TRIGGER_NAME_PATTERN, `TriggerName: ${TRIGGER_NAME_RULE}`);
// A string first: a missing Type is MissingParameter, an unknown one InvalidParameterValue.Type.
const triggerTypeParam = z.string().pipe(z.enum(TRIGGER_TYPES));
const qualifierParam = z.string().refine(isTriggerQualifier, `Qualifier: ${TRIGGER_QUALIFIER_RULE}`);
/** SCF's switch: "OPEN" or "CLOSE" in, 1 or 0 out. */
const enableParam = z
  .string()
  .pipe(z.enum(["OPEN", "CLOSE"]))
  .transform((value) => value === "OPEN");
const triggerDescParam = z.string().max(MAX_TRIGGER_DESC_CHARS, `at most ${MAX_TRIGGER_DESC_CHARS} characters`);
const descriptionParam = z
  .string()
  .max(MAX_TRIGGER_DESCRIPTION_CHARS, `at most ${MAX_TRIGGER_DESCRIPTION_CHARS} characters`);
const customArgumentParam = z
  .string()
  .refine(
    (value) => new TextEncoder().encode(value).byteLength <= MAX_CUSTOM_ARGUMENT_BYTES,
    `at most ${MAX_CUSTOM_ARGUMENT_BYTES} bytes`,
  );

/** Fields whose domain errors get their own InvalidParameterValue.<Field> code. */
const FIELD_PREFIXES = ["TriggerDesc", "TriggerName", "CustomArgument", "Description", "Qualifier", "Type"];

/** Runs a registry call, naming the Tencent field of an INVALID_PARAMETER its message starts with. */
async function withFieldCodes<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    const known = toPlatformError(error);
    const field = FIELD_PREFIXES.find((prefix) => known?.message.startsWith(`${prefix}:`));
    if (known?.code === "INVALID_PARAMETER" && field) {
      throw new TcApiError(`InvalidParameterValue.${field}`, known.message);
    }
    throw error;
  }
}

/** A trigger in SCF's Trigger model (GetFunction Triggers, CreateTrigger TriggerInfo). */
export function tencentTrigger(row: TriggerRow, requestUrl: string | undefined) {
  const url = triggerUrlOf(requestUrl, row);
  return {
    AddTime: tcTime(row.createdAt),
    ModTime: tcTime(row.updatedAt),
    Type: row.type,
    TriggerDesc: row.type === "timer" ? wrappedCron(row.triggerDesc) : row.triggerDesc,
    TriggerName: row.name,
    Enable: row.enabled ? 1 : 0,
    CustomArgument: row.customArgument,
    AvailableStatus: "Available",
    ResourceId: row.id,
    BindStatus: "on",
    TriggerAttribute: "single",
    Qualifier: row.qualifier,
    Description: row.description,
    // This platform's extension: an http trigger's (function URL's) address.
    ...(url !== undefined ? { Url: url } : {}),
  };
}

/**
 * A function's triggers in SCF's Trigger model (GetFunction's Triggers), oldest first: every one, or
 * with a qualifier, those targeting that qualifier as it is named (a version or an alias).
 */
export async function functionTriggers(
  env: Env,
  namespace: string,
  functionName: string,
  requestUrl: string | undefined,
  qualifier?: string,
) {
  const page = await new TriggerRegistry(env).list(namespace, functionName, {
    offset: 0,
    limit: MAX_TRIGGERS_PER_FUNCTION,
    orderBy: "add_time",
    order: "ASC",
    ...(qualifier !== undefined ? { qualifiers: [qualifier] } : {}),
  });
  return page.triggers.map((row) => tencentTrigger(row, requestUrl));
}

/** The trigger a Delete/Update/UpdateTriggerStatus request names. */
const triggerTarget = {
  FunctionName: functionNameParam,
  Namespace: namespaceParam.optional(),
  TriggerName: triggerNameParam,
  Type: triggerTypeParam,
  // When given, it must be the trigger's qualifier; absent, the trigger is found by type and name.
  Qualifier: qualifierParam.optional(),
  // SCF needs it for COS triggers (to tell several of one bucket apart); names are unique here.
  TriggerDesc: triggerDescParam.optional(),
};

function keyOf(
  namespace: string,
  p: { FunctionName: string; TriggerName: string; Type: TriggerKey["type"]; Qualifier?: string | undefined },
): TriggerKey {
  return {
    namespace,
    functionName: p.FunctionName,
    type: p.Type,
    name: p.TriggerName,
    ...(p.Qualifier !== undefined ? { qualifier: p.Qualifier } : {}),
  };
}

/** CreateTrigger: a new trigger of a function, on by default, targeting `$DEFAULT` by default. */
export const createTrigger: Action = async ({ env, principal, params, requestUrl }) => {
  const p = parseParams(
    z.object({
      FunctionName: functionNameParam,
      Namespace: namespaceParam.optional(),
      TriggerName: triggerNameParam,
      Type: triggerTypeParam,
      TriggerDesc: triggerDescParam.optional(),
      Qualifier: qualifierParam.optional(),
      Enable: enableParam.optional(),
      CustomArgument: customArgumentParam.optional(),
      Description: descriptionParam.optional(),
    }),
    params,
  );
  const namespace = namespaceOf(principal, p.Namespace);
  const row = await withFieldCodes(() =>
    new TriggerRegistry(env).create(namespace, p.FunctionName, {
      name: p.TriggerName,
      type: p.Type,
      qualifier: p.Qualifier,
      triggerDesc: p.TriggerDesc,
      enabled: p.Enable,
      customArgument: p.CustomArgument,
      description: p.Description,
    }),
  );
  return { TriggerInfo: tencentTrigger(row, requestUrl) };
};

/** DeleteTrigger: removes a trigger (a timer never fires after the answer). */
export const deleteTrigger: Action = async ({ env, principal, params }) => {
  const p = parseParams(z.object(triggerTarget), params);
  await new TriggerRegistry(env).delete(keyOf(namespaceOf(principal, p.Namespace), p));
  return {};
};

/**
 * UpdateTrigger: switches a trigger on or off and changes its TriggerDesc, Description or
 * CustomArgument; an omitted field is left as it is, an empty Description or CustomArgument clears it.
 */
export const updateTrigger: Action = async ({ env, principal, params }) => {
  const p = parseParams(
    z.object({
      ...triggerTarget,
      Enable: enableParam.optional(),
      Description: descriptionParam.optional(),
      CustomArgument: customArgumentParam.optional(),
    }),
    params,
  );
  const key = keyOf(namespaceOf(principal, p.Namespace), p);
  await withFieldCodes(() =>
    new TriggerRegistry(env).update(key, {
      enabled: p.Enable,
      triggerDesc: p.TriggerDesc,
      description: p.Description,
      customArgument: p.CustomArgument,
    }),
  );
  return {};
};

/** UpdateTriggerStatus: switches a trigger on ("OPEN") or off ("CLOSE"). */
export const updateTriggerStatus: Action = async ({ env, principal, params }) => {
  const p = parseParams(z.object({ ...triggerTarget, Enable: enableParam }), params);
  await new TriggerRegistry(env).update(keyOf(namespaceOf(principal, p.Namespace), p), { enabled: p.Enable });
  return {};
};

/** ListTriggers' Filters: Qualifier and TriggerName match exactly, Description by containing the value. */
const filtersParam = z
  .array(
    z.object({
      Name: z.enum(["Qualifier", "TriggerName", "Description"]),
      Values: z.array(z.string().max(MAX_TRIGGER_DESCRIPTION_CHARS)).min(1).max(MAX_TRIGGER_FILTER_VALUES),
    }),
  )
  .max(MAX_TRIGGER_FILTERS);

/** The values of the Filters entries of one name (undefined when none names it). */
function filterValues(filters: z.infer<typeof filtersParam> | undefined, name: string): string[] | undefined {
  const entries = (filters ?? []).filter((filter) => filter.Name === name);
  return entries.length === 0 ? undefined : entries.flatMap((filter) => filter.Values);
}

/** ListTriggers: a page of a function's triggers (SCF's TriggerInfo) and how many match. */
export const listTriggers: Action = async ({ env, principal, params, requestUrl }) => {
  const p = parseParams(
    z.object({
      FunctionName: functionNameParam,
      Namespace: namespaceParam.optional(),
      Offset: z.number().int().min(0).default(0),
      Limit: z.number().int().min(1).max(MAX_TRIGGERS_LISTED).default(20),
      OrderBy: z.enum(["add_time", "mod_time"]).default("mod_time"),
      Order: z
        .enum(["ASC", "DESC", "asc", "desc"])
        .default("DESC")
        .transform((value) => value.toUpperCase() as "ASC" | "DESC"),
      Filters: filtersParam.optional(),
    }),
    params,
  );
  const page = await new TriggerRegistry(env).list(namespaceOf(principal, p.Namespace), p.FunctionName, {
    offset: p.Offset,
    limit: p.Limit,
    orderBy: p.OrderBy,
    order: p.Order,
    qualifiers: filterValues(p.Filters, "Qualifier"),
    names: filterValues(p.Filters, "TriggerName"),
    descriptions: filterValues(p.Filters, "Description"),
  });
  return {
    TotalCount: page.total,
    Triggers: page.triggers.map((row) => ({ ...tencentTrigger(row, requestUrl), BoundResources: "" })),
  };
};
