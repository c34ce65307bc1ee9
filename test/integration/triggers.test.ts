// Trigger management (issue 12, "Triggers"): the Tencent actions (CreateTrigger, DeleteTrigger,
// UpdateTrigger, UpdateTriggerStatus, ListTriggers, GetFunction's Triggers) and the REST routes,
// their bounds and refusals (duplicates, another namespace, malformed and oversized input), and the
// timer trigger's Durable Object: one event per tick even when its alarm runs twice, only the most
// recent of missed ticks, and no firing once switched off, deleted, or its function deleted.
import { env, runDurableObjectAlarm, runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { FUNCTION_CACHE_TTL_MS } from "../../worker/functions/registry";
import { unwrap } from "../../worker/shared/errors";
import { eventStub, timerTriggerStub } from "../../worker/shared/objects";
import {
  MAX_CUSTOM_ARGUMENT_BYTES,
  MAX_TIMER_TRIGGERS_PER_NAMESPACE,
  MAX_TRIGGER_DESC_CHARS,
  MAX_TRIGGER_DESCRIPTION_CHARS,
  MAX_TRIGGERS_PER_FUNCTION,
} from "../../worker/triggers/registry";
import { TIMER_REPAIR_INTERVAL_MS, type TimerState, type TimerTriggerObject } from "../../worker/triggers/timer-object";
import { zipBase64 } from "../helpers/zip";

const BASE = "https://platform.test";
const workerEnv: Env = env;
const ADMIN = { authorization: `Bearer ${workerEnv.DEV_SECRET_ID ?? ""}:${workerEnv.DEV_SECRET_KEY ?? ""}` };
const ZIP = zipBase64({ "index.js": "exports.main_handler = async (event) => event;" });
/** Body limit of the trigger routes (api/routes/triggers.ts MAX_TRIGGER_BODY_BYTES). */
const TRIGGER_BODY_LIMIT_BYTES = 64 * 1024;

type Headers = Record<string, string>;
interface TcAnswer {
  Response: Record<string, unknown> & { Error?: { Code: string; Message: string }; RequestId: string };
}
interface TencentTrigger {
  TriggerName: string;
  Type: string;
  TriggerDesc: string;
  Enable: number;
  Qualifier: string;
  CustomArgument: string;
  Description: string;
  AddTime: string;
  ModTime: string;
  AvailableStatus: string;
}
interface RestTrigger {
  id: string;
  name: string;
  type: string;
  qualifier: string;
  triggerDesc: string;
  enabled: boolean;
  customArgument: string;
  description: string;
  url: string | null;
}

let counter = 0;
/** A name unique to this run, valid as a namespace, a function name and a trigger name. */
function unique(prefix: string): string {
  counter += 1;
  return `${prefix}${Date.now().toString(36)}${counter}`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function rest(path: string, init: RequestInit = {}, auth: Headers = ADMIN): Promise<Response> {
  return SELF.fetch(`${BASE}${path}`, {
    ...init,
    headers: { "content-type": "application/json", ...auth, ...(init.headers as Headers | undefined) },
  });
}

async function tc(action: string, params: Record<string, unknown>, auth: Headers = ADMIN): Promise<TcAnswer> {
  const response = await SELF.fetch(`${BASE}/`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json", "x-tc-action": action, "x-tc-version": "2018-04-16" },
    body: JSON.stringify(params),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as TcAnswer;
}

/** The answer's fields, failing the test with the error when there is one. */
function ok(answer: TcAnswer): Record<string, unknown> {
  expect(answer.Response.Error, JSON.stringify(answer.Response.Error)).toBeUndefined();
  return answer.Response;
}

function errorCode(answer: TcAnswer): string | undefined {
  return answer.Response.Error?.Code;
}

async function createFunction(namespace: string, name: string): Promise<void> {
  const response = await rest(`/v1/namespaces/${namespace}/functions`, {
    method: "POST",
    body: JSON.stringify({ name, runtime: "Nodejs22", code: { zipFile: ZIP }, asyncRunEnable: true, timeout: 60 }),
  });
  expect(response.status, await response.clone().text()).toBe(201);
}

async function createKey(namespaces: string[]): Promise<Headers> {
  const response = await rest("/v1/admin/credentials", {
    method: "POST",
    body: JSON.stringify({ namespaces, description: "triggers test" }),
  });
  expect(response.status).toBe(201);
  const key = (await response.json()) as { secretId: string; secretKey: string };
  return { authorization: `Bearer ${key.secretId}:${key.secretKey}` };
}

async function triggerRow(namespace: string, functionName: string, name: string) {
  return env.DB.prepare("SELECT * FROM triggers WHERE namespace = ? AND function_name = ? AND name = ?")
    .bind(namespace, functionName, name)
    .first<{ id: string; enabled: number; trigger_desc: string }>();
}

async function triggerCount(namespace: string, functionName: string): Promise<number> {
  const row = await env.DB.prepare("SELECT count(*) AS n FROM triggers WHERE namespace = ? AND function_name = ?")
    .bind(namespace, functionName)
    .first<{ n: number }>();
  return row?.n ?? 0;
}

/** The timer events of a function in the D1 index, with their payloads. */
async function timerEvents(namespace: string, functionName: string) {
  const { results } = await env.DB.prepare(
    "SELECT request_id, invoke_type, start_time FROM events WHERE namespace = ? AND function_name = ? ORDER BY start_time",
  )
    .bind(namespace, functionName)
    .all<{ request_id: string; invoke_type: string; start_time: number }>();
  return Promise.all(
    results.map(async (row) => ({
      requestId: row.request_id,
      invokeType: row.invoke_type,
      startTime: row.start_time,
      payload: JSON.parse(unwrap(await eventStub(workerEnv, row.request_id).payload()).payload) as Record<
        string,
        unknown
      >,
    })),
  );
}

/** Waits until the index holds at least `count` events of the function (index writes are asynchronous). */
async function timerEventsEventually(namespace: string, functionName: string, count: number, timeoutMs = 4_000) {
  const deadline = Date.now() + timeoutMs;
  let events = await timerEvents(namespace, functionName);
  while (events.length < count && Date.now() < deadline) {
    await sleep(100);
    events = await timerEvents(namespace, functionName);
  }
  return events;
}

async function timerState(triggerId: string): Promise<TimerState | null> {
  return timerTriggerStub(workerEnv, triggerId).state();
}

/**
 * Replaces the timer's stored next tick (as if its alarm had been due for it), and other stored
 * fields given (`checkedAt` long ago makes the tick do its repair read).
 */
async function setNextTick(triggerId: string, nextTickAt: number, extra: Partial<TimerState> = {}): Promise<void> {
  await runInDurableObject(timerTriggerStub(workerEnv, triggerId), async (_instance, state) => {
    const stored = await state.storage.get<TimerState>("timer");
    expect(stored).toBeDefined();
    // The alarm armed for the real next tick stays: runDurableObjectAlarm runs it now.
    await state.storage.put("timer", { ...stored, nextTickAt, attempts: 0, ...extra });
  });
}

/** Inserts switched-off timer rows straight into D1 (no object armed), to fill a bound quickly. */
async function insertTimerRows(namespace: string, functionName: string, count: number): Promise<void> {
  const now = Date.now();
  const statements = Array.from({ length: count }, (_, index) =>
    env.DB.prepare(
      `INSERT INTO triggers (id, namespace, function_name, name, type, qualifier, trigger_desc, enabled,
         custom_argument, description, source, created_at, updated_at)
       VALUES (?, ?, ?, ?, 'timer', '$DEFAULT', '0 0 * * * * *', 0, '', '', NULL, ?, ?)`,
    ).bind(crypto.randomUUID(), namespace, functionName, `filler${index}`, now, now),
  );
  await env.DB.batch(statements);
}

describe("Tencent trigger actions", () => {
  it("creates, lists, updates, switches and deletes a timer trigger in SCF's shapes", async () => {
    const fn = unique("tfn");
    await createFunction("default", fn);
    const created = ok(
      await tc("CreateTrigger", {
        FunctionName: fn,
        TriggerName: "every-day",
        Type: "timer",
        TriggerDesc: "0 0 2 1 * * *",
        CustomArgument: "hello timer",
        Description: "monthly",
      }),
    );
    const info = created.TriggerInfo as TencentTrigger;
    expect(info).toMatchObject({
      TriggerName: "every-day",
      Type: "timer",
      TriggerDesc: '{"cron":"0 0 2 1 * * *"}',
      Enable: 1,
      Qualifier: "$DEFAULT",
      CustomArgument: "hello timer",
      Description: "monthly",
      AvailableStatus: "Available",
    });
    expect(info.AddTime).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
    expect(info.ModTime).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
    // The wrapped form SCF answers with is accepted on input too.
    ok(
      await tc("CreateTrigger", {
        FunctionName: fn,
        TriggerName: "wrapped",
        Type: "timer",
        TriggerDesc: '{"cron":"*/5 * * * * * *"}',
        Enable: "CLOSE",
        Qualifier: "$LATEST",
      }),
    );

    const listed = ok(await tc("ListTriggers", { FunctionName: fn, OrderBy: "add_time", Order: "ASC" }));
    expect(listed.TotalCount).toBe(2);
    const names = (listed.Triggers as TencentTrigger[]).map((trigger) => [trigger.TriggerName, trigger.Enable]);
    expect(names).toEqual([
      ["every-day", 1],
      ["wrapped", 0],
    ]);
    expect((listed.Triggers as TencentTrigger[])[1]?.TriggerDesc).toBe('{"cron":"*/5 * * * * * *"}');
    const filtered = ok(
      await tc("ListTriggers", { FunctionName: fn, Filters: [{ Name: "Qualifier", Values: ["$LATEST"] }] }),
    );
    expect((filtered.Triggers as TencentTrigger[]).map((trigger) => trigger.TriggerName)).toEqual(["wrapped"]);
    const byDescription = ok(
      await tc("ListTriggers", { FunctionName: fn, Filters: [{ Name: "Description", Values: ["month"] }] }),
    );
    expect(byDescription.TotalCount).toBe(1);
    const paged = ok(await tc("ListTriggers", { FunctionName: fn, Offset: 1, Limit: 1, OrderBy: "add_time" }));
    expect(paged.TotalCount).toBe(2);
    expect((paged.Triggers as TencentTrigger[]).map((trigger) => trigger.TriggerName)).toEqual(["every-day"]);

    const fnInfo = ok(await tc("GetFunction", { FunctionName: fn }));
    expect((fnInfo.Triggers as TencentTrigger[]).map((trigger) => trigger.TriggerName).sort()).toEqual([
      "every-day",
      "wrapped",
    ]);
    const latestOnly = ok(await tc("GetFunction", { FunctionName: fn, Qualifier: "$LATEST" }));
    expect((latestOnly.Triggers as TencentTrigger[]).map((trigger) => trigger.TriggerName)).toEqual(["wrapped"]);

    ok(
      await tc("UpdateTrigger", {
        FunctionName: fn,
        TriggerName: "every-day",
        Type: "timer",
        Enable: "CLOSE",
        Description: "",
        TriggerDesc: "0 30 2 1 * * *",
      }),
    );
    const afterUpdate = ok(
      await tc("ListTriggers", { FunctionName: fn, Filters: [{ Name: "TriggerName", Values: ["every-day"] }] }),
    );
    expect((afterUpdate.Triggers as TencentTrigger[])[0]).toMatchObject({
      Enable: 0,
      Description: "",
      CustomArgument: "hello timer",
      TriggerDesc: '{"cron":"0 30 2 1 * * *"}',
    });
    const row = await triggerRow("default", fn, "every-day");
    expect(await timerState(row?.id ?? "")).toBeNull();

    ok(await tc("UpdateTriggerStatus", { FunctionName: fn, TriggerName: "every-day", Type: "timer", Enable: "OPEN" }));
    expect((await triggerRow("default", fn, "every-day"))?.enabled).toBe(1);
    const armed = await timerState(row?.id ?? "");
    expect(armed?.cron).toBe("0 30 2 1 * * *");
    expect(armed?.nextTickAt).toBeGreaterThan(Date.now());

    ok(await tc("DeleteTrigger", { FunctionName: fn, TriggerName: "every-day", Type: "timer" }));
    expect(await timerState(row?.id ?? "")).toBeNull();
    ok(await tc("DeleteTrigger", { FunctionName: fn, TriggerName: "wrapped", Type: "timer", Qualifier: "$LATEST" }));
    const empty = ok(await tc("ListTriggers", { FunctionName: fn }));
    expect(empty).toMatchObject({ TotalCount: 0, Triggers: [] });
  });

  it("refuses a duplicate name for the same type with ResourceInUse.Trigger and keeps the first", async () => {
    const fn = unique("tdup");
    await createFunction("default", fn);
    ok(
      await tc("CreateTrigger", { FunctionName: fn, TriggerName: "tick", Type: "timer", TriggerDesc: "0 0 * * * * *" }),
    );
    const again = await tc("CreateTrigger", {
      FunctionName: fn,
      TriggerName: "tick",
      Type: "timer",
      TriggerDesc: "0 1 * * * * *",
    });
    expect(errorCode(again)).toBe("ResourceInUse.Trigger");
    expect(again.Response.Error?.Message).toContain("in use");
    expect((await triggerRow("default", fn, "tick"))?.trigger_desc).toBe("0 0 * * * * *");
    expect(await triggerCount("default", fn)).toBe(1);
  });

  it("answers ResourceNotFound.Trigger for an unknown trigger and for a qualifier that is not the trigger's", async () => {
    const fn = unique("tnf");
    await createFunction("default", fn);
    ok(
      await tc("CreateTrigger", { FunctionName: fn, TriggerName: "tick", Type: "timer", TriggerDesc: "0 0 * * * * *" }),
    );
    for (const [action, extra] of [
      ["DeleteTrigger", { TriggerName: "nope" }],
      ["UpdateTrigger", { TriggerName: "nope", Description: "x" }],
      ["UpdateTriggerStatus", { TriggerName: "nope", Enable: "CLOSE" }],
      ["DeleteTrigger", { TriggerName: "tick", Qualifier: "$LATEST" }],
      ["UpdateTriggerStatus", { TriggerName: "tick", Type: "http", Enable: "CLOSE" }],
    ] as const) {
      const answer = await tc(action, { FunctionName: fn, Type: "timer", ...extra });
      expect(errorCode(answer), `${action} ${JSON.stringify(extra)}`).toBe("ResourceNotFound.Trigger");
    }
    expect(await triggerCount("default", fn)).toBe(1);
    const missingFunction = await tc("ListTriggers", { FunctionName: unique("tmissing") });
    expect(errorCode(missingFunction)).toBe("ResourceNotFound.Function");
  });

  it("refuses another namespace's function and triggers as if they did not exist, changing nothing", async () => {
    const ownNamespace = unique("tns");
    const otherNamespace = unique("tother");
    const fn = unique("tfn");
    await createFunction(otherNamespace, fn);
    ok(
      await tc("CreateTrigger", {
        FunctionName: fn,
        Namespace: otherNamespace,
        TriggerName: "victim",
        Type: "timer",
        TriggerDesc: "0 0 * * * * *",
      }),
    );
    const scoped = await createKey([ownNamespace]);
    const target = { FunctionName: fn, Namespace: otherNamespace, TriggerName: "victim", Type: "timer" };
    for (const [action, extra] of [
      ["ListTriggers", {}],
      ["CreateTrigger", { TriggerName: "intruder", TriggerDesc: "* * * * * * *" }],
      ["DeleteTrigger", {}],
      ["UpdateTrigger", { Enable: "CLOSE" }],
      ["UpdateTriggerStatus", { Enable: "CLOSE" }],
      ["GetFunction", {}],
    ] as const) {
      const answer = await tc(action, { ...target, ...extra }, scoped);
      expect(errorCode(answer), action).toBe("ResourceNotFound.Namespace");
      expect(JSON.stringify(answer)).not.toContain("victim");
    }
    // The scoped key's own namespace has no such function: the same not-found as an unknown one.
    const own = await tc("ListTriggers", { FunctionName: fn, Namespace: ownNamespace }, scoped);
    expect(errorCode(own)).toBe("ResourceNotFound.Function");
    for (const path of [
      `/v1/namespaces/${otherNamespace}/functions/${fn}/triggers`,
      `/v1/namespaces/${otherNamespace}/functions/${fn}/triggers/timer/victim`,
    ]) {
      for (const method of ["GET", "DELETE", "PATCH", "POST"]) {
        if (path.endsWith("triggers") && (method === "DELETE" || method === "PATCH")) continue;
        if (path.endsWith("victim") && method === "POST") continue;
        const response = await rest(
          path,
          { method, ...(method === "GET" || method === "DELETE" ? {} : { body: "{}" }) },
          scoped,
        );
        expect(response.status, `${method} ${path}`).toBe(404);
        expect(await response.text()).not.toContain("victim");
      }
    }
    const row = await triggerRow(otherNamespace, fn, "victim");
    expect(row?.enabled).toBe(1);
    expect(await triggerCount(otherNamespace, fn)).toBe(1);
  });

  it("refuses malformed and oversized parameters with InvalidParameterValue.<Field>, storing nothing", async () => {
    const fn = unique("tbad");
    await createFunction("default", fn);
    const base = { FunctionName: fn, TriggerName: "tick", Type: "timer", TriggerDesc: "0 0 * * * * *" };
    const cases: [Record<string, unknown>, string][] = [
      [{ TriggerName: "1tick" }, "InvalidParameterValue.TriggerName"],
      [{ TriggerName: "a b" }, "InvalidParameterValue.TriggerName"],
      [{ TriggerName: "t".repeat(101) }, "InvalidParameterValue.TriggerName"],
      [{ Type: "apigw" }, "InvalidParameterValue.Type"],
      [{ Type: "Timer" }, "InvalidParameterValue.Type"],
      [{ TriggerDesc: "not a cron" }, "InvalidParameterValue.TriggerDesc"],
      [{ TriggerDesc: "61 * * * * * *" }, "InvalidParameterValue.TriggerDesc"],
      [{ TriggerDesc: "* * *" }, "InvalidParameterValue.TriggerDesc"],
      [{ TriggerDesc: '{"cron":5}' }, "InvalidParameterValue.TriggerDesc"],
      [{ TriggerDesc: '{"cron":"0 0 * * * * *"' }, "InvalidParameterValue.TriggerDesc"],
      [{ TriggerDesc: "0 0 0 1 1 * 2020" }, "InvalidParameterValue.TriggerDesc"],
      [{ TriggerDesc: "" }, "InvalidParameterValue.TriggerDesc"],
      [{ TriggerDesc: undefined }, "InvalidParameterValue.TriggerDesc"],
      [{ TriggerDesc: "*".repeat(MAX_TRIGGER_DESC_CHARS + 1) }, "InvalidParameterValue.TriggerDesc"],
      [{ Description: "d".repeat(MAX_TRIGGER_DESCRIPTION_CHARS + 1) }, "InvalidParameterValue.Description"],
      [{ CustomArgument: "é".repeat(MAX_CUSTOM_ARGUMENT_BYTES / 2 + 1) }, "InvalidParameterValue.CustomArgument"],
      [
        { Type: "http", TriggerDesc: '{"AuthType":"NONE"}', CustomArgument: "x" },
        "InvalidParameterValue.CustomArgument",
      ],
      [{ Enable: "open" }, "InvalidParameterValue.Enable"],
      [{ Qualifier: "a b" }, "InvalidParameterValue.Qualifier"],
      [{ Qualifier: "7" }, "ResourceNotFound.Qualifier"],
      [{ Qualifier: "no-such-alias" }, "ResourceNotFound.Qualifier"],
      [{ TriggerName: undefined }, "MissingParameter"],
      [{ Type: undefined }, "MissingParameter"],
    ];
    for (const [change, code] of cases) {
      const answer = await tc("CreateTrigger", { ...base, ...change });
      expect(errorCode(answer), JSON.stringify(change).slice(0, 80)).toBe(code);
    }
    // The largest values within the bounds are taken.
    ok(
      await tc("CreateTrigger", {
        ...base,
        TriggerName: `t${"x".repeat(99)}`,
        Description: "d".repeat(MAX_TRIGGER_DESCRIPTION_CHARS),
        CustomArgument: "é".repeat(MAX_CUSTOM_ARGUMENT_BYTES / 2),
      }),
    );
    expect(await triggerCount("default", fn)).toBe(1);
    const listCases: [Record<string, unknown>, string][] = [
      [{ Limit: 101 }, "InvalidParameterValue.Limit"],
      [{ Offset: -1 }, "InvalidParameterValue.Offset"],
      [{ OrderBy: "addTime" }, "InvalidParameterValue.OrderBy"],
      [{ Filters: [{ Name: "Type", Values: ["timer"] }] }, "InvalidParameterValue.Filters"],
      [{ Filters: [{ Name: "Qualifier", Values: [] }] }, "InvalidParameterValue.Filters"],
    ];
    for (const [change, code] of listCases) {
      expect(errorCode(await tc("ListTriggers", { FunctionName: fn, ...change }))).toBe(code);
    }
  });

  it(`refuses a function's trigger past ${MAX_TRIGGERS_PER_FUNCTION} with LimitExceeded.Trigger`, async () => {
    const fn = unique("tlim");
    await createFunction("default", fn);
    for (let index = 0; index < MAX_TRIGGERS_PER_FUNCTION; index++) {
      // Switched off: nothing is armed, only rows are stored.
      ok(
        await tc("CreateTrigger", {
          FunctionName: fn,
          TriggerName: `t${index}`,
          Type: "timer",
          TriggerDesc: "0 0 * * * * *",
          Enable: "CLOSE",
        }),
      );
    }
    const over = await tc("CreateTrigger", {
      FunctionName: fn,
      TriggerName: "one-more",
      Type: "timer",
      TriggerDesc: "0 0 * * * * *",
    });
    expect(errorCode(over)).toBe("LimitExceeded.Trigger");
    expect(await triggerCount("default", fn)).toBe(MAX_TRIGGERS_PER_FUNCTION);
  });

  it(`refuses a namespace's timer past ${MAX_TIMER_TRIGGERS_PER_NAMESPACE} with LimitExceeded.Trigger naming the bound, still taking other types`, async () => {
    const namespace = unique("tnslim");
    const [full, almost, last] = [unique("tfa"), unique("tfb"), unique("tfc")];
    for (const fn of [full, almost, last]) await createFunction(namespace, fn);
    await insertTimerRows(namespace, full, MAX_TRIGGERS_PER_FUNCTION);
    await insertTimerRows(namespace, almost, MAX_TIMER_TRIGGERS_PER_NAMESPACE - MAX_TRIGGERS_PER_FUNCTION - 1);
    const timer = { FunctionName: last, Namespace: namespace, Type: "timer", TriggerDesc: "0 0 * * * * *" };
    ok(await tc("CreateTrigger", { ...timer, TriggerName: "the-last", Enable: "CLOSE" }));
    const over = await tc("CreateTrigger", { ...timer, TriggerName: "one-more" });
    expect(errorCode(over)).toBe("LimitExceeded.Trigger");
    expect(over.Response.Error?.Message).toContain(`${MAX_TIMER_TRIGGERS_PER_NAMESPACE} timer triggers`);
    expect(over.Response.Error?.Message).toContain(namespace);
    expect(await triggerRow(namespace, last, "one-more")).toBeNull();
    const rest429 = await rest(`/v1/namespaces/${namespace}/functions/${last}/triggers`, {
      method: "POST",
      body: JSON.stringify({ name: "rest-more", type: "timer", triggerDesc: "0 0 * * * * *" }),
    });
    expect(rest429.status).toBe(409);
    expect(((await rest429.json()) as { error: { code: string } }).error.code).toBe("TRIGGER_LIMIT_EXCEEDED");
    // The bound is on timers only: a function URL is still taken.
    ok(
      await tc("CreateTrigger", {
        FunctionName: last,
        Namespace: namespace,
        TriggerName: "url",
        Type: "http",
        TriggerDesc: '{"AuthType":"NONE"}',
      }),
    );
    // Another namespace is not counted against it.
    const elsewhere = unique("tnsfree");
    await createFunction("default", elsewhere);
    ok(await tc("CreateTrigger", { ...timer, FunctionName: elsewhere, Namespace: "default", TriggerName: "free" }));
    // Deleting one frees its place.
    ok(await tc("DeleteTrigger", { FunctionName: last, Namespace: namespace, TriggerName: "the-last", Type: "timer" }));
    ok(await tc("CreateTrigger", { ...timer, TriggerName: "one-more", Enable: "CLOSE" }));
  });

  it("refuses a trigger on an alias or a function deleted while it was being created, storing nothing", async () => {
    const fn = unique("trace");
    await createFunction("default", fn);
    ok(await tc("CreateAlias", { FunctionName: fn, Name: "live", FunctionVersion: "$LATEST" }));
    // Resolves the alias and the function: this isolate's lookups now hold them for a moment.
    const base = { FunctionName: fn, Type: "timer", TriggerDesc: "0 0 * * * * *", Enable: "CLOSE" };
    ok(await tc("CreateTrigger", { ...base, TriggerName: "warm", Qualifier: "live" }));
    // A DeleteAlias landing between the checks and the insert (its row gone, the cached lookup not).
    await env.DB.prepare(
      "DELETE FROM function_aliases WHERE namespace = 'default' AND function_name = ? AND name = 'live'",
    )
      .bind(fn)
      .run();
    const onAlias = await tc("CreateTrigger", { ...base, TriggerName: "late", Qualifier: "live" });
    expect(errorCode(onAlias)).toBe("ResourceNotFound.Qualifier");
    expect(await triggerRow("default", fn, "late")).toBeNull();
    // A version that is not there is refused by the insert too.
    const onVersion = await tc("CreateTrigger", { ...base, TriggerName: "late", Qualifier: "3" });
    expect(errorCode(onVersion)).toBe("ResourceNotFound.Qualifier");
    // A DeleteFunction landing the same way.
    await env.DB.prepare("DELETE FROM functions WHERE namespace = 'default' AND name = ?").bind(fn).run();
    const onFunction = await tc("CreateTrigger", { ...base, TriggerName: "late" });
    expect(errorCode(onFunction)).toBe("ResourceNotFound.Function");
    expect(await triggerRow("default", fn, "late")).toBeNull();
    expect(await triggerCount("default", fn)).toBe(1);
  });
});

describe("REST trigger routes", () => {
  it("creates, reads, lists, patches and deletes a trigger", async () => {
    const fn = unique("rfn");
    await createFunction("default", fn);
    const path = `/v1/namespaces/default/functions/${fn}/triggers`;
    const created = await rest(path, {
      method: "POST",
      body: JSON.stringify({ name: "nightly", type: "timer", triggerDesc: "0 0 3 * * * *", customArgument: "m" }),
    });
    expect(created.status, await created.clone().text()).toBe(201);
    const trigger = (await created.json()) as RestTrigger;
    expect(trigger).toMatchObject({
      name: "nightly",
      type: "timer",
      qualifier: "$DEFAULT",
      triggerDesc: "0 0 3 * * * *",
      enabled: true,
      customArgument: "m",
      description: "",
      url: null,
    });
    const got = await rest(`${path}/timer/nightly`);
    expect(got.status).toBe(200);
    expect(((await got.json()) as RestTrigger).id).toBe(trigger.id);

    const patched = await rest(`${path}/timer/nightly`, {
      method: "PATCH",
      body: JSON.stringify({ enabled: false, description: "off for now" }),
    });
    expect(patched.status).toBe(200);
    expect((await patched.json()) as RestTrigger).toMatchObject({ enabled: false, description: "off for now" });
    expect(await timerState(trigger.id)).toBeNull();

    const listed = await rest(`${path}?type=timer&qualifier=$DEFAULT&orderBy=addTime&order=asc`);
    expect(listed.status).toBe(200);
    const page = (await listed.json()) as { total: number; triggers: RestTrigger[] };
    expect(page.total).toBe(1);
    expect(page.triggers[0]?.name).toBe("nightly");
    const none = (await (await rest(`${path}?name=other`)).json()) as { total: number };
    expect(none.total).toBe(0);

    const deleted = await rest(`${path}/timer/nightly`, { method: "DELETE" });
    expect(deleted.status).toBe(204);
    const gone = await rest(`${path}/timer/nightly`);
    expect(gone.status).toBe(404);
    expect(((await gone.json()) as { error: { code: string } }).error.code).toBe("TRIGGER_NOT_FOUND");
    expect((await rest(`${path}/timer/nightly`, { method: "DELETE" })).status).toBe(404);
  });

  it("refuses malformed, unknown-field, duplicate and oversized bodies with clear 4xx answers", async () => {
    const fn = unique("rbad");
    await createFunction("default", fn);
    const path = `/v1/namespaces/default/functions/${fn}/triggers`;
    const body = { name: "tick", type: "timer", triggerDesc: "0 0 * * * * *" };
    const cases: [string, number, string][] = [
      ["{not json", 400, "INVALID_JSON"],
      ["[]", 400, "INVALID_PARAMETER"],
      [JSON.stringify({ ...body, extra: 1 }), 400, "INVALID_PARAMETER"],
      [JSON.stringify({ ...body, name: "1x" }), 400, "INVALID_PARAMETER"],
      [JSON.stringify({ ...body, type: "apigw" }), 400, "INVALID_PARAMETER"],
      [JSON.stringify({ ...body, triggerDesc: "bad cron" }), 400, "INVALID_PARAMETER"],
      [JSON.stringify({ ...body, enabled: "yes" }), 400, "INVALID_PARAMETER"],
      [JSON.stringify({ ...body, qualifier: "9" }), 404, "QUALIFIER_NOT_FOUND"],
      [
        JSON.stringify({ ...body, customArgument: "x".repeat(MAX_CUSTOM_ARGUMENT_BYTES + 1) }),
        400,
        "INVALID_PARAMETER",
      ],
      [JSON.stringify({ ...body, pad: "x".repeat(TRIGGER_BODY_LIMIT_BYTES) }), 413, "PAYLOAD_TOO_LARGE"],
    ];
    for (const [text, status, code] of cases) {
      const response = await rest(path, { method: "POST", body: text });
      expect(response.status, text.slice(0, 60)).toBe(status);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe(code);
    }
    expect(await triggerCount("default", fn)).toBe(0);
    expect((await rest(path, { method: "POST", body: JSON.stringify(body) })).status).toBe(201);
    const duplicate = await rest(path, { method: "POST", body: JSON.stringify(body) });
    expect(duplicate.status).toBe(409);
    expect(((await duplicate.json()) as { error: { code: string } }).error.code).toBe("TRIGGER_EXISTS");
    for (const [query, status] of [
      ["?limit=0", 400],
      ["?limit=101", 400],
      ["?type=apigw", 400],
      ["?order=up", 400],
      ["?unknown=1", 400],
    ] as const) {
      expect((await rest(`${path}${query}`)).status, query).toBe(status);
    }
    for (const segment of ["timer/1bad", "apigw/tick", "timer/a%2Fb"]) {
      expect((await rest(`${path}/${segment}`)).status, segment).toBe(400);
    }
    const patchTooLarge = await rest(`${path}/timer/tick`, {
      method: "PATCH",
      body: JSON.stringify({ description: "x".repeat(TRIGGER_BODY_LIMIT_BYTES) }),
    });
    expect(patchTooLarge.status).toBe(413);
    const patchBadCron = await rest(`${path}/timer/tick`, {
      method: "PATCH",
      body: JSON.stringify({ triggerDesc: "0 0 0 30 2 * *" }),
    });
    expect(patchBadCron.status).toBe(400);
    expect((await triggerRow("default", fn, "tick"))?.trigger_desc).toBe("0 0 * * * * *");
  });
});

describe("the timer trigger's Durable Object", () => {
  /** Creates a function and an enabled timer trigger on it; answers the trigger's id. */
  async function timerOn(fn: string, cron: string, customArgument = "msg"): Promise<string> {
    await createFunction("default", fn);
    const created = await rest(`/v1/namespaces/default/functions/${fn}/triggers`, {
      method: "POST",
      body: JSON.stringify({ name: "tick", type: "timer", triggerDesc: cron, customArgument }),
    });
    expect(created.status, await created.clone().text()).toBe(201);
    return ((await created.json()) as RestTrigger).id;
  }

  it("fires a tick exactly once with SCF's timer event even when its alarm runs twice for it", async () => {
    const fn = unique("tonce");
    // Yearly: no tick of its own during the test; the last one (this year's January 1st) is replayed.
    const id = await timerOn(fn, "0 0 0 1 1 * *", "custom message");
    const tick = Date.UTC(new Date().getUTCFullYear(), 0, 1);
    await setNextTick(id, tick);
    expect(await runDurableObjectAlarm(timerTriggerStub(workerEnv, id))).toBe(true);
    // The alarm ran again for the same tick (as if the object had restarted before storing the next one).
    await setNextTick(id, tick);
    expect(await runDurableObjectAlarm(timerTriggerStub(workerEnv, id))).toBe(true);

    const events = await timerEventsEventually("default", fn, 1);
    await sleep(500);
    const settled = await timerEvents("default", fn);
    expect(settled).toHaveLength(1);
    expect(events[0]?.invokeType).toBe("TRIGGER_TIMER");
    expect(events[0]?.payload).toEqual({
      Type: "Timer",
      TriggerName: "tick",
      Time: new Date(tick).toISOString().replace(".000Z", "Z"),
      Message: "custom message",
    });
    const state = await timerState(id);
    expect(state?.nextTickAt).toBe(Date.UTC(new Date().getUTCFullYear() + 1, 0, 1));
  });

  it("fires only the most recent of the ticks missed while its alarm was late", async () => {
    const fn = unique("tlate");
    // Daily at midnight UTC: ten missed days, of which only today's midnight is fired.
    const id = await timerOn(fn, "0 0 0 * * * *");
    const day = 86_400_000;
    const today = Math.floor(Date.now() / day) * day;
    await setNextTick(id, today - 10 * day);
    expect(await runDurableObjectAlarm(timerTriggerStub(workerEnv, id))).toBe(true);
    const events = await timerEventsEventually("default", fn, 1);
    await sleep(500);
    expect(await timerEvents("default", fn)).toHaveLength(1);
    expect(events[0]?.payload.Time).toBe(new Date(today).toISOString().replace(".000Z", "Z"));
    expect((await timerState(id))?.nextTickAt).toBe(today + day);
  });

  it("fires with the configuration pushed to it, reading no trigger row between its repair reads", async () => {
    const fn = unique("tpush");
    const id = await timerOn(fn, "0 0 0 1 1 * *", "pushed");
    // Changed behind its back: a tick within TIMER_REPAIR_INTERVAL_MS of the last read does not see it.
    await env.DB.prepare("UPDATE triggers SET custom_argument = 'from d1', enabled = 0 WHERE id = ?").bind(id).run();
    const tick = Date.UTC(new Date().getUTCFullYear(), 0, 1);
    await setNextTick(id, tick);
    expect(await runDurableObjectAlarm(timerTriggerStub(workerEnv, id))).toBe(true);
    const events = await timerEventsEventually("default", fn, 1);
    expect(events[0]?.payload.Message).toBe("pushed");
    expect((await timerState(id))?.nextTickAt).toBe(Date.UTC(new Date().getUTCFullYear() + 1, 0, 1));

    // A CustomArgument changed through the API is pushed, the schedule kept.
    const other = unique("tpush");
    const otherId = await timerOn(other, "0 0 0 1 1 * *", "before");
    const armed = await timerState(otherId);
    ok(await tc("UpdateTrigger", { FunctionName: other, TriggerName: "tick", Type: "timer", CustomArgument: "after" }));
    const updated = await timerState(otherId);
    expect(updated).toMatchObject({ customArgument: "after", nextTickAt: armed?.nextTickAt, armId: armed?.armId });
  });

  it("stops without firing at its repair read when its trigger was switched off or deleted behind its back", async () => {
    const longAgo = { checkedAt: Date.now() - TIMER_REPAIR_INTERVAL_MS };
    const offFn = unique("toff");
    const offId = await timerOn(offFn, "0 0 0 1 1 * *");
    await env.DB.prepare("UPDATE triggers SET enabled = 0 WHERE id = ?").bind(offId).run();
    await setNextTick(offId, Date.now() - 1_000, longAgo);
    await runDurableObjectAlarm(timerTriggerStub(workerEnv, offId));
    expect(await timerState(offId)).toBeNull();

    const goneFn = unique("tgone");
    const goneId = await timerOn(goneFn, "0 0 0 1 1 * *");
    await env.DB.prepare("DELETE FROM triggers WHERE id = ?").bind(goneId).run();
    await setNextTick(goneId, Date.now() - 1_000, longAgo);
    await runDurableObjectAlarm(timerTriggerStub(workerEnv, goneId));
    expect(await timerState(goneId)).toBeNull();

    await sleep(500);
    expect(await timerEvents("default", offFn)).toHaveLength(0);
    expect(await timerEvents("default", goneFn)).toHaveLength(0);
  });

  it("a disarm landing while a tick is being fired wins: it answers after the fire and nothing is scheduled", async () => {
    const fn = unique("tdisarm");
    const id = await timerOn(fn, "0 0 0 1 1 * *");
    await setNextTick(id, Date.UTC(new Date().getUTCFullYear(), 0, 1));
    await runInDurableObject(timerTriggerStub(workerEnv, id), async (instance: TimerTriggerObject, state) => {
      let release = () => {};
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      let started = () => {};
      const fireStarted = new Promise<void>((resolve) => {
        started = resolve;
      });
      // The tick's invocation, held until released (a slow invoke).
      (instance as unknown as { fire: () => Promise<unknown> }).fire = async () => {
        started();
        await held;
        return { kind: "fired", requestId: "held" };
      };
      const alarm = instance.alarm();
      await fireStarted;
      let disarmed = false;
      const disarm = instance.disarm().then(() => {
        disarmed = true;
      });
      await sleep(50);
      expect(disarmed).toBe(false);
      release();
      await Promise.all([alarm, disarm]);
      expect(await state.storage.get("timer")).toBeUndefined();
      expect(await state.storage.getAlarm()).toBeNull();
    });
    expect(await timerState(id)).toBeNull();
  });

  it("stops and removes its trigger when its function's row was removed behind its back", async () => {
    const fn = unique("tfdel");
    const id = await timerOn(fn, "0 0 0 1 1 * *");
    // Not through the API (which disarms the timer): the row alone goes, as a manual repair might.
    await workerEnv.DB.prepare("DELETE FROM functions WHERE namespace = ? AND name = ?").bind("default", fn).run();
    // An invocation may serve the function from its isolate's cache for FUNCTION_CACHE_TTL_MS.
    await new Promise((resolve) => setTimeout(resolve, FUNCTION_CACHE_TTL_MS + 100));
    await setNextTick(id, Date.UTC(new Date().getUTCFullYear(), 0, 1));
    await runDurableObjectAlarm(timerTriggerStub(workerEnv, id));
    expect(await timerState(id)).toBeNull();
    expect(await triggerCount("default", fn)).toBe(0);
    expect(await timerEvents("default", fn)).toHaveLength(0);
  });

  it("is disarmed as its function is deleted, so a function re-created under the same name meets no old timer", async () => {
    const fn = unique("tfre");
    const id = await timerOn(fn, "0 0 0 1 1 * *");
    expect(await timerState(id)).not.toBeNull();
    const deleted = await rest(`/v1/namespaces/default/functions/${fn}`, { method: "DELETE" });
    expect(deleted.status).toBe(204);
    expect(await timerState(id)).toBeNull();
    await runInDurableObject(timerTriggerStub(workerEnv, id), async (_instance, state) => {
      expect(await state.storage.getAlarm()).toBeNull();
    });
    await createFunction("default", fn);
    expect(await triggerCount("default", fn)).toBe(0);
  });

  it("fires every second on its own alarm, a second apart, and not after it is switched off", async () => {
    const fn = unique("treal");
    const id = await timerOn(fn, "* * * * * * *", "");
    const events = await timerEventsEventually("default", fn, 3, 6_000);
    expect(events.length).toBeGreaterThanOrEqual(3);
    const times = events.map((event) => Date.parse(String(event.payload.Time))).sort((a, b) => a - b);
    for (let index = 1; index < times.length; index++) {
      expect((times[index] ?? 0) - (times[index - 1] ?? 0)).toBe(1_000);
    }
    for (const event of events) {
      expect(event.invokeType).toBe("TRIGGER_TIMER");
      expect(event.payload.Message).toBe("");
      // Lateness: the event's start (invokedAt) is at or after its scheduled tick.
      expect(event.startTime).toBeGreaterThanOrEqual(Date.parse(String(event.payload.Time)));
    }
    const off = await rest(`/v1/namespaces/default/functions/${fn}/triggers/timer/tick`, {
      method: "PATCH",
      body: JSON.stringify({ enabled: false }),
    });
    expect(off.status).toBe(200);
    expect(await timerState(id)).toBeNull();
    await sleep(300);
    const settled = (await timerEvents("default", fn)).length;
    await sleep(2_000);
    expect((await timerEvents("default", fn)).length).toBe(settled);
  }, 20_000);
});
