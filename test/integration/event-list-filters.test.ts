// The event list's StatusCode and duration filters and its cursor pagination (issue 15, "List"),
// over a seeded index: each filter against an in-memory reference, their bounds, the cursor walk
// against the offset walk, the cursor's stability under inserts, its refusals and namespace scoping.
import { env, SELF } from "cloudflare:test";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  decodeCursor,
  encodeCursor,
  listEvents,
  listEventsQuerySchema,
  MAX_CURSOR_CHARS,
  MAX_CURSOR_KEY_MS,
  MAX_DURATION_FILTER_MS,
  MAX_STATUS_CODE_FILTERS,
} from "../../worker/events/event-list";

const AUTH = { authorization: "Bearer AKIDintegration:integration-secret-key-0123456789abcdef" };
const NAMESPACE = "list-filters";
const OTHER_NAMESPACE = "list-filters-other";
const FUNCTION = "filtered";
const NOW = Date.now();
const HOUR = 60 * 60 * 1000;

/** A fresh caller of the given namespaces: the read limit (20 a second) counts per SecretId. */
async function newCaller(namespaces: string[]): Promise<Record<string, string>> {
  const response = await SELF.fetch("https://platform.test/v1/admin/credentials", {
    method: "POST",
    headers: AUTH,
    body: JSON.stringify({ namespaces, description: "list filters" }),
  });
  expect(response.status).toBe(201);
  const key = (await response.json()) as { secretId: string; secretKey: string };
  return { authorization: `Bearer ${key.secretId}:${key.secretKey}` };
}

let caller: Record<string, string> = AUTH;
beforeEach(async () => {
  caller = await newCaller([NAMESPACE, STABLE_NAMESPACE]);
});
const STABLE_NAMESPACE = "list-filters-stable";

interface Row {
  requestId: string;
  status: string;
  statusCode: number | null;
  startTime: number;
  endTime: number | null;
  durationMs: number | null;
}

/** A deterministic pseudo-random sequence, so a failure can be reproduced. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    return state / 2_147_483_648;
  };
}

const ENDINGS: [string, number][] = [
  ["FINISHED", 200],
  ["FAILED", 430],
  ["FAILED", 433],
  ["FAILED", 500],
  ["ABORTED", 499],
];

/** 240 rows: about a fifth running (no code, no end, no duration); coarse times make ties common. */
function seededRows(count: number, seed: number, prefix: string): Row[] {
  const next = random(seed);
  return Array.from({ length: count }, (_, i) => {
    const startTime = NOW - 10 * HOUR + Math.floor(next() * 60) * 60_000;
    const requestId = `${prefix}-4000-8000-${i.toString().padStart(12, "0")}`;
    if (next() < 0.2)
      return { requestId, status: "RUNNING", statusCode: null, startTime, endTime: null, durationMs: null };
    const [status, statusCode] = ENDINGS[Math.floor(next() * ENDINGS.length)] as [string, number];
    // Durations in whole seconds, so that a bound lands exactly on rows (the range is closed).
    const durationMs = Math.floor(next() * 20) * 1000;
    return { requestId, status, statusCode, startTime, endTime: startTime + durationMs, durationMs };
  });
}

const rows = seededRows(240, 7, "00000000-0000");

async function insert(namespace: string, inserted: Row[]): Promise<void> {
  const statement = env.DB.prepare(
    `INSERT OR REPLACE INTO events (request_id, namespace, function_name, qualifier, invoke_type, status, status_code,
       phase, start_time, end_time, duration_ms, version) VALUES (?, ?, ?, '$LATEST', 'OTHERS', ?, ?, 'finished', ?, ?, ?, 2)`,
  );
  await env.DB.batch(
    inserted.map((row) =>
      statement.bind(
        row.requestId,
        namespace,
        FUNCTION,
        row.status,
        row.statusCode,
        row.startTime,
        row.endTime,
        row.durationMs,
      ),
    ),
  );
}

interface Query {
  statusCodes?: number[];
  statuses?: string[];
  minDurationMs?: number;
  maxDurationMs?: number;
  orderBy?: "startTime" | "endTime";
  order?: "ASC" | "DESC";
}

