// Payload and replay (issue 14): GET /v1/events/{id}/payload returns the payload exactly as it was
// sent; POST /v1/events/{id}/replay invokes it again as a new event linked to the original both
// ways. Happy paths, the bound of the replay list, and attacks (another namespace, unknown and
// malformed ids, bodies other than {}, a deleted function).
import { env, evictDurableObject, runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { type EventState, MAX_REPLAYS_LISTED, type PublicEvent } from "../../worker/events/event-machine";
import { READ_RATE_PER_SECOND } from "../../worker/ratelimit/read-limit";
import { unwrap } from "../../worker/shared/errors";
import { functionSnapshot } from "../helpers/function-snapshot";
import { zipBase64 } from "../helpers/zip";

const BASE = "https://platform.test";
/** The Worker's environment with its secrets (vitest.config.ts sets them). */
const workerEnv: Env = env;
const ADMIN = { authorization: `Bearer ${workerEnv.DEV_SECRET_ID ?? ""}:${workerEnv.DEV_SECRET_KEY ?? ""}` };
const ZIP = zipBase64({ "index.js": "exports.main_handler = async (event) => event;" });
/** Body limit of the replay route (api/routes/events.ts MAX_REPLAY_BODY_BYTES). */
const REPLAY_BODY_LIMIT_BYTES = 4096;
/** A payload whose text JSON.stringify would not give back (spacing, key order, number forms, escapes). */
const ODD_PAYLOAD = '{ "b" : 1.50,\n\t"a": [1e3, -0, "名前", "\\u00e9"], "big": 12345678901234567890 }';

interface Key {
  secretId: string;
  secretKey: string;
}
type Headers = Record<string, string>;
interface ErrorBody {
  error: { code: string; message: string; requestId: string };
}

let counter = 0;
/** A name unique to this run, valid as a namespace and as a function name. */
function unique(prefix: string): string {
  counter += 1;
  return `${prefix}${Date.now().toString(36)}${counter}`;
}

function bearer(key: Key): Headers {
  return { authorization: `Bearer ${key.secretId}:${key.secretKey}` };
}

function call(path: string, init: RequestInit & { headers?: Headers } = {}): Promise<Response> {
  return SELF.fetch(`${BASE}${path}`, { ...init, headers: { ...ADMIN, ...(init.headers ?? {}) } });
}

async function createKey(namespaces: string[]): Promise<Key> {
  const response = await call("/v1/admin/credentials", {
    method: "POST",
    body: JSON.stringify({ namespaces, description: "replay suite" }),
  });
  expect(response.status).toBe(201);
  return (await response.json()) as Key;
}

/** A namespace with one async function (high QPS limit) and a key scoped to the namespace. */
async function setUp(): Promise<{ namespace: string; name: string; key: Key }> {
  const namespace = unique("rp");
  const name = unique("fn");
  const created = await call(`/v1/namespaces/${namespace}/functions`, {
    method: "POST",
    body: JSON.stringify({ name, runtime: "Nodejs22", code: { zipFile: ZIP }, qpsLimit: 100_000 }),
  });
  expect(created.status).toBe(201);
  return { namespace, name, key: await createKey([namespace]) };
}

async function invoke(namespace: string, name: string, payload: string, key: Key): Promise<string> {
  const response = await call(`/v1/namespaces/${namespace}/functions/${name}/invocations`, {
    method: "POST",
    headers: bearer(key),
    body: payload,
  });
  expect(response.status).toBe(202);
  return ((await response.json()) as { requestId: string }).requestId;
}

function replay(requestId: string, key: Key, body?: string): Promise<Response> {
  return call(`/v1/events/${requestId}/replay`, {
    method: "POST",
    headers: { ...bearer(key), "content-type": "application/json" },
    ...(body !== undefined ? { body } : {}),
  });
}

function readPayload(requestId: string, key: Key): Promise<Response> {
  return call(`/v1/events/${requestId}/payload`, { headers: bearer(key) });
}

async function viewOf(requestId: string): Promise<PublicEvent> {
  return unwrap<PublicEvent>(await env.ASYNC_EVENT.get(env.ASYNC_EVENT.idFromName(requestId)).view());
}

async function errorOf(response: Response): Promise<ErrorBody["error"]> {
  return ((await response.json()) as ErrorBody).error;
}

/** How many rows the event index holds for a function. */
async function indexedEvents(namespace: string, name: string): Promise<number> {
  const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM events WHERE namespace = ? AND function_name = ?")
    .bind(namespace, name)
    .first<{ n: number }>();
  return row?.n ?? 0;
}

/** Stores an ended event with its payload in its Durable Object, as if it had run (no index row). */
async function seedEndedEvent(
  namespace: string,
  name: string,
  payload: string,
  extra: Partial<EventState> = {},
): Promise<string> {
  const requestId = crypto.randomUUID();
  const invokedAt = Date.now() - 60_000;
  const state: EventState = {
    requestId,
    namespace,
    functionName: name,
    qualifier: "$LATEST",
    invokeType: "OTHERS",
    function: functionSnapshot(namespace, name),
    phase: "finished",
    version: 4,
    invokedAt,
    startedAt: invokedAt + 1_000,
    endedAt: invokedAt + 2_000,
    statusCode: 200,
    result: payload,
    ...extra,
  };
  const stub = env.ASYNC_EVENT.get(env.ASYNC_EVENT.idFromName(requestId));
  await runInDurableObject(stub, async (_instance, storage) => {
    await storage.storage.put({ state, payload });
  });
  await evictDurableObject(stub);
  return requestId;
}

describe("GET /v1/events/{requestId}/payload", () => {
  it("returns the payload exactly as it was sent, as application/json", async () => {
    const { namespace, name, key } = await setUp();
    const requestId = await invoke(namespace, name, ODD_PAYLOAD, key);
    const response = await readPayload(requestId, key);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("application/json");
    expect(await response.text()).toBe(ODD_PAYLOAD);
  });

  it("returns {} for an invocation sent with an empty body, and the payload of an ended event", async () => {
    const { namespace, name, key } = await setUp();
    const empty = await invoke(namespace, name, "", key);
    expect(await (await readPayload(empty, key)).text()).toBe("{}");
    const ended = await seedEndedEvent(namespace, name, '["done", 1]');
    expect(await (await readPayload(ended, key)).text()).toBe('["done", 1]');
  });

  it("answers another namespace's event EVENT_NOT_FOUND, exactly as an unknown one", async () => {
    const own = await setUp();
    const other = await setUp();
    const foreign = await invoke(other.namespace, other.name, '{"secret":"theirs"}', other.key);
    const foreignAnswer = await readPayload(foreign, own.key);
    const unknownAnswer = await readPayload(crypto.randomUUID(), own.key);
    expect(foreignAnswer.status).toBe(404);
    expect(unknownAnswer.status).toBe(404);
    const foreignError = await errorOf(foreignAnswer);
    expect(foreignError.code).toBe("EVENT_NOT_FOUND");
    expect(foreignError.code).toBe((await errorOf(unknownAnswer)).code);
    expect(foreignError.message).toBe(`no event ${foreign}`);
    expect(JSON.stringify(foreignError)).not.toContain("theirs");
  });

  it("answers unknown and malformed RequestIds EVENT_NOT_FOUND", async () => {
    const { key } = await setUp();
    for (const id of [crypto.randomUUID(), "not-a-uuid", "..%2F..", "x".repeat(500), "__proto__", "%00"]) {
      const response = await readPayload(id, key);
      expect(response.status, id).toBe(404);
      expect((await errorOf(response)).code, id).toBe("EVENT_NOT_FOUND");
    }
  });

  it("counts payload reads in the read limit (429 with Retry-After past it)", async () => {
    const { namespace, name, key } = await setUp();
    const requestId = await invoke(namespace, name, "{}", key);
    const responses = await Promise.all(
      Array.from({ length: READ_RATE_PER_SECOND + 10 }, () => readPayload(requestId, key)),
    );
    const limited = responses.filter((response) => response.status === 429);
    expect(limited.length).toBeGreaterThanOrEqual(5);
    expect(limited[0]?.headers.get("retry-after")).toBe("1");
    expect((await errorOf(limited[0] as Response)).code).toBe("RATE_LIMITED");
    await Promise.all(responses.filter((response) => !response.bodyUsed).map((response) => response.text()));
  });
});

describe("POST /v1/events/{requestId}/replay", () => {
  it("invokes the payload again as a new event of the same function, linked both ways", async () => {
    const { namespace, name, key } = await setUp();
    const original = await invoke(namespace, name, ODD_PAYLOAD, key);
    const response = await replay(original, key, "{}");
    expect(response.status).toBe(202);
    const accepted = (await response.json()) as { requestId: string; replayOf: string };
    expect(accepted.replayOf).toBe(original);
    expect(accepted.requestId).not.toBe(original);

    const replayed = await viewOf(accepted.requestId);
    expect(replayed).toMatchObject({
      namespace,
      functionName: name,
      qualifier: "$LATEST",
      replayOf: original,
      replays: [],
      replayCount: 0,
    });
    expect(await (await readPayload(accepted.requestId, key)).text()).toBe(ODD_PAYLOAD);

    const originalView = await call(`/v1/events/${original}`, { headers: bearer(key) });
    expect(await originalView.json()).toMatchObject({
      replayOf: null,
      replays: [accepted.requestId],
      replayCount: 1,
      replaysTruncated: false,
    });
    const replayedView = await call(`/v1/events/${accepted.requestId}`, { headers: bearer(key) });
    expect(await replayedView.json()).toMatchObject({ requestId: accepted.requestId, replayOf: original });
  });

  it("replays an ended event, with an empty body, and lists every replay in order", async () => {
    const { namespace, name, key } = await setUp();
    const original = await seedEndedEvent(namespace, name, '{"file":"a.mp4"}');
    const first = (await (await replay(original, key)).json()) as { requestId: string };
    const second = (await (await replay(original, key, "  {}  ")).json()) as { requestId: string };
    const view = await viewOf(original);
    expect(view.status).toBe("FINISHED");
    expect(view.replays).toEqual([first.requestId, second.requestId]);
    expect(view.replayCount).toBe(2);
    expect((await viewOf(second.requestId)).replayOf).toBe(original);
    expect(await (await readPayload(second.requestId, key)).text()).toBe('{"file":"a.mp4"}');
  });

  it(`lists at most ${MAX_REPLAYS_LISTED} replays; past it only replayCount grows and the view says so`, async () => {
    const { namespace, name, key } = await setUp();
    const listed = Array.from({ length: MAX_REPLAYS_LISTED }, () => crypto.randomUUID());
    const original = await seedEndedEvent(namespace, name, "{}", {
      replays: listed,
      replayCount: MAX_REPLAYS_LISTED,
    });
    const response = await replay(original, key);
    expect(response.status).toBe(202);
    const { requestId } = (await response.json()) as { requestId: string };
    const view = await viewOf(original);
    expect(view.replays).toEqual(listed);
    expect(view.replayCount).toBe(MAX_REPLAYS_LISTED + 1);
    expect(view.replaysTruncated).toBe(true);
    // The unlisted replay still names its original.
    expect((await viewOf(requestId)).replayOf).toBe(original);
  });

  it("records a replay on its original once, however often the recording is repeated", async () => {
    const { namespace, name } = await setUp();
    const original = await seedEndedEvent(namespace, name, "{}");
    const stub = env.ASYNC_EVENT.get(env.ASYNC_EVENT.idFromName(original));
    const replayId = crypto.randomUUID();
    expect(unwrap(await stub.recordReplay(replayId))).toEqual({ replayCount: 1, listed: true });
    expect(unwrap(await stub.recordReplay(replayId))).toEqual({ replayCount: 1, listed: true });
    await evictDurableObject(stub);
    expect(await viewOf(original)).toMatchObject({ replays: [replayId], replayCount: 1 });
  });

  it("answers another namespace's event EVENT_NOT_FOUND, as an unknown one, and replays nothing", async () => {
    const own = await setUp();
    const other = await setUp();
    const foreign = await invoke(other.namespace, other.name, "{}", other.key);
    const foreignAnswer = await replay(foreign, own.key, "{}");
    const unknownAnswer = await replay(crypto.randomUUID(), own.key, "{}");
    expect(foreignAnswer.status).toBe(404);
    expect(unknownAnswer.status).toBe(404);
    expect((await errorOf(foreignAnswer)).code).toBe("EVENT_NOT_FOUND");
    expect((await errorOf(unknownAnswer)).code).toBe("EVENT_NOT_FOUND");
    expect(await viewOf(foreign)).toMatchObject({ replays: [], replayCount: 0 });
  });

  it("answers unknown and malformed RequestIds EVENT_NOT_FOUND", async () => {
    const { key } = await setUp();
    for (const id of [crypto.randomUUID(), "not-a-uuid", "..%2F..", "x".repeat(500), "__proto__", "%00"]) {
      const response = await replay(id, key, "{}");
      expect(response.status, id).toBe(404);
      expect((await errorOf(response)).code, id).toBe("EVENT_NOT_FOUND");
    }
  });

  it("refuses any body other than empty or {} with a 4xx and records nothing", async () => {
    const { namespace, name, key } = await setUp();
    const original = await seedEndedEvent(namespace, name, "{}");
    const refusals: [string, number, string][] = [
      ['{"graceful":true}', 400, "INVALID_PARAMETER"],
      ['{"__proto__":{}}', 400, "INVALID_PARAMETER"],
      ["[]", 400, "INVALID_PARAMETER"],
      ["null", 400, "INVALID_PARAMETER"],
      ['"{}"', 400, "INVALID_PARAMETER"],
      ["{", 400, "INVALID_JSON"],
      [`{}${" ".repeat(REPLAY_BODY_LIMIT_BYTES)}`, 413, "PAYLOAD_TOO_LARGE"],
    ];
    for (const [body, status, code] of refusals) {
      const response = await replay(original, key, body);
      expect(response.status, body.slice(0, 40)).toBe(status);
      expect((await errorOf(response)).code, body.slice(0, 40)).toBe(code);
    }
    expect(await viewOf(original)).toMatchObject({ replays: [], replayCount: 0 });
    expect(await indexedEvents(namespace, name)).toBe(0);
  });

  it("refuses to replay an event whose function was deleted (FUNCTION_NOT_FOUND) and records nothing", async () => {
    const { namespace, name, key } = await setUp();
    const original = await seedEndedEvent(namespace, name, '{"again":true}');
    const deleted = await call(`/v1/namespaces/${namespace}/functions/${name}`, { method: "DELETE" });
    expect(deleted.status).toBeLessThan(300);
    const response = await replay(original, key, "{}");
    expect(response.status).toBe(404);
    expect((await errorOf(response)).code).toBe("FUNCTION_NOT_FOUND");
    expect(await viewOf(original)).toMatchObject({ replays: [], replayCount: 0 });
    expect(await indexedEvents(namespace, name)).toBe(0);
    // The original itself stays readable.
    expect(await (await readPayload(original, key)).text()).toBe('{"again":true}');
  });
});
