// Which D1 database holds a namespace's event index (the `events` and `event_tags` tables).
//
// One D1 database processes its queries one at a time, so one database for every namespace's index
// rows is the platform's single writer (ARCHITECTURE.md, "Scaling"). The index is split by
// namespace: INDEX_DATABASES maps namespaces to further D1 bindings (INDEX_DB_1, INDEX_DB_2, ...),
// every other namespace keeps its index in DB, which also holds the registry (functions,
// credentials, settings). A namespace's list, statistics and bulk operations read one database.
// Every index database takes the same migrations as DB; only its index tables are used.

import { configEntries } from "../shared/config-entries";
import { NAMESPACE_PATTERN, NAMESPACE_RULE } from "../shared/names";

/** An index database binding: INDEX_DB_1 to INDEX_DB_99. */
export const INDEX_DATABASE_BINDING = /^INDEX_DB_[1-9][0-9]?$/;
/** Namespaces INDEX_DATABASES may map, in all (entries past it are ignored, logged). */
export const MAX_MAPPED_NAMESPACES = 1_000;
/** Longest INDEX_DATABASES text read (the rest is ignored, logged). */
export const MAX_INDEX_DATABASES_CHARS = 64 * 1024;

/** What resolving an index database reads: DB, the mapping, and any INDEX_DB_n binding. */
export type IndexDatabaseEnv = { DB: D1Database; INDEX_DATABASES?: string };

/** The parsed mapping: namespace → binding, and what was ignored (each said once). */
export interface IndexDatabasePlan {
  byNamespace: ReadonlyMap<string, string>;
  problems: readonly string[];
}

/**
 * Parses INDEX_DATABASES: comma-separated `<binding>=<namespace>[|<namespace>...]` entries, the
 * binding one of INDEX_DB_1 to INDEX_DB_99 that `isBound` accepts. A namespace named twice keeps
 * its first binding; a malformed entry, an unbound binding and namespaces past
 * MAX_MAPPED_NAMESPACES are ignored (their namespaces stay in DB), each with a problem.
 */
export function parseIndexDatabases(
  text: string | undefined,
  isBound: (binding: string) => boolean,
): IndexDatabasePlan {
  const byNamespace = new Map<string, string>();
  const { entries, problems } = configEntries(text, "INDEX_DATABASES", MAX_INDEX_DATABASES_CHARS);
  for (const entry of entries) {
    const equals = entry.indexOf("=");
    const binding = equals < 0 ? entry : entry.slice(0, equals).trim();
    if (equals < 0 || !INDEX_DATABASE_BINDING.test(binding)) {
      problems.push(`INDEX_DATABASES entry "${entry.slice(0, 80)}" is not <INDEX_DB_n>=<namespace>[|...]: ignored`);
      continue;
    }
    if (!isBound(binding)) {
      problems.push(`INDEX_DATABASES names ${binding}, which is not a D1 binding of this Worker: ignored`);
      continue;
    }
    for (const part of entry.slice(equals + 1).split("|")) {
      const namespace = part.trim();
      if (namespace === "") continue;
      if (!NAMESPACE_PATTERN.test(namespace)) {
        problems.push(
          `INDEX_DATABASES names "${namespace.slice(0, 40)}", which is not a namespace (${NAMESPACE_RULE}): ignored`,
        );
        continue;
      }
      const earlier = byNamespace.get(namespace);
      if (earlier !== undefined) {
        if (earlier !== binding) problems.push(`INDEX_DATABASES maps ${namespace} twice: ${earlier} kept`);
        continue;
      }
      if (byNamespace.size >= MAX_MAPPED_NAMESPACES) {
        problems.push(
          `INDEX_DATABASES maps more than ${MAX_MAPPED_NAMESPACES} namespaces: ${namespace} and later ignored`,
        );
        return { byNamespace, problems };
      }
      byNamespace.set(namespace, binding);
    }
  }
  return { byNamespace, problems };
}

