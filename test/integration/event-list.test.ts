import { createScheduledController, env, SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import worker from "../../worker/index";

const AUTH = { authorization: "Bearer AKIDintegration:integration-secret-key-0123456789abcdef" };
const NAMESPACE = "listing";
const FUNCTIONS = ["etl-daily", "transcode", "infer"];
const STATUSES = ["RUNNING", "FINISHED", "FAILED", "ABORTED"] as const;
const INVOKE_TYPES = ["OTHERS", "TRIGGER_TIMER", "CMQ"];
// Versions (the qualifier column): a qualifier filter naming an alias reads the alias column instead.
const QUALIFIERS = ["$LATEST", "1"];
const FIXTURE_SIZE = 10_500;
const NOW = Date.now();
const DAY = 24 * 60 * 60 * 1000;

interface Row {
  requestId: string;
  functionName: string;
  qualifier: string;
  invokeType: string;
  status: string;
  startTime: number;
  endTime: number | null;
}

/** A deterministic pseudo-random sequence, so a failure can be reproduced. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    return state / 2_147_483_648;
  };
}

const fixture: Row[] = [];
const next = random(42);
for (let i = 0; i < FIXTURE_SIZE; i++) {
  const status = STATUSES[Math.floor(next() * 4)] as string;
  // Coarse times make ties common, which exercises the RequestId tie-break.
  const startTime = NOW - Math.floor((next() * 3 * DAY) / 1000) * 1000;
  fixture.push({
    requestId: `00000000-0000-4000-8000-${i.toString().padStart(12, "0")}`,
    functionName: FUNCTIONS[Math.floor(next() * FUNCTIONS.length)] as string,
    qualifier: QUALIFIERS[Math.floor(next() * QUALIFIERS.length)] as string,
    invokeType: INVOKE_TYPES[Math.floor(next() * INVOKE_TYPES.length)] as string,
    status,
    startTime,
    endTime: status === "RUNNING" ? null : startTime + Math.floor(next() * 3600) * 1000,
  });
}

interface Query {
  functionName: string;
  qualifier?: string;
  invokeTypes?: string[];
  statuses?: string[];
  requestId?: string;
  startTimeFrom?: number;
  startTimeTo?: number;
  endTimeFrom?: number;
  endTimeTo?: number;
  orderBy?: "startTime" | "endTime";
  order?: "ASC" | "DESC";
  offset?: number;
  limit?: number;
}

/** The reference: the same filter, order and page computed over the fixture in memory. */
function bruteForce(query: Query): { total: number; ids: string[] } {
  const matching = fixture.filter(
    (row) =>
      row.functionName === query.functionName &&
      (query.qualifier === undefined || row.qualifier === query.qualifier) &&
      (query.invokeTypes === undefined || query.invokeTypes.includes(row.invokeType)) &&
      (query.statuses === undefined || query.statuses.includes(row.status)) &&
      (query.requestId === undefined || row.requestId === query.requestId) &&
      (query.startTimeFrom === undefined || row.startTime >= query.startTimeFrom) &&
      (query.startTimeTo === undefined || row.startTime < query.startTimeTo) &&
      (query.endTimeFrom === undefined || (row.endTime !== null && row.endTime >= query.endTimeFrom)) &&
      (query.endTimeTo === undefined || (row.endTime !== null && row.endTime < query.endTimeTo)),
  );
  const key = query.orderBy === "endTime" ? "endTime" : "startTime";
  const sign = (query.order ?? "DESC") === "ASC" ? 1 : -1;
  // SQLite orders NULL before every value.
  const value = (row: Row) => row[key] ?? Number.NEGATIVE_INFINITY;
  matching.sort((a, b) => {
    const byTime = value(a) - value(b);
    if (byTime !== 0) return sign * byTime;
    return sign * (a.requestId < b.requestId ? -1 : a.requestId > b.requestId ? 1 : 0);
  });
  const offset = query.offset ?? 0;
  const limit = query.limit ?? 20;
  return { total: matching.length, ids: matching.slice(offset, offset + limit).map((row) => row.requestId) };
}

async function list(query: Query): Promise<{ status: number; total: number; ids: string[] }> {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (key === "functionName" || value === undefined) continue;
    params.set(key, Array.isArray(value) ? value.join(",") : String(value));
  }
  const response = await SELF.fetch(
    `https://platform.test/v1/namespaces/${NAMESPACE}/functions/${query.functionName}/events?${params}`,
    { headers: AUTH },
  );
  const body = (await response.json()) as { total: number; events: { requestId: string }[] };
  return { status: response.status, total: body.total, ids: (body.events ?? []).map((event) => event.requestId) };
}

