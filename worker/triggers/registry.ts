// The trigger registry: create, read, list, update and delete the `triggers` rows of a function
// (D1), with the bounds every trigger type shares; each type checks its own TriggerDesc (types.ts)
// and a timer's firing object is armed or disarmed with its row.
import { and, asc, count, desc, eq, inArray, or, type SQL, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { type TriggerRow, triggers } from "../db/schema";
import { aliasNotFound, DEFAULT_ALIAS } from "../functions/aliases";
import { isQualifier, MAX_QUALIFIER_CHARS, QUALIFIER_RULE, resolveRoute } from "../functions/qualifiers";
import { FunctionRegistry, functionNotFound } from "../functions/registry";
import { isVersionNumber, LATEST, versionNotFound } from "../functions/versions";
import { PlatformError, unwrap } from "../shared/errors";
import { timerTriggerStub } from "../shared/objects";
import { DEFAULT_TRIGGER_QUALIFIER, TRIGGER_TYPES, type TriggerType } from "./model";
import { sameTimerConfig, timerConfigOf } from "./timer";
import { PREPARE_TRIGGER } from "./types";

/** Most triggers one function may have (all types and qualifiers together). */
export const MAX_TRIGGERS_PER_FUNCTION = 50;
/**
 * Most timer triggers one namespace may have (on or off, across its functions): each enabled one
 * is a Durable Object alarm and an invocation per tick.
 */
export const MAX_TIMER_TRIGGERS_PER_NAMESPACE = 100;
/** A trigger name: 1-100 letters, digits, - or _, starting with a letter. */
export const TRIGGER_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,99}$/;
/** The trigger name rule, as error messages and the documentation state it. */
export const TRIGGER_NAME_RULE = "1-100 letters, digits, - or _, starting with a letter";
/** Longest trigger Description, in characters. */
export const MAX_TRIGGER_DESCRIPTION_CHARS = 1000;
/** Largest CustomArgument (a timer's event Message), in UTF-8 bytes. */
export const MAX_CUSTOM_ARGUMENT_BYTES = 4096;
/** Longest TriggerDesc as sent, in characters (the longest type-specific one, http's CorsConfig, fits). */
export const MAX_TRIGGER_DESC_CHARS = 4096;
/** True for a qualifier a trigger may target: `$LATEST`, `$DEFAULT`, a version number or an alias name. */
export function isTriggerQualifier(value: string): boolean {
  return value.length <= MAX_QUALIFIER_CHARS && isQualifier(value);
}
/** The qualifier rule, as error messages state it. */
export const TRIGGER_QUALIFIER_RULE = QUALIFIER_RULE;
/** Largest page of ListTriggers / the REST list. */
export const MAX_TRIGGERS_LISTED = 100;
/** Values one list filter may carry. */
export const MAX_TRIGGER_FILTER_VALUES = 20;

/** A new trigger, as CreateTrigger and the REST route give it. */
export interface CreateTriggerInput {
  name: string;
  type: TriggerType;
  /** Version or alias invoked; DEFAULT_TRIGGER_QUALIFIER when absent. */
  qualifier?: string | undefined;
  triggerDesc?: string | undefined;
  /** On when absent. */
  enabled?: boolean | undefined;
  /** Timers only: the event's Message. */
  customArgument?: string | undefined;
  description?: string | undefined;
}

/** A change of a trigger: each absent field is left as it is; an empty string clears a text. */
export interface UpdateTriggerInput {
  enabled?: boolean | undefined;
  triggerDesc?: string | undefined;
  customArgument?: string | undefined;
  description?: string | undefined;
}

/** Which trigger: by function, type and name; the qualifier, when given, must be the trigger's. */
export interface TriggerKey {
  namespace: string;
  functionName: string;
  type: TriggerType;
  name: string;
  qualifier?: string | undefined;
}

/** A page request of a function's triggers (SCF's ListTriggers). */
export interface TriggerListQuery {
  offset: number;
  limit: number;
  orderBy: "add_time" | "mod_time";
  order: "ASC" | "DESC";
  /** Each filter keeps the triggers matching any of its values (Description: containing it). */
  qualifiers?: string[] | undefined;
  names?: string[] | undefined;
  descriptions?: string[] | undefined;
  types?: TriggerType[] | undefined;
}

/** The error for a trigger that is not there (or is another namespace's). */
export function triggerNotFound(key: Pick<TriggerKey, "functionName" | "type" | "name">): PlatformError {
  return new PlatformError(
    "TRIGGER_NOT_FOUND",
    `trigger ${key.name} of type ${key.type} not found on function ${key.functionName}`,
  );
}

/** True when `value` is a trigger type. */
export function isTriggerType(value: string): value is TriggerType {
  return (TRIGGER_TYPES as readonly string[]).includes(value);
}