/** The reference: every matching row of `source`, in the list's order. */
function reference(source: Row[], query: Query): string[] {
  const matching = source.filter(
    (row) =>
      (query.statusCodes === undefined || (row.statusCode !== null && query.statusCodes.includes(row.statusCode))) &&
      (query.statuses === undefined || query.statuses.includes(row.status)) &&
      (query.minDurationMs === undefined || (row.durationMs !== null && row.durationMs >= query.minDurationMs)) &&
      (query.maxDurationMs === undefined || (row.durationMs !== null && row.durationMs <= query.maxDurationMs)),
  );
  const key = query.orderBy === "endTime" ? "endTime" : "startTime";
  const sign = query.order === "ASC" ? 1 : -1;
  // SQLite orders NULL before every value.
  const value = (row: Row) => row[key] ?? Number.NEGATIVE_INFINITY;
  matching.sort((a, b) => {
    // Compared, not subtracted: two missing keys (-Infinity) are equal, not NaN apart.
    const byTime = value(a) < value(b) ? -1 : value(a) > value(b) ? 1 : 0;
    if (byTime !== 0) return sign * byTime;
    return sign * (a.requestId < b.requestId ? -1 : 1);
  });
  return matching.map((row) => row.requestId);
}

interface Page {
  status: number;
  total: number;
  ids: string[];
  nextCursor: string | null;
  error?: { code: string; message: string };
}

function queryText(query: Record<string, unknown>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) continue;
    params.set(key, Array.isArray(value) ? value.join(",") : String(value));
  }
  return params.toString();
}

async function list(
  query: string | Record<string, unknown>,
  options: { namespace?: string; headers?: Record<string, string> } = {},
): Promise<Page> {
  const text = typeof query === "string" ? query : queryText(query);
  const response = await SELF.fetch(
    `https://platform.test/v1/namespaces/${options.namespace ?? NAMESPACE}/functions/${FUNCTION}/events?${text}`,
    { headers: options.headers ?? caller },
  );
  const body = (await response.json()) as {
    total: number;
    events?: { requestId: string }[];
    nextCursor: string | null;
    error?: { code: string; message: string };
  };
  return {
    status: response.status,
    total: body.total,
    ids: (body.events ?? []).map((event) => event.requestId),
    nextCursor: body.nextCursor,
    ...(body.error ? { error: body.error } : {}),
  };
}

/**
 * One page read through the domain (listEvents with the route's own query schema): the walks below
 * take dozens of pages, more than the read limit lets one caller read through the API in a second.
 */
async function domainPage(query: Record<string, unknown>) {
  return listEvents(env.DB, NAMESPACE, FUNCTION, listEventsQuerySchema.parse(JSON.parse(JSON.stringify(query))));
}

/** Every page of a query by cursor: the ids in order and the number of pages. */
async function walkByCursor(query: Query, limit: number): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: string | undefined;
  for (let pages = 1; pages <= 100; pages++) {
    const page = await domainPage({ ...queryObject(query), limit: String(limit), cursor });
    ids.push(...page.events.map((row) => row.requestId));
    if (page.nextCursor === null) return { ids, pages };
    cursor = page.nextCursor;
  }
  throw new Error("the cursor walk did not end");
}

async function walkByOffset(query: Query, limit: number): Promise<string[]> {
  const ids: string[] = [];
  for (let offset = 0; ; offset += limit) {
    const page = await domainPage({ ...queryObject(query), limit: String(limit), offset: String(offset) });
    ids.push(...page.events.map((row) => row.requestId));
    if (page.events.length < limit) return ids;
  }
}

/** A query as the route receives it: text values. */
function queryObject(query: Query): Record<string, string> {
  return Object.fromEntries(new URLSearchParams(queryText({ ...query })));
}

beforeAll(async () => {
  await insert(NAMESPACE, rows);
  // The same function name in another namespace, with rows of every code: never listed here.
  await insert(OTHER_NAMESPACE, seededRows(30, 11, "11111111-1111"));
});