beforeAll(async () => {
  const statement = env.DB.prepare(
    `INSERT OR REPLACE INTO events (request_id, namespace, function_name, qualifier, invoke_type, status, status_code,
       phase, start_time, end_time, duration_ms, version) VALUES (?, ?, ?, ?, ?, ?, NULL, 'finished', ?, ?, NULL, 2)`,
  );
  for (let i = 0; i < fixture.length; i += 500) {
    await env.DB.batch(
      fixture
        .slice(i, i + 500)
        .map((row) =>
          statement.bind(
            row.requestId,
            NAMESPACE,
            row.functionName,
            row.qualifier,
            row.invokeType,
            row.status,
            row.startTime,
            row.endTime,
          ),
        ),
    );
  }
});

describe("event list over a 10,500-event index", () => {
  const third = NOW - 2 * DAY;
  const queries: [string, Query][] = [
    ["one function, newest first (defaults)", { functionName: "transcode" }],
    ["a status list", { functionName: "infer", statuses: ["FAILED", "ABORTED"], limit: 100 }],
    [
      "invoke types and qualifier",
      { functionName: "etl-daily", invokeTypes: ["TRIGGER_TIMER", "CMQ"], qualifier: "1", limit: 50 },
    ],
    [
      "a start-time interval, oldest first",
      { functionName: "transcode", startTimeFrom: third, startTimeTo: third + DAY, order: "ASC", limit: 100 },
    ],
    [
      "an end-time interval ordered by end time",
      {
        functionName: "infer",
        endTimeFrom: third,
        endTimeTo: NOW - DAY,
        orderBy: "endTime",
        order: "DESC",
        limit: 100,
      },
    ],
    [
      "everything combined, second page",
      {
        functionName: "etl-daily",
        statuses: ["FINISHED"],
        invokeTypes: ["OTHERS"],
        qualifier: "$LATEST",
        startTimeFrom: NOW - 2.5 * DAY,
        startTimeTo: NOW - 0.5 * DAY,
        endTimeFrom: NOW - 2.5 * DAY,
        offset: 20,
        limit: 20,
      },
    ],
    [
      "ordered by end time ascending (running events have none)",
      { functionName: "transcode", orderBy: "endTime", order: "ASC", limit: 100 },
    ],
    [
      "one RequestId",
      { functionName: "infer", requestId: fixture.find((row) => row.functionName === "infer")?.requestId },
    ],
    [
      "a RequestId of another function",
      { functionName: "transcode", requestId: fixture.find((row) => row.functionName === "infer")?.requestId },
    ],
    ["an offset past the end", { functionName: "infer", offset: 9000, limit: 10 }],
  ];
  for (const [label, query] of queries) {
    it(`returns exactly the matching events for ${label}`, async () => {
      const expected = bruteForce(query);
      const actual = await list(query);
      expect(actual.status).toBe(200);
      expect(actual.total).toBe(expected.total);
      expect(actual.ids).toEqual(expected.ids);
    });
  }

  it("pages through a filter without gaps or overlaps", async () => {
    const query: Query = { functionName: "transcode", statuses: ["FAILED"], qualifier: "$LATEST", limit: 100 };
    const all = bruteForce({ ...query, limit: 100_000 });
    const collected: string[] = [];
    for (let offset = 0; offset < all.total; offset += 100) collected.push(...(await list({ ...query, offset })).ids);
    expect(collected).toEqual(all.ids);
  });

  it("refuses a limit over 100, an unknown status and an unknown filter with 400", async () => {
    for (const query of ["limit=101", "statuses=DONE", "colour=red", "order=SIDEWAYS", "startTimeFrom=yesterday"]) {
      const response = await SELF.fetch(
        `https://platform.test/v1/namespaces/${NAMESPACE}/functions/infer/events?${query}`,
        { headers: AUTH },
      );
      expect(response.status, query).toBe(400);
    }
  });
});