function checkName(name: string): void {
  if (!TRIGGER_NAME_PATTERN.test(name))
    throw new PlatformError("INVALID_PARAMETER", `TriggerName: ${TRIGGER_NAME_RULE}`);
}

function checkDescription(description: string | undefined): void {
  if (description !== undefined && description.length > MAX_TRIGGER_DESCRIPTION_CHARS) {
    throw new PlatformError("INVALID_PARAMETER", `Description: at most ${MAX_TRIGGER_DESCRIPTION_CHARS} characters`);
  }
}

function checkTriggerDesc(triggerDesc: string | undefined): void {
  if (triggerDesc !== undefined && triggerDesc.length > MAX_TRIGGER_DESC_CHARS) {
    throw new PlatformError("INVALID_PARAMETER", `TriggerDesc: at most ${MAX_TRIGGER_DESC_CHARS} characters`);
  }
}

/** CustomArgument: timers only (an empty one is no argument), at most MAX_CUSTOM_ARGUMENT_BYTES. */
function checkCustomArgument(type: TriggerType, customArgument: string | undefined): void {
  if (customArgument === undefined) return;
  if (type !== "timer" && customArgument !== "") {
    throw new PlatformError("INVALID_PARAMETER", "CustomArgument: only timer triggers take one");
  }
  if (new TextEncoder().encode(customArgument).byteLength > MAX_CUSTOM_ARGUMENT_BYTES) {
    throw new PlatformError("INVALID_PARAMETER", `CustomArgument: at most ${MAX_CUSTOM_ARGUMENT_BYTES} bytes`);
  }
}

/**
 * Refuses a qualifier the function does not have: INVALID_PARAMETER (malformed), QUALIFIER_NOT_FOUND
 * (no such version or alias), FUNCTION_NOT_FOUND. Resolved as an invocation resolves it.
 */
export async function checkQualifierExists(
  env: Env,
  namespace: string,
  functionName: string,
  qualifier: string,
): Promise<void> {
  await resolveRoute(env, namespace, functionName, qualifier);
}

/** True for D1's refusal of a second row with the same (namespace, function, type, name). */
function isUniqueViolation(error: unknown): boolean {
  return error instanceof Error && /UNIQUE constraint failed/i.test(`${error.message} ${String(error.cause ?? "")}`);
}

/** The triggers of a function, in D1. */
export class TriggerRegistry {
  private readonly db;

  constructor(private readonly env: Env) {
    this.db = drizzle(env.DB);
  }

  /**
   * Creates a trigger: the function must exist, the name be free for its type, the qualifier
   * exist and the type accept the TriggerDesc; at most MAX_TRIGGERS_PER_FUNCTION per function and
   * MAX_TIMER_TRIGGERS_PER_NAMESPACE timers per namespace. The function's and the qualifier's
   * existence and both counts are checked in the INSERT's own statement, so a concurrent
   * DeleteFunction or DeleteAlias cannot leave a trigger on something gone. An enabled timer is
   * armed before answering.
   */
  async create(namespace: string, functionName: string, input: CreateTriggerInput): Promise<TriggerRow> {
    checkName(input.name);
    checkDescription(input.description);
    checkTriggerDesc(input.triggerDesc);
    checkCustomArgument(input.type, input.customArgument);
    const qualifier = input.qualifier ?? DEFAULT_TRIGGER_QUALIFIER;
    // A cached first answer (FUNCTION_NOT_FOUND, QUALIFIER_NOT_FOUND, a malformed qualifier); the
    // INSERT below decides.
    await checkQualifierExists(this.env, namespace, functionName, qualifier);
    const setup = await PREPARE_TRIGGER[input.type](this.env, {
      namespace,
      functionName,
      triggerName: input.name,
      triggerDesc: input.triggerDesc,
    });
    const now = Date.now();
    const row: TriggerRow = {
      id: crypto.randomUUID(),
      namespace,
      functionName,
      name: input.name,
      type: input.type,
      qualifier,
      triggerDesc: setup.triggerDesc,
      enabled: input.enabled ?? true,
      customArgument: input.customArgument ?? "",
      description: input.description ?? "",
      source: setup.source,
      createdAt: now,
      updatedAt: now,
    };
    await this.insert(row);
    try {
      await this.syncTimer(row, "arm");
    } catch (error) {
      // A timer that could not be armed is not created: its row would show a trigger that never fires.
      await this.db.delete(triggers).where(eq(triggers.id, row.id));
      throw error;
    }
    return row;
  }