describe("the StatusCode filter", () => {
  for (const codes of [[200], [430, 433], [499, 500, 503]]) {
    it(`lists exactly the events ending with ${codes.join(", ")}`, async () => {
      const page = await list({ statusCodes: codes, limit: 100 });
      const expected = reference(rows, { statusCodes: codes });
      expect(expected.length).toBeGreaterThan(0);
      expect(page.status).toBe(200);
      expect(page.total).toBe(expected.length);
      expect(page.ids).toEqual(expected.slice(0, 100));
    });
  }

  it("combines with the status filter and the end-time order", async () => {
    const query: Query = { statusCodes: [430, 500], statuses: ["FAILED"], orderBy: "endTime", order: "ASC" };
    const page = await list({ ...query, limit: 100 });
    expect(page.ids).toEqual(reference(rows, query));
  });

  it("matches no running event (a running event has no StatusCode)", async () => {
    const page = await list({ statusCodes: [200, 430, 433, 499, 500], statuses: ["RUNNING"] });
    expect(page.status).toBe(200);
    expect(page.total).toBe(0);
    expect(page.nextCursor).toBeNull();
  });
});

describe("the duration range", () => {
  const cases: [string, Query][] = [
    ["a closed range (both bounds included)", { minDurationMs: 5000, maxDurationMs: 9000 }],
    ["a minimum alone", { minDurationMs: 15_000 }],
    ["a maximum alone", { maxDurationMs: 2000 }],
    ["one exact duration (min equal to max)", { minDurationMs: 7000, maxDurationMs: 7000 }],
    ["a range with StatusCodes", { minDurationMs: 1000, maxDurationMs: 12_000, statusCodes: [200, 433] }],
  ];
  for (const [label, query] of cases) {
    it(`lists exactly the events within ${label}`, async () => {
      const expected = reference(rows, query);
      expect(expected.length).toBeGreaterThan(0);
      const page = await list({ ...query, limit: 100 });
      expect(page.status).toBe(200);
      expect(page.total).toBe(expected.length);
      expect(page.ids).toEqual(expected.slice(0, 100));
    });
  }

  it("includes events exactly on a bound and leaves out running events", async () => {
    const page = await list({ minDurationMs: 0, maxDurationMs: MAX_DURATION_FILTER_MS, limit: 100 });
    const running = rows.filter((row) => row.status === "RUNNING").length;
    expect(running).toBeGreaterThan(0);
    expect(page.total).toBe(rows.length - running);
    const onBound = await list({ minDurationMs: 0, maxDurationMs: 0, limit: 100 });
    expect(onBound.total).toBe(rows.filter((row) => row.durationMs === 0).length);
    expect(onBound.total).toBeGreaterThan(0);
  });
});

describe("the indexes behind the StatusCode and duration filters", () => {
  /** The indexes SQLite's plan for a statement names (EXPLAIN QUERY PLAN). */
  async function indexesOf(sql: string, ...params: unknown[]): Promise<string> {
    const plan = await env.DB.prepare(`EXPLAIN QUERY PLAN ${sql}`)
      .bind(...params)
      .all<{ detail: string }>();
    return plan.results.map((row) => row.detail).join("; ");
  }

  it("counts a StatusCode filter and a duration range from their own indexes", async () => {
    const byCode = await indexesOf(
      "SELECT count(*) FROM events WHERE namespace = ? AND function_name = ? AND status_code IN (430, 200)",
      NAMESPACE,
      FUNCTION,
    );
    expect(byCode).toContain("COVERING INDEX events_by_function_status_code");
    const byDuration = await indexesOf(
      "SELECT count(*) FROM events WHERE namespace = ? AND function_name = ? AND duration_ms >= ? AND duration_ms <= ?",
      NAMESPACE,
      FUNCTION,
      1_000,
      5_000,
    );
    expect(byDuration).toContain("COVERING INDEX events_by_function_duration");
  });
});

