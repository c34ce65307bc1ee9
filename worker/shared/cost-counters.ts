/**
 * Diagnostics-only counters of the platform's billable operations (the bench's per-event costs,
 * issue 17): Durable Object calls (RPC methods and fetch on a stub, by binding), Durable Object
 * storage writes (SQL statements that write, KV put/delete calls and the keys they touch, alarm
 * sets and deletes) and D1 statements (each statement run, each statement of a batch, each exec).
 *
 * Nothing is installed unless DIAGNOSTICS_ENABLED is "true" (never in a deployment): then the
 * counters are installed once per isolate by patching the prototypes of the runtime's own
 * objects (a Durable Object namespace's get, DurableObjectStorage, SqlStorage, D1Database and
 * D1PreparedStatement), so every caller of every layer is counted at one place, and with
 * diagnostics off the platform runs the runtime's methods untouched (the only cost: one string
 * comparison in the hooks' callers).
 *
 * Scope: one isolate's counts. Locally (wrangler dev) the Worker and all its Durable Objects share
 * one isolate, so the counts cover the platform; in a deployment they would not (and are off).
 * Not counted: Queue sends, R2 and KV operations, storage reads (get, SELECT), and calls made
 * through a stub obtained before the counters were installed.
 */

/** The counters, as the diagnostics route returns them. */
export interface CostCounts {
  /** When the counters were installed (epoch ms), null while they are not. */
  installedAt: number | null;
  /** RPC method calls and fetches on Durable Object stubs, all bindings. */
  durableObjectCalls: number;
  /** The same, by binding (ASYNC_EVENT, SCHEDULER, INSTANCE, ...) and by `BINDING.method`. */
  durableObjectCallsByBinding: Record<string, number>;
  durableObjectCallsByMethod: Record<string, number>;
  /** SQL statements that write (INSERT, UPDATE, DELETE, REPLACE) in Durable Object storage. */
  storageSqlWrites: number;
  /** Schema statements (CREATE, DROP, ALTER) in Durable Object storage: counted apart, not as writes. */
  storageSqlSchema: number;
  /** KV-API writes: put/delete/deleteAll calls, and the keys they name. */
  storageKvWriteCalls: number;
  storageKvKeysWritten: number;
  /** setAlarm / deleteAlarm calls. */
  storageAlarmWrites: number;
  /** Storage writes of every kind: storageSqlWrites + storageKvWriteCalls + storageAlarmWrites. */
  storageWrites: number;
  /** D1 statements executed (a batch of n counts n) and the D1 round trips that carried them. */
  d1Statements: number;
  d1Calls: number;
  /** D1 rows written, from each result's meta (as D1 bills them). */
  d1RowsWritten: number;
}

type Counts = Omit<CostCounts, "installedAt" | "storageWrites">;

function zero(): Counts {
  return {
    durableObjectCalls: 0,
    durableObjectCallsByBinding: {},
    durableObjectCallsByMethod: {},
    storageSqlWrites: 0,
    storageSqlSchema: 0,
    storageKvWriteCalls: 0,
    storageKvKeysWritten: 0,
    storageAlarmWrites: 0,
    d1Statements: 0,
    d1Calls: 0,
    d1RowsWritten: 0,
  };
}

let counts: Counts = zero();
let installedAt: number | null = null;
/** Prototypes already patched (each at most once per isolate). */
const patched = new WeakSet<object>();
/** Stub properties that are no call to the object. */
const NOT_CALLS = new Set(["dup", "id", "name", "then", "constructor", "toJSON"]);

function bump(record: Record<string, number>, key: string): void {
  record[key] = (record[key] ?? 0) + 1;
}

/** Replaces `names` on `proto` by wrappers calling `around(original, this, args)`; once per prototype. */
function patch(
  proto: object | null,
  names: string[],
  around: (original: (...args: unknown[]) => unknown, self: unknown, args: unknown[], name: string) => unknown,
): void {
  if (!proto || patched.has(proto)) return;
  patched.add(proto);
  const target = proto as Record<string, unknown>;
  for (const name of names) {
    const original = target[name];
    if (typeof original !== "function") continue;
    target[name] = function (this: unknown, ...args: unknown[]) {
      return around(original as (...args: unknown[]) => unknown, this, args, name);
    };
  }
}

/** A stub whose method calls are counted under its binding. */
function countedStub<T extends object>(binding: string, stub: T): T {
  return new Proxy(stub, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof property !== "string" || typeof value !== "function" || NOT_CALLS.has(property)) return value;
      return (...args: unknown[]) => {
        counts.durableObjectCalls += 1;
        bump(counts.durableObjectCallsByBinding, binding);
        bump(counts.durableObjectCallsByMethod, `${binding}.${property}`);
        // Reflect.apply: a stub method is an RPC stub itself, on which `.apply` would name a remote method.
        return Reflect.apply(value as (...args: unknown[]) => unknown, target, args);
      };
    },
  });
}