  /**
   * Inserts a new trigger's row when its function and qualifier exist and the bounds allow it, all
   * in one statement; otherwise answers why not, as the same transaction saw it.
   */
  private async insert(row: TriggerRow): Promise<void> {
    const functionExists = "EXISTS (SELECT 1 FROM functions WHERE namespace = ?2 AND name = ?3)";
    const qualifierExists = `(?6 IN (?17, ?18)
      OR EXISTS (SELECT 1 FROM function_versions WHERE namespace = ?2 AND function_name = ?3 AND version = ?16)
      OR EXISTS (SELECT 1 FROM function_aliases WHERE namespace = ?2 AND function_name = ?3 AND name = ?6))`;
    const functionTriggers = "(SELECT count(*) FROM triggers WHERE namespace = ?2 AND function_name = ?3)";
    const namespaceTimers = "(SELECT count(*) FROM triggers WHERE namespace = ?2 AND type = 'timer')";
    const values = [
      row.id,
      row.namespace,
      row.functionName,
      row.name,
      row.type,
      row.qualifier,
      row.triggerDesc,
      row.enabled ? 1 : 0,
      row.customArgument,
      row.description,
      row.source,
      row.createdAt,
      row.updatedAt,
      MAX_TRIGGERS_PER_FUNCTION,
      MAX_TIMER_TRIGGERS_PER_NAMESPACE,
      isVersionNumber(row.qualifier) ? Number(row.qualifier) : null,
      LATEST,
      DEFAULT_ALIAS,
    ];
    let results: D1Result<Record<string, unknown>>[];
    try {
      results = await this.env.DB.batch<Record<string, unknown>>([
        this.env.DB.prepare(
          `INSERT INTO triggers (id, namespace, function_name, name, type, qualifier, trigger_desc, enabled,
             custom_argument, description, source, created_at, updated_at)
           SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13
           WHERE ${functionExists} AND ${qualifierExists} AND ${functionTriggers} < ?14
             AND (?5 <> 'timer' OR ${namespaceTimers} < ?15)`,
        ).bind(...values),
        // Why nothing was inserted (looked at only then), as the same transaction saw it.
        this.env.DB.prepare(
          `SELECT ${functionExists} AS function_exists, ${qualifierExists} AS qualifier_exists,
             ${functionTriggers} AS function_triggers, ${namespaceTimers} AS namespace_timers`,
        ).bind(...values),
      ]);
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new PlatformError(
          "TRIGGER_EXISTS",
          `trigger name ${row.name} is in use by a ${row.type} trigger of function ${row.functionName}`,
        );
      }
      throw error;
    }
    if ((results[0]?.meta.changes ?? 0) > 0) return;
    const why = results[1]?.results[0] as
      | { function_exists: number; qualifier_exists: number; function_triggers: number; namespace_timers: number }
      | undefined;
    if (!why?.function_exists) throw functionNotFound(row.namespace, row.functionName);
    if (!why.qualifier_exists) {
      throw isVersionNumber(row.qualifier)
        ? versionNotFound(row.functionName, row.qualifier)
        : aliasNotFound(row.functionName, row.qualifier);
    }
    if (why.function_triggers >= MAX_TRIGGERS_PER_FUNCTION) {
      throw new PlatformError(
        "TRIGGER_LIMIT_EXCEEDED",
        `function ${row.functionName} already has ${MAX_TRIGGERS_PER_FUNCTION} triggers, the most allowed`,
      );
    }
    throw new PlatformError(
      "TRIGGER_LIMIT_EXCEEDED",
      `namespace ${row.namespace} already has ${MAX_TIMER_TRIGGERS_PER_NAMESPACE} timer triggers, the most one namespace may have (MAX_TIMER_TRIGGERS_PER_NAMESPACE)`,
    );
  }

  /** One trigger, or TRIGGER_NOT_FOUND (FUNCTION_NOT_FOUND when the function itself is not there). */
  async get(key: TriggerKey): Promise<TriggerRow> {
    await new FunctionRegistry(this.env).get(key.namespace, key.functionName);
    const row = await this.db
      .select()
      .from(triggers)
      .where(
        and(
          eq(triggers.namespace, key.namespace),
          eq(triggers.functionName, key.functionName),
          eq(triggers.type, key.type),
          eq(triggers.name, key.name),
        ),
      )
      .get();
    if (!row || (key.qualifier !== undefined && row.qualifier !== key.qualifier)) throw triggerNotFound(key);
    return row;
  }

  /** A page of a function's triggers and how many match (FUNCTION_NOT_FOUND for an unknown function). */
  async list(
    namespace: string,
    functionName: string,
    query: TriggerListQuery,
  ): Promise<{ total: number; triggers: TriggerRow[] }> {
    await new FunctionRegistry(this.env).get(namespace, functionName);
    const conditions: (SQL | undefined)[] = [
      eq(triggers.namespace, namespace),
      eq(triggers.functionName, functionName),
    ];
    if (query.qualifiers?.length) conditions.push(inArray(triggers.qualifier, query.qualifiers));
    if (query.names?.length) conditions.push(inArray(triggers.name, query.names));
    if (query.types?.length) conditions.push(inArray(triggers.type, query.types));
    if (query.descriptions?.length) {
      conditions.push(or(...query.descriptions.map((text) => sql`instr(${triggers.description}, ${text}) > 0`)));
    }
    const where = and(...conditions);
    const column = query.orderBy === "add_time" ? triggers.createdAt : triggers.updatedAt;
    const direction = query.order === "ASC" ? asc : desc;
    const [rows, totals] = await Promise.all([
      this.db
        .select()
        .from(triggers)
        .where(where)
        .orderBy(direction(column), asc(triggers.type), asc(triggers.name))
        .limit(query.limit)
        .offset(query.offset),
      this.db.select({ total: count() }).from(triggers).where(where),
    ]);
    return { total: totals[0]?.total ?? 0, triggers: rows };
  }

  /**
   * Changes a trigger's switch, TriggerDesc (checked again by its type), CustomArgument (timers)
   * or Description. A timer is re-armed when it is switched on or its cron changes, disarmed when
   * switched off.
   */
  async update(key: TriggerKey, input: UpdateTriggerInput): Promise<TriggerRow> {
    checkDescription(input.description);
    checkTriggerDesc(input.triggerDesc);
    checkCustomArgument(key.type, input.customArgument);
    const existing = await this.get(key);
    let setup: { triggerDesc: string; source: string | null } | undefined;
    if (input.triggerDesc !== undefined) {
      setup = await PREPARE_TRIGGER[key.type](this.env, {
        namespace: key.namespace,
        functionName: key.functionName,
        triggerName: key.name,
        triggerDesc: input.triggerDesc,
        existing,
      });
    }
    const row: TriggerRow = {
      ...existing,
      enabled: input.enabled ?? existing.enabled,
      triggerDesc: setup?.triggerDesc ?? existing.triggerDesc,
      source: setup ? setup.source : existing.source,
      customArgument: input.customArgument ?? existing.customArgument,
      description: input.description ?? existing.description,
      updatedAt: Math.max(Date.now(), existing.updatedAt + 1),
    };
    const updated = await this.db
      .update(triggers)
      .set({
        enabled: row.enabled,
        triggerDesc: row.triggerDesc,
        source: row.source,
        customArgument: row.customArgument,
        description: row.description,
        updatedAt: row.updatedAt,
      })
      .where(eq(triggers.id, existing.id))
      .returning({ id: triggers.id });
    if (updated.length === 0) throw triggerNotFound(key);
    // Switching on an enabled timer again re-arms it too: a cheap repair should its alarm be lost.
    // A timer keeps what it fires with: a changed CustomArgument is pushed to it.
    const rearm =
      input.enabled === true || row.enabled !== existing.enabled || row.triggerDesc !== existing.triggerDesc;
    if (rearm) await this.syncTimer(row, "arm");
    else if (row.customArgument !== existing.customArgument) await this.syncTimer(row, "update");
    return row;
  }

  /**
   * Deletes a trigger. A timer is disarmed before its row goes (so it never fires after the
   * answer) and again after, so that an arming racing this delete (an update's) is undone too.
   */
  async delete(key: TriggerKey): Promise<void> {
    const existing = await this.get(key);
    const timer = existing.type === "timer" ? timerTriggerStub(this.env, existing.id) : undefined;
    await timer?.disarm();
    await this.db.delete(triggers).where(eq(triggers.id, existing.id));
    await timer?.disarm();
  }

  /**
   * Pushes a timer row to its object: an enabled one armed from now on ("arm") or given its new
   * configuration keeping its schedule ("update"), a disabled one disarmed; other types have none.
   * Then the row is read back once: when a concurrent change (a delete, a switch, another update)
   * made it differ from what was pushed, the row as it now is gets pushed instead.
   */
  private async syncTimer(row: TriggerRow, mode: "arm" | "update"): Promise<void> {
    if (row.type !== "timer") return;
    await this.pushTimer(row, mode);
    const now = await this.db.select().from(triggers).where(eq(triggers.id, row.id)).get();
    if (!now) {
      await timerTriggerStub(this.env, row.id).disarm();
      return;
    }
    if (now.enabled === row.enabled && sameTimerConfig(timerConfigOf(now), timerConfigOf(row))) return;
    await this.pushTimer(now, now.enabled !== row.enabled || now.triggerDesc !== row.triggerDesc ? "arm" : "update");
  }

  private async pushTimer(row: TriggerRow, mode: "arm" | "update"): Promise<void> {
    const stub = timerTriggerStub(this.env, row.id);
    if (!row.enabled) await stub.disarm();
    else if (mode === "arm") unwrap(await stub.arm(timerConfigOf(row)));
    else unwrap(await stub.update(timerConfigOf(row)));
  }
}