describe("bounds and malformed filters", () => {
  const refused: [string, string][] = [
    [
      `${MAX_STATUS_CODE_FILTERS + 1} StatusCodes`,
      `statusCodes=${Array(MAX_STATUS_CODE_FILTERS + 1)
        .fill(200)
        .join(",")}`,
    ],
    ["a StatusCode over 999", "statusCodes=1000"],
    ["a negative StatusCode", "statusCodes=-200"],
    ["a fractional StatusCode", "statusCodes=200.5"],
    ["a StatusCode that is no number", "statusCodes=OK"],
    ["an empty StatusCode list", "statusCodes=,,"],
    ["a negative minimum duration", "minDurationMs=-1"],
    ["a maximum duration over the bound", `maxDurationMs=${MAX_DURATION_FILTER_MS + 1}`],
    ["a fractional duration", "minDurationMs=1.5"],
    ["a duration that is no number", "maxDurationMs=long"],
    ["a duration in exponent notation past the bound", "maxDurationMs=1e400"],
  ];
  for (const [label, query] of refused) {
    it(`refuses ${label} with 400 INVALID_PARAMETER naming the field`, async () => {
      const page = await list(query);
      expect(page.status).toBe(400);
      expect(page.error?.code).toBe("INVALID_PARAMETER");
      expect(page.error?.message).toContain(query.split("=")[0]);
    });
  }

  it("refuses a minimum duration over the maximum", async () => {
    const page = await list("minDurationMs=5000&maxDurationMs=4999");
    expect(page.status).toBe(400);
    expect(page.error?.message).toContain("minDurationMs: must not exceed maxDurationMs");
  });

  it(`accepts exactly ${MAX_STATUS_CODE_FILTERS} StatusCodes and the largest duration`, async () => {
    const codes = [200, 430, 433, 434, 439, 499, 500, 503, 0, 999];
    expect(codes).toHaveLength(MAX_STATUS_CODE_FILTERS);
    const page = await list({ statusCodes: codes, maxDurationMs: MAX_DURATION_FILTER_MS, limit: 1 });
    expect(page.status).toBe(200);
    expect(page.total).toBe(rows.length - rows.filter((row) => row.status === "RUNNING").length);
  });
});

describe("cursor pagination", () => {
  const walks: [string, Query][] = [
    ["newest first (the default order)", {}],
    ["oldest first", { order: "ASC" }],
    ["by end time ascending (running events first)", { orderBy: "endTime", order: "ASC" }],
    ["by end time descending (running events last)", { orderBy: "endTime", order: "DESC" }],
    ["with StatusCodes and a duration range", { statusCodes: [200, 430, 499], minDurationMs: 3000 }],
    ["with running events only, by end time", { statuses: ["RUNNING"], orderBy: "endTime", order: "DESC" }],
  ];
  for (const [label, query] of walks) {
    it(`walks the same rows as the offset walk, ${label}`, async () => {
      const expected = reference(rows, query);
      const byCursor = await walkByCursor(query, 7);
      expect(byCursor.ids).toEqual(expected);
      expect(byCursor.ids).toEqual(await walkByOffset(query, 7));
      expect(byCursor.pages).toBe(Math.max(1, Math.ceil(expected.length / 7)));
    });
  }

  it("answers nextCursor null on the last page, also when it is exactly full", async () => {
    const expected = reference(rows, { statusCodes: [200] });
    const full = await list({ statusCodes: [200], limit: expected.length });
    expect(full.ids).toHaveLength(expected.length);
    expect(full.nextCursor).toBeNull();
    const short = await list({ statusCodes: [200], limit: expected.length - 1 });
    expect(short.nextCursor).not.toBeNull();
  });

  it("continues from an offset page's nextCursor", async () => {
    const expected = reference(rows, {});
    const second = await list({ offset: 10, limit: 10 });
    expect(second.ids).toEqual(expected.slice(10, 20));
    const third = await list({ cursor: second.nextCursor, limit: 10 });
    expect(third.ids).toEqual(expected.slice(20, 30));
    expect(third.total).toBe(rows.length);
  });

  it("keeps its next page when new events arrive, where the offset page shifts", async () => {
    const local = seededRows(40, 3, "22222222-2222");
    const namespace = STABLE_NAMESPACE;
    await insert(namespace, local);
    const first = await list({ limit: 10 }, { namespace });
    const expectedSecond = reference(local, {}).slice(10, 20);
    // Newer events (listed first, newest first) and older ones arrive after the first page.
    const arrivals: Row[] = [0, 1, 2].map((i) => ({
      requestId: `33333333-3333-4000-8000-${i.toString().padStart(12, "0")}`,
      status: "FINISHED",
      statusCode: 200,
      startTime: NOW + i * 1000,
      endTime: NOW + i * 1000 + 10,
      durationMs: 10,
    }));
    const older: Row = { ...(arrivals[0] as Row), requestId: "44444444-4444-4000-8000-000000000000", startTime: 0 };
    await insert(namespace, [...arrivals, older]);
    const byCursor = await list({ limit: 10, cursor: first.nextCursor }, { namespace });
    expect(byCursor.ids).toEqual(expectedSecond);
    const byOffset = await list({ limit: 10, offset: 10 }, { namespace });
    expect(byOffset.ids).not.toEqual(expectedSecond);
    // The rest of the walk reaches the older arrival, after every original row.
    const rest: string[] = [...byCursor.ids];
    let cursor = byCursor.nextCursor;
    while (cursor !== null) {
      const page = await list({ limit: 10, cursor }, { namespace });
      rest.push(...page.ids);
      cursor = page.nextCursor;
    }
    expect(rest).toEqual([...reference(local, {}).slice(10), older.requestId]);
  });

  it("is opaque text that decodes to the last row's order key and RequestId", async () => {
    const page = await list({ orderBy: "endTime", order: "ASC", limit: 3 });
    const decoded = decodeCursor(page.nextCursor ?? "");
    const last = rows.find((row) => row.requestId === page.ids[2]);
    expect(decoded).toEqual({ orderBy: "endTime", order: "ASC", key: last?.endTime, requestId: last?.requestId });
    expect(page.nextCursor).toMatch(/^[A-Za-z0-9_-]+$/);
  });
});

