// The event index split by namespace (INDEX_DATABASES, db/index-databases.ts): vitest.config.ts maps
// split-a and split-b to INDEX_DB_1; every other namespace keeps its index in DB. Rows go to their
// namespace's database and are read, counted, checked and purged there only.
import {
  createExecutionContext,
  createMessageBatch,
  createScheduledController,
  env,
  evictDurableObject,
  getQueueResult,
  runInDurableObject,
  SELF,
} from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { DispatchMessage } from "../../worker/events/dispatch-message";
import { writeIndexEntries } from "../../worker/events/event-index";
import type { EventState } from "../../worker/events/event-machine";
import { updateNamespaceSettings } from "../../worker/events/event-retention";
import worker from "../../worker/index";
import { consumeDispatchBatch } from "../../worker/scheduling/dispatch-consumer";
import { functionSnapshot } from "../helpers/function-snapshot";
import { finishedIndexEntry } from "../helpers/index-entry";
import { zipBase64 } from "../helpers/zip";

const ROOT = { authorization: "Bearer AKIDintegration:integration-secret-key-0123456789abcdef" };
const ZIP = zipBase64({ "index.js": "exports.main_handler = async () => 'ok';" });
const HOUR = 60 * 60 * 1000;

function call(path: string, init: RequestInit = {}): Promise<Response> {
  return SELF.fetch(`https://platform.test${path}`, { ...init, headers: { ...ROOT, ...(init.headers ?? {}) } });
}

function unique(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
}

async function createFunction(namespace: string, name: string): Promise<void> {
  const created = await call(`/v1/namespaces/${namespace}/functions`, {
    method: "POST",
    body: JSON.stringify({ name, runtime: "Nodejs22", code: { zipFile: ZIP } }),
  });
  expect(created.status).toBe(201);
}

function dispatchMessage(namespace: string, functionName: string): DispatchMessage {
  return {
    requestId: crypto.randomUUID(),
    namespace,
    functionName,
    qualifier: "$LATEST",
    invokeType: "OTHERS",
    invokedAt: Date.now(),
    maxConcurrency: 1,
  };
}

const entry = finishedIndexEntry;

/** The RequestIds among `ids` that `db`'s index has, in the order given. */
async function indexedIn(db: D1Database, ids: readonly string[]): Promise<string[]> {
  const { results } = await db
    .prepare("SELECT request_id FROM events WHERE request_id IN (SELECT value FROM json_each(?1))")
    .bind(JSON.stringify(ids))
    .all<{ request_id: string }>();
  const found = new Set(results.map((row) => row.request_id));
  return ids.filter((id) => found.has(id));
}

/** A scheduler namespace that accepts every submission. */
const acceptingSchedulers = {
  idFromName: (name: string) => env.SCHEDULER.idFromName(name),
  get: () => ({ submit: async () => undefined }),
} as unknown as Env["SCHEDULER"];

afterEach(() => {
  vi.restoreAllMocks();
});