/** True for a D1 database binding (what `prepare` and `batch` can be called on). */
function isD1(value: unknown): value is D1Database {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as D1Database).prepare === "function" &&
    typeof (value as D1Database).batch === "function"
  );
}

function bindingOf(env: IndexDatabaseEnv, binding: string): D1Database | undefined {
  const value = (env as unknown as Record<string, unknown>)[binding];
  return isD1(value) ? value : undefined;
}

const plans = new WeakMap<object, { text: string | undefined; plan: IndexDatabasePlan }>();

/**
 * The environment's plan, parsed once per environment object and mapping text (an isolate's env is
 * one object); its problems are logged when parsed.
 */
export function indexDatabasePlan(env: IndexDatabaseEnv): IndexDatabasePlan {
  const known = plans.get(env);
  if (known !== undefined && known.text === env.INDEX_DATABASES) return known.plan;
  const plan = parseIndexDatabases(env.INDEX_DATABASES, (binding) => bindingOf(env, binding) !== undefined);
  for (const problem of plan.problems) console.error(problem);
  plans.set(env, { text: env.INDEX_DATABASES, plan });
  return plan;
}

/** The INDEX_DB_n bindings this Worker has, in name order. */
function boundIndexBindings(env: IndexDatabaseEnv): string[] {
  return Object.keys(env)
    .filter((key) => INDEX_DATABASE_BINDING.test(key) && bindingOf(env, key) !== undefined)
    .sort((a, b) => Number(a.slice(9)) - Number(b.slice(9)));
}

/** A namespace's index binding and database: its INDEX_DATABASES entry (bound: the plan checked), else DB. */
function resolveIndexDatabase(env: IndexDatabaseEnv, namespace: string): { binding: string; db: D1Database } {
  const binding = indexDatabasePlan(env).byNamespace.get(namespace);
  const db = binding !== undefined ? bindingOf(env, binding) : undefined;
  return binding !== undefined && db !== undefined ? { binding, db } : { binding: "DB", db: env.DB };
}

/** The name of the binding holding a namespace's index: its INDEX_DATABASES entry, else DB. */
export function indexBindingOf(env: IndexDatabaseEnv, namespace: string): string {
  return resolveIndexDatabase(env, namespace).binding;
}

/** The D1 database holding a namespace's index rows (read and written there only). */
export function indexDatabaseOf(env: IndexDatabaseEnv, namespace: string): D1Database {
  return resolveIndexDatabase(env, namespace).db;
}

/** One index database and the namespaces mapped to it (`undefined` for DB: every other one). */
export interface IndexDatabase {
  binding: string;
  db: D1Database;
  namespaces: readonly string[] | undefined;
}

/**
 * Every index database of this Worker: DB first, then each INDEX_DB_n binding, mapped or not (an
 * unmapped one may still hold rows of a namespace mapped to it before; the retention purge runs on
 * all of them).
 */
export function indexDatabases(env: IndexDatabaseEnv): IndexDatabase[] {
  const plan = indexDatabasePlan(env);
  const mapped = new Map<string, string[]>();
  for (const [namespace, binding] of plan.byNamespace) mapped.set(binding, [...(mapped.get(binding) ?? []), namespace]);
  const others = boundIndexBindings(env).map((binding) => ({
    binding,
    db: bindingOf(env, binding) as D1Database,
    namespaces: mapped.get(binding) ?? [],
  }));
  return [{ binding: "DB", db: env.DB, namespaces: undefined }, ...others];
}

/** Items grouped by the index database of their namespace, in first-seen order. */
export function groupByIndexDatabase<T>(
  env: IndexDatabaseEnv,
  items: readonly T[],
  namespaceOf: (item: T) => string,
): { binding: string; db: D1Database; items: T[] }[] {
  const groups = new Map<string, { binding: string; db: D1Database; items: T[] }>();
  for (const item of items) {
    const { binding, db } = resolveIndexDatabase(env, namespaceOf(item));
    const group = groups.get(binding);
    if (group) group.items.push(item);
    else groups.set(binding, { binding, db, items: [item] });
  }
  return [...groups.values()];
}