describe("cursor refusals", () => {
  /** A well-formed RequestId of no event. */
  const UUID = "55555555-5555-4555-8555-555555555555";
  const valid = encodeCursor({ orderBy: "startTime", order: "DESC", key: NOW, requestId: rows[0]?.requestId ?? "" });
  const base64url = (text: string) => btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const malformed: [string, string][] = [
    ["text that is no base64url", "not a cursor!"],
    ["base64url of no JSON", base64url("hello")],
    ["a JSON object instead of the tuple", base64url(JSON.stringify({ key: 1, requestId: "x" }))],
    ["another version", base64url(JSON.stringify([2, "startTime", "DESC", 1, "x"]))],
    ["an unknown order key", base64url(JSON.stringify([1, "duration", "DESC", 1, "x"]))],
    ["a negative key", base64url(JSON.stringify([1, "startTime", "DESC", -1, "x"]))],
    ["no key in a start-time order", base64url(JSON.stringify([1, "startTime", "DESC", null, "x"]))],
    ["an over-long RequestId", base64url(JSON.stringify([1, "startTime", "DESC", 1, "r".repeat(65)]))],
    // Forged but well-formed: base64url of a JSON tuple of the right shape, with fields no list makes.
    ["a RequestId that is no UUID", base64url(JSON.stringify([1, "startTime", "DESC", 1, "x"]))],
    ["a RequestId with a NUL", base64url(JSON.stringify([1, "startTime", "DESC", 1, `${UUID.slice(0, -1)}\u0000`]))],
    [
      "a RequestId with a lone surrogate",
      base64url(JSON.stringify([1, "startTime", "DESC", 1, `${UUID.slice(0, -1)}\ud800`])),
    ],
    ["an empty RequestId", base64url(JSON.stringify([1, "endTime", "ASC", null, ""]))],
    ["a key past the last date", base64url(JSON.stringify([1, "startTime", "DESC", MAX_CURSOR_KEY_MS + 1, UUID]))],
    ["a fractional key", base64url(JSON.stringify([1, "startTime", "DESC", 1.5, UUID]))],
    ["an unsafe integer key", base64url(JSON.stringify([1, "endTime", "ASC", 1e300, UUID]))],
    ["an empty cursor", ""],
    [`more than ${MAX_CURSOR_CHARS} characters`, `${valid}${"A".repeat(MAX_CURSOR_CHARS)}`],
    ["a valid cursor cut short", valid.slice(0, -3)],
  ];
  for (const [label, cursor] of malformed) {
    it(`refuses ${label} with 400 INVALID_PARAMETER`, async () => {
      const page = await list(`cursor=${encodeURIComponent(cursor)}`);
      expect(page.status).toBe(400);
      expect(page.error?.code).toBe("INVALID_PARAMETER");
      expect(page.error?.message).toContain("cursor");
    });
  }

  it("accepts a forged cursor of a well-formed RequestId of no event: it only moves where the page starts", async () => {
    const key = NOW - 5 * HOUR;
    // Past every seeded RequestId: the page starts with the rows of time `key` itself, then older ones.
    const forged = encodeCursor({
      orderBy: "startTime",
      order: "DESC",
      key,
      requestId: "ffffffff-ffff-4fff-bfff-ffffffffffff",
    });
    const page = await list(`cursor=${forged}&limit=100`);
    expect(page.status).toBe(200);
    const startsAt = rows.filter((row) => row.startTime <= key).map((row) => row.requestId);
    expect(page.ids).toEqual(
      reference(rows, {})
        .filter((id) => startsAt.includes(id))
        .slice(0, 100),
    );
    expect(page.total).toBe(rows.length);
  });

  it("refuses a cursor used with another order or orderBy", async () => {
    const first = await list({ limit: 5 });
    expect(first.nextCursor).not.toBeNull();
    for (const other of ["order=ASC", "orderBy=endTime", "orderBy=endTime&order=ASC"]) {
      const page = await list(`cursor=${first.nextCursor}&${other}`);
      expect(page.status, other).toBe(400);
      expect(page.error?.message).toContain("made for orderBy=startTime&order=DESC");
    }
    // The same order spelled in another case is the same order.
    expect((await list(`cursor=${first.nextCursor}&order=desc&orderBy=startTime`)).status).toBe(200);
  });

  it("refuses a cursor together with an offset, even offset 0", async () => {
    const first = await list({ limit: 5 });
    const page = await list(`cursor=${first.nextCursor}&offset=0`);
    expect(page.status).toBe(400);
    expect(page.error?.message).toContain("cursor: give either cursor or offset, not both");
  });
});