describe("the dispatch consumer's rows", () => {
  it("go to each namespace's own index database, one D1 batch per database", async () => {
    const functionName = unique("fn");
    const mapped = [dispatchMessage("split-a", functionName), dispatchMessage("split-b", functionName)];
    const plain = dispatchMessage("default", functionName);
    const batch = createMessageBatch<unknown>("afp-dispatch", [
      { id: "a", timestamp: Date.now(), attempts: 1, body: mapped[0] },
      { id: "plain", timestamp: Date.now(), attempts: 1, body: plain },
      { id: "b", timestamp: Date.now(), attempts: 1, body: mapped[1] },
    ]);
    const mainBatches = vi.spyOn(env.DB, "batch");
    const splitBatches = vi.spyOn(env.INDEX_DB_1, "batch");
    await consumeDispatchBatch(batch, { ...env, SCHEDULER: acceptingSchedulers });
    const result = await getQueueResult(batch, createExecutionContext());

    expect(result.explicitAcks.sort()).toEqual(["a", "b", "plain"]);
    expect(mainBatches).toHaveBeenCalledTimes(1);
    expect(splitBatches).toHaveBeenCalledTimes(1);
    const all = [...mapped, plain].map((message) => message.requestId);
    expect(await indexedIn(env.INDEX_DB_1, all)).toEqual(mapped.map((message) => message.requestId));
    expect(await indexedIn(env.DB, all)).toEqual([plain.requestId]);
  });

  it("of a database that refuses them are handed back alone: the other database's rows stand", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const functionName = unique("fn");
    const mapped = dispatchMessage("split-a", functionName);
    const plain = dispatchMessage("default", functionName);
    const refusing = {
      prepare: (sql: string) => env.INDEX_DB_1.prepare(sql),
      batch: async () => {
        throw new Error("injected fault: INDEX_DB_1 refuses the batch");
      },
    } as unknown as D1Database;
    const handedBack: string[] = [];
    const events = {
      idFromName: (name: string) => env.ASYNC_EVENT.idFromName(name),
      get: (id: DurableObjectId) => ({
        owesIndexRow: async () => {
          handedBack.push(id.toString());
          throw new Error("injected fault: the event is unreachable");
        },
      }),
    } as unknown as Env["ASYNC_EVENT"];
    const batch = createMessageBatch<unknown>("afp-dispatch", [
      { id: "mapped", timestamp: Date.now(), attempts: 1, body: mapped },
      { id: "plain", timestamp: Date.now(), attempts: 1, body: plain },
    ]);
    const faulty = { ...env, INDEX_DB_1: refusing, ASYNC_EVENT: events, SCHEDULER: acceptingSchedulers };
    await consumeDispatchBatch(batch, faulty);
    const result = await getQueueResult(batch, createExecutionContext());

    // Only the refused row's event was asked to take it back; it could not, so its message comes again.
    expect(handedBack).toEqual([env.ASYNC_EVENT.idFromName(mapped.requestId).toString()]);
    expect(result.explicitAcks).toEqual(["plain"]);
    expect(result.retryMessages.map((retry) => retry.msgId)).toEqual(["mapped"]);
    expect(await indexedIn(env.DB, [plain.requestId, mapped.requestId])).toEqual([plain.requestId]);
    expect(await indexedIn(env.INDEX_DB_1, [mapped.requestId])).toEqual([]);
  });
});

describe("an ended event of a mapped namespace", () => {
  it("has its end row written into that namespace's index database", async () => {
    const requestId = crypto.randomUUID();
    const functionName = unique("fn");
    const now = Date.now();
    const running: EventState = {
      requestId,
      namespace: "split-a",
      functionName,
      qualifier: "$LATEST",
      invokeType: "OTHERS",
      function: functionSnapshot("split-a", functionName),
      phase: "running",
      version: 3,
      invokedAt: now - 3_000,
      instanceId: `split-a/${functionName}#0`,
      claimedAt: now - 2_000,
      startedAt: now - 1_000,
      containerId: "boot-split",
      cold: false,
    };
    const stub = env.ASYNC_EVENT.get(env.ASYNC_EVENT.idFromName(requestId));
    await runInDurableObject(stub, async (_instance, state) => {
      await state.storage.put("state", running);
    });
    await evictDurableObject(stub);
    expect(await stub.complete(running.instanceId as string, { kind: "returned", result: '"ok"' })).toEqual({
      ok: true,
    });
    // The end's row travels on the dispatch queue; its consumer writes it to INDEX_DB_1.
    await expect
      .poll(
        async () =>
          (
            await env.INDEX_DB_1.prepare("SELECT status FROM events WHERE request_id = ?")
              .bind(requestId)
              .first<{ status: string }>()
          )?.status,
        { timeout: 10_000 },
      )
      .toBe("FINISHED");
    expect(await indexedIn(env.DB, [requestId])).toEqual([]);
  });
});