const SQL_WRITE = /^\s*(?:INSERT|UPDATE|DELETE|REPLACE)\b/i;
const SQL_SCHEMA = /^\s*(?:CREATE|DROP|ALTER)\b/i;

function installStorage(storage: DurableObjectStorage): void {
  patch(
    Object.getPrototypeOf(storage),
    ["put", "delete", "deleteAll", "setAlarm", "deleteAlarm"],
    (o, self, args, name) => {
      if (name === "setAlarm" || name === "deleteAlarm") counts.storageAlarmWrites += 1;
      else {
        counts.storageKvWriteCalls += 1;
        const first = args[0];
        counts.storageKvKeysWritten +=
          name === "deleteAll"
            ? 0
            : Array.isArray(first)
              ? first.length
              : typeof first === "object" && first
                ? Object.keys(first).length
                : 1;
      }
      return o.apply(self, args);
    },
  );
  patch(Object.getPrototypeOf(storage.sql), ["exec"], (o, self, args) => {
    const query = String(args[0]);
    if (SQL_WRITE.test(query)) counts.storageSqlWrites += 1;
    else if (SQL_SCHEMA.test(query)) counts.storageSqlSchema += 1;
    return o.apply(self, args);
  });
}

function addRowsWritten(result: unknown): void {
  const written = (result as { meta?: { rows_written?: number } } | null)?.meta?.rows_written;
  if (typeof written === "number") counts.d1RowsWritten += written;
}

function installD1(db: D1Database): void {
  patch(Object.getPrototypeOf(db.prepare("SELECT 1")), ["run", "all", "first", "raw"], (o, self, args, name) => {
    counts.d1Statements += 1;
    counts.d1Calls += 1;
    const result = o.apply(self, args);
    if (name === "run" || name === "all") (result as Promise<unknown>).then(addRowsWritten, () => {});
    return result;
  });
  patch(Object.getPrototypeOf(db), ["batch", "exec"], (o, self, args, name) => {
    counts.d1Calls += 1;
    if (name === "exec") {
      counts.d1Statements += String(args[0])
        .split(";")
        .filter((part) => part.trim() !== "").length;
      return o.apply(self, args);
    }
    counts.d1Statements += Array.isArray(args[0]) ? args[0].length : 0;
    // A batch runs its statements itself (not through their run/all): its rows are counted here.
    const result = o.apply(self, args) as Promise<unknown[]>;
    result.then(
      (results) => results.forEach(addRowsWritten),
      () => {},
    );
    return result;
  });
}

/** The binding name of each Durable Object namespace seen (its stubs' calls are counted under it). */
const bindingNames = new WeakMap<object, string>();

function installNamespaces(env: object): void {
  for (const [binding, value] of Object.entries(env)) {
    if (!value || typeof value !== "object") continue;
    const namespace = value as { idFromName?: unknown; get?: unknown };
    if (typeof namespace.idFromName !== "function" || typeof namespace.get !== "function") continue;
    bindingNames.set(namespace, binding);
    // Every namespace shares the runtime's prototype: its get is patched once, stubs labelled by binding.
    patch(Object.getPrototypeOf(namespace), ["get", "getByName"], (o, self, args) =>
      countedStub(bindingNames.get(self as object) ?? "unknown", o.apply(self, args) as object),
    );
  }
}

/**
 * Installs the counters in this isolate if DIAGNOSTICS_ENABLED is "true" (else does nothing):
 * every Durable Object namespace of `env`, its D1 binding, and, when given, the storage of the
 * calling Durable Object (its prototype is the one every object's storage shares).
 */
export function installCostCounters(env: object, storage?: DurableObjectStorage): void {
  if ((env as { DIAGNOSTICS_ENABLED?: string }).DIAGNOSTICS_ENABLED !== "true") return;
  if (installedAt === null) installedAt = Date.now();
  if (storage) installStorage(storage);
  if ((env as { DB?: D1Database }).DB) installD1((env as { DB: D1Database }).DB);
  installNamespaces(env);
}

/** The counters so far (since installation or the last reset). */
export function costCounts(): CostCounts {
  return {
    installedAt,
    ...counts,
    durableObjectCallsByBinding: { ...counts.durableObjectCallsByBinding },
    durableObjectCallsByMethod: { ...counts.durableObjectCallsByMethod },
    storageWrites: counts.storageSqlWrites + counts.storageKvWriteCalls + counts.storageAlarmWrites,
  };
}

/** Sets every counter back to zero. */
export function resetCostCounts(): void {
  counts = zero();
}