describe("namespace scoping", () => {
  const scopedCaller = (namespace: string) => newCaller([namespace]);

  it("answers another namespace's list as an unknown one's, filters and cursor included", async () => {
    const caller = await scopedCaller(OTHER_NAMESPACE);
    const own = await list({ statusCodes: [200], minDurationMs: 0 }, { headers: caller, namespace: OTHER_NAMESPACE });
    expect(own.status).toBe(200);
    const cursor = (await list({ limit: 2 })).nextCursor;
    const foreign = await list({ statusCodes: [200], cursor }, { headers: caller });
    const unknown = await list({ statusCodes: [200], cursor }, { headers: caller, namespace: "list-filters-none" });
    expect(foreign.status).toBe(404);
    expect(foreign.error?.code).toBe("NOT_FOUND");
    expect(unknown.status).toBe(404);
    expect(foreign.error?.code).toBe(unknown.error?.code);
    expect(foreign.error?.message.replace(NAMESPACE, "X")).toBe(
      unknown.error?.message.replace("list-filters-none", "X"),
    );
  });

  it("lists only the path's namespace with a cursor made on another namespace's list", async () => {
    const caller = await scopedCaller(OTHER_NAMESPACE);
    const cursor = (await list({ order: "ASC", limit: 1 })).nextCursor;
    const page = await list({ order: "ASC", cursor, limit: 100 }, { headers: caller, namespace: OTHER_NAMESPACE });
    expect(page.status).toBe(200);
    expect(page.ids.length).toBeGreaterThan(0);
    for (const id of page.ids) expect(id.startsWith("11111111-1111")).toBe(true);
  });
});

describe("the OpenAPI document", () => {
  it("documents the new parameters and nextCursor of the list", async () => {
    const response = await SELF.fetch("https://platform.test/openapi.json");
    const document = (await response.json()) as {
      paths: Record<string, { get: { description: string; parameters: { name: string; in: string }[] } }>;
    };
    const operation = document.paths["/v1/namespaces/{namespace}/functions/{name}/events"]?.get;
    const names = (operation?.parameters ?? []).filter((p) => p.in === "query").map((p) => p.name);
    expect(names).toEqual(
      expect.arrayContaining(["statusCodes", "minDurationMs", "maxDurationMs", "cursor", "offset"]),
    );
    expect(operation?.description).toContain("nextCursor");
    expect(operation?.description).toContain(`at most ${MAX_STATUS_CODE_FILTERS} StatusCodes`);
    expect(JSON.stringify(document)).toContain('"nextCursor"');
  });
});