describe("event index retention", () => {
  it("deletes rows that ended more than 3 days before the scheduled run and keeps the rest", async () => {
    const fresh = crypto.randomUUID();
    const stale = crypto.randomUUID();
    // The purge goes by the end (event-retention.ts); a row that never ended is kept its run longer.
    const insert = env.DB.prepare(
      `INSERT INTO events (request_id, namespace, function_name, qualifier, invoke_type, status, phase, start_time, end_time, version)
       VALUES (?1, 'retention', 'fn-a', '$LATEST', 'OTHERS', 'FINISHED', 'finished', ?2 - 1000, ?2, 2)`,
    );
    const fixtureRows = async () =>
      (
        await env.DB.prepare("SELECT COUNT(*) AS n FROM events WHERE namespace = ?")
          .bind(NAMESPACE)
          .first<{ n: number }>()
      )?.n;
    const before = await fixtureRows();
    // Run as of the fixture's NOW: every fixture row started (so ended) less than 3 days before it and stays.
    const runAt = NOW;
    await env.DB.batch([insert.bind(stale, runAt - 3 * DAY - 60_000), insert.bind(fresh, runAt - 3 * DAY + 60_000)]);
    await worker.scheduled(createScheduledController({ scheduledTime: runAt, cron: "* * * * *" }), env);
    const left = await env.DB.prepare("SELECT request_id FROM events WHERE namespace = 'retention'").all<{
      request_id: string;
    }>();
    expect(left.results.map((row) => row.request_id)).toEqual([fresh]);
    expect(await fixtureRows()).toBe(before);
    expect(before).toBe(FIXTURE_SIZE);
  });
});

describe("list rate limit", () => {
  /** A fresh caller: the limit counts per SecretId, so a new key starts with an empty window. */
  async function newCaller(): Promise<Record<string, string>> {
    const response = await SELF.fetch("https://platform.test/v1/admin/credentials", {
      method: "POST",
      headers: AUTH,
      body: JSON.stringify({ namespaces: [NAMESPACE], description: "list rate limit" }),
    });
    expect(response.status).toBe(201);
    const key = (await response.json()) as { secretId: string; secretKey: string };
    return { authorization: `Bearer ${key.secretId}:${key.secretKey}` };
  }

  function listOnce(headers: Record<string, string>): Promise<Response> {
    return SELF.fetch(`https://platform.test/v1/namespaces/${NAMESPACE}/functions/infer/events?limit=1`, { headers });
  }

  it("answers 429 with advice to poll status once a caller lists more than 20 times a second", async () => {
    const caller = await newCaller();
    const other = await newCaller();
    const responses = await Promise.all(Array.from({ length: 30 }, () => listOnce(caller)));
    const limited = responses.filter((response) => response.status === 429);
    expect(limited.length).toBeGreaterThanOrEqual(10);
    expect(responses.filter((response) => response.status === 200).length).toBeLessThanOrEqual(20);
    for (const response of limited) expect(response.headers.get("retry-after")).toBe("1");
    const body = (await limited[0]?.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("RATE_LIMITED");
    expect(body.error.message).toContain("/v1/events/");
    // The limit is the caller's own: another SecretId lists at once.
    expect((await listOnce(other)).status).toBe(200);
  });
});
