// GET /v1/namespaces/{namespace}/functions/{name}/statistics: a function's events counted per
// status and hour from the D1 index (what the console's chart draws), and the function list's search.
import { env, SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { MAX_STATISTICS_HOURS, STATISTICS_BUCKET_MS } from "../../worker/events/event-statistics";
import { MAX_FUNCTION_SEARCH_CHARS } from "../../worker/functions/model";
import { zipBase64 } from "../helpers/zip";

const ROOT = { authorization: "Bearer AKIDintegration:integration-secret-key-0123456789abcdef" };
const NAMESPACE = "stats-ns";
const OTHER_NAMESPACE = "stats-other";
const FUNCTION = "stats-fn";
const NEIGHBOUR = "stats-neighbour";
const ZIP = zipBase64({ "index.js": "exports.main_handler = async () => 'ok';" });
const HOUR = STATISTICS_BUCKET_MS;
const NOW = Date.now();
const CURRENT_HOUR = Math.floor(NOW / HOUR) * HOUR;

interface Statistics {
  from: string;
  to: string;
  bucketMs: number;
  buckets: { start: string; RUNNING: number; FINISHED: number; FAILED: number; ABORTED: number }[];
  totals: { RUNNING: number; FINISHED: number; FAILED: number; ABORTED: number };
}

function call(path: string, headers: Record<string, string> = ROOT, init: RequestInit = {}): Promise<Response> {
  return SELF.fetch(`https://platform.test${path}`, { ...init, headers: { ...headers, ...(init.headers ?? {}) } });
}

async function errorCode(response: Response): Promise<string> {
  return ((await response.json()) as { error: { code: string } }).error.code;
}

const rows: [string, string, string, number][] = [
  // [requestId, function, status, startTime]
  ["10000000-0000-4000-8000-000000000001", FUNCTION, "FINISHED", CURRENT_HOUR + 1],
  ["10000000-0000-4000-8000-000000000002", FUNCTION, "FINISHED", CURRENT_HOUR + 2],
  ["10000000-0000-4000-8000-000000000003", FUNCTION, "FAILED", CURRENT_HOUR - HOUR + 5],
  ["10000000-0000-4000-8000-000000000004", FUNCTION, "RUNNING", CURRENT_HOUR - 5 * HOUR],
  ["10000000-0000-4000-8000-000000000005", FUNCTION, "ABORTED", CURRENT_HOUR - 71 * HOUR],
  // Outside the window (older than 72 hours): not counted.
  ["10000000-0000-4000-8000-000000000006", FUNCTION, "FINISHED", CURRENT_HOUR - 72 * HOUR - 1],
  // Another function of the namespace: not counted.
  ["10000000-0000-4000-8000-000000000007", NEIGHBOUR, "FAILED", CURRENT_HOUR + 3],
];

let scoped: Record<string, string> = {};

beforeAll(async () => {
  for (const [namespace, name] of [
    [NAMESPACE, FUNCTION],
    [NAMESPACE, NEIGHBOUR],
    [OTHER_NAMESPACE, FUNCTION],
  ] as const) {
    const created = await call(`/v1/namespaces/${namespace}/functions`, ROOT, {
      method: "POST",
      body: JSON.stringify({ name, runtime: "Nodejs22", code: { zipFile: ZIP } }),
    });
    expect([201, 409]).toContain(created.status);
  }
  const statement = env.DB.prepare(
    `INSERT OR REPLACE INTO events (request_id, namespace, function_name, qualifier, invoke_type, status, status_code,
       phase, start_time, end_time, duration_ms, version) VALUES (?, ?, ?, '$LATEST', 'OTHERS', ?, NULL, 'finished', ?, NULL, NULL, 2)`,
  );
  await env.DB.batch(rows.map(([id, name, status, start]) => statement.bind(id, NAMESPACE, name, status, start)));
  const key = await call("/v1/admin/credentials", ROOT, {
    method: "POST",
    body: JSON.stringify({ namespaces: [OTHER_NAMESPACE], description: "statistics suite" }),
  });
  expect(key.status).toBe(201);
  const pair = (await key.json()) as { secretId: string; secretKey: string };
  scoped = { authorization: `Bearer ${pair.secretId}:${pair.secretKey}` };
});

describe("function statistics", () => {
  it("counts the function's events per status and hour over the 3-day window, every hour present", async () => {
    const response = await call(`/v1/namespaces/${NAMESPACE}/functions/${FUNCTION}/statistics`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as Statistics;
    expect(body.bucketMs).toBe(HOUR);
    expect(body.buckets).toHaveLength(MAX_STATISTICS_HOURS);
    expect(Date.parse(body.to)).toBe(CURRENT_HOUR + HOUR);
    expect(Date.parse(body.from)).toBe(CURRENT_HOUR + HOUR - MAX_STATISTICS_HOURS * HOUR);
    const last = body.buckets.at(-1);
    expect(last).toMatchObject({ start: new Date(CURRENT_HOUR).toISOString(), FINISHED: 2, FAILED: 0 });
    expect(body.buckets.at(-2)).toMatchObject({ FAILED: 1, FINISHED: 0 });
    expect(body.buckets.at(-6)).toMatchObject({ RUNNING: 1 });
    expect(body.buckets[0]).toMatchObject({ ABORTED: 1 });
    expect(body.totals).toEqual({ RUNNING: 1, FINISHED: 2, FAILED: 1, ABORTED: 1 });
  });

  it("narrows the window to the last `hours` hours", async () => {
    const response = await call(`/v1/namespaces/${NAMESPACE}/functions/${FUNCTION}/statistics?hours=2`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as Statistics;
    expect(body.buckets).toHaveLength(2);
    expect(body.totals).toEqual({ RUNNING: 0, FINISHED: 2, FAILED: 1, ABORTED: 0 });
  });

  it("answers zeros for a function with no events", async () => {
    const response = await call(`/v1/namespaces/${OTHER_NAMESPACE}/functions/${FUNCTION}/statistics`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as Statistics;
    expect(body.totals).toEqual({ RUNNING: 0, FINISHED: 0, FAILED: 0, ABORTED: 0 });
  });

  it("refuses another namespace as not found, exactly as an unknown one, to a scoped key", async () => {
    const foreign = await call(`/v1/namespaces/${NAMESPACE}/functions/${FUNCTION}/statistics`, scoped);
    expect(foreign.status).toBe(404);
    expect(await errorCode(foreign)).toBe("NOT_FOUND");
    const unknown = await call(`/v1/namespaces/no-such-ns/functions/${FUNCTION}/statistics`, scoped);
    expect(unknown.status).toBe(404);
    expect(await errorCode(unknown)).toBe("NOT_FOUND");
    const own = await call(`/v1/namespaces/${OTHER_NAMESPACE}/functions/${FUNCTION}/statistics`, scoped);
    expect(own.status).toBe(200);
  });

  it("answers FUNCTION_NOT_FOUND for an unknown function", async () => {
    const response = await call(`/v1/namespaces/${NAMESPACE}/functions/no-such-fn/statistics`);
    expect(response.status).toBe(404);
    expect(await errorCode(response)).toBe("FUNCTION_NOT_FOUND");
  });

  it("refuses malformed input with a 400 and no credentials with a 401", async () => {
    for (const query of ["hours=0", `hours=${MAX_STATISTICS_HOURS + 1}`, "hours=x", "hours=1.5", "bucket=day"]) {
      const response = await call(`/v1/namespaces/${NAMESPACE}/functions/${FUNCTION}/statistics?${query}`);
      expect(response.status, query).toBe(400);
      expect(await errorCode(response)).toBe("INVALID_PARAMETER");
    }
    const badName = await call(`/v1/namespaces/${NAMESPACE}/functions/-bad-/statistics`);
    expect(badName.status).toBe(400);
    const anonymous = await call(`/v1/namespaces/${NAMESPACE}/functions/${FUNCTION}/statistics`, {});
    expect(anonymous.status).toBe(401);
  });
});

describe("function list search", () => {
  it("keeps the functions whose name contains the text, in any case", async () => {
    const response = await call(`/v1/namespaces/${NAMESPACE}/functions?search=NEIGH`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { total: number; functions: { name: string }[] };
    expect(body.total).toBe(1);
    expect(body.functions.map((fn) => fn.name)).toEqual([NEIGHBOUR]);
    const all = (await (await call(`/v1/namespaces/${NAMESPACE}/functions?search=stats-`)).json()) as {
      total: number;
    };
    expect(all.total).toBe(2);
  });

  it("treats SQL wildcards as plain text and refuses an empty or oversized search", async () => {
    const wildcard = (await (await call(`/v1/namespaces/${NAMESPACE}/functions?search=%25`)).json()) as {
      total: number;
    };
    expect(wildcard.total).toBe(0);
    for (const search of ["", "s".repeat(MAX_FUNCTION_SEARCH_CHARS + 1)]) {
      const response = await call(`/v1/namespaces/${NAMESPACE}/functions?search=${search}`);
      expect(response.status).toBe(400);
    }
  });
});