describe("the reads of a mapped namespace", () => {
  it("list and count the rows of its own index database only", async () => {
    const functionName = unique("fn");
    await createFunction("split-b", functionName);
    const own = entry("split-b", functionName);
    // A row of the same namespace left in DB (as after a mapping change) is not read.
    const stray = entry("split-b", functionName);
    await writeIndexEntries(env.INDEX_DB_1, [own]);
    await writeIndexEntries(env.DB, [stray]);

    const listed = await call(`/v1/namespaces/split-b/functions/${functionName}/events`);
    expect(listed.status).toBe(200);
    const page = (await listed.json()) as { total: number; events: { requestId: string }[] };
    expect(page.events.map((event) => event.requestId)).toEqual([own.requestId]);
    expect(page.total).toBe(1);

    const counted = await call(`/v1/namespaces/split-b/functions/${functionName}/statistics`);
    expect(counted.status).toBe(200);
    expect(((await counted.json()) as { totals: Record<string, number> }).totals).toMatchObject({ FINISHED: 1 });
  });

  it("refuse DeleteFunction and a version's delete while its own index shows RUNNING events, and only then", async () => {
    const functionName = unique("fn");
    await createFunction("split-b", functionName);
    const fn = `/v1/namespaces/split-b/functions/${functionName}`;
    expect((await call(`${fn}/versions`, { method: "POST" })).status).toBe(201);
    const running = entry("split-b", functionName, {
      qualifier: "1",
      status: "RUNNING",
      statusCode: null,
      phase: "running",
      endTime: null,
      durationMs: null,
      version: 2,
    });
    await writeIndexEntries(env.INDEX_DB_1, [running]);
    // A stale RUNNING row of the version left in DB from before the namespace moved: not read.
    await writeIndexEntries(env.DB, [{ ...running, requestId: crypto.randomUUID() }]);

    const version = await call(`${fn}/versions/1`, { method: "DELETE" });
    expect(version.status).toBe(409);
    expect(await version.json()).toMatchObject({
      error: { code: "VERSION_IN_USE", message: expect.stringContaining("1 RUNNING event(s)") },
    });
    const deleted = await call(fn, { method: "DELETE" });
    expect(deleted.status).toBe(409);
    expect(await deleted.json()).toMatchObject({ error: { code: "FUNCTION_IN_USE" } });

    // Once the row ends, both go through.
    await writeIndexEntries(env.INDEX_DB_1, [{ ...running, status: "FINISHED", endTime: Date.now(), version: 5 }]);
    expect((await call(`${fn}/versions/1`, { method: "DELETE" })).status).toBe(204);
    expect((await call(fn, { method: "DELETE" })).status).toBe(204);
  });
});

describe("the retention purge", () => {
  it("runs on every index database, by each mapped namespace's own retention read from DB", async () => {
    const now = Date.now();
    const functionName = unique("fn");
    await updateNamespaceSettings(env.DB, "split-a", { retentionHours: 1 });
    const shortGone = entry("split-a", functionName, { startTime: now - 3 * HOUR, endTime: now - 2 * HOUR });
    const shortKept = entry("split-a", functionName, { startTime: now - 3 * HOUR, endTime: now - 30 * 60_000 });
    // split-b keeps the default retention (72 h).
    const plainKept = entry("split-b", functionName, { startTime: now - 3 * HOUR, endTime: now - 2 * HOUR });
    const plainGone = entry("split-b", functionName, { startTime: now - 74 * HOUR, endTime: now - 73 * HOUR });
    // A namespace not mapped here (moved away, or of a binding sharing this database): its rows go
    // by the longest retention any namespace may have (168 h).
    const leftKept = entry("moved-away", functionName, { startTime: now - 101 * HOUR, endTime: now - 100 * HOUR });
    const leftGone = entry("moved-away", functionName, { startTime: now - 170 * HOUR, endTime: now - 169 * HOUR });
    // In DB, a namespace of its own shorter retention is purged as before.
    const mainGone = entry("default", functionName, { startTime: now - 74 * HOUR, endTime: now - 73 * HOUR });
    const mainKept = entry("default", functionName, { startTime: now - 3 * HOUR, endTime: now - 2 * HOUR });
    const split = [shortGone, shortKept, plainKept, plainGone, leftKept, leftGone];
    await writeIndexEntries(env.INDEX_DB_1, split);
    await writeIndexEntries(env.DB, [mainGone, mainKept]);
    try {
      await worker.scheduled(createScheduledController({ scheduledTime: now, cron: "* * * * *" }), env);
      expect(
        await indexedIn(
          env.INDEX_DB_1,
          split.map((row) => row.requestId),
        ),
      ).toEqual([shortKept, plainKept, leftKept].map((row) => row.requestId));
      expect(await indexedIn(env.DB, [mainGone.requestId, mainKept.requestId])).toEqual([mainKept.requestId]);
    } finally {
      await updateNamespaceSettings(env.DB, "split-a", { retentionHours: 72 });
    }
  });
});
