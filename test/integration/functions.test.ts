import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { zipBase64 } from "../helpers/zip";

const AUTH = { authorization: "Bearer AKIDintegration:integration-secret-key-0123456789abcdef" };
const ZIP = zipBase64({ "index.js": "exports.main_handler = async () => 'ok';" });
let counter = 0;

function uniqueName(): string {
  counter += 1;
  return `fn-${Date.now().toString(36)}-${counter}`;
}

function call(path: string, init: RequestInit = {}): Promise<Response> {
  return SELF.fetch(`https://platform.test${path}`, { ...init, headers: { ...AUTH, ...(init.headers ?? {}) } });
}

function create(body: Record<string, unknown>, namespace = "default"): Promise<Response> {
  return call(`/v1/namespaces/${namespace}/functions`, { method: "POST", body: JSON.stringify(body) });
}

/** Creates a function and checks it was created: a test's setup that fails says so at once. */
async function createOk(body: Record<string, unknown>, namespace = "default"): Promise<void> {
  const response = await create(body, namespace);
  expect(response.status, `creating ${String(body.name)}: ${await response.clone().text()}`).toBe(201);
}

async function functionCount(): Promise<number> {
  const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM functions").first<{ n: number }>();
  return row?.n ?? 0;
}

async function errorCode(response: Response): Promise<string> {
  return ((await response.json()) as { error: { code: string } }).error.code;
}

describe("function registry", () => {
  it("creates a function with defaults, stores its code in R2 by sha256 and reads it back", async () => {
    const name = uniqueName();
    const created = await create({ name, runtime: "Nodejs22", code: { zipFile: ZIP }, timeout: 600 });
    expect(created.status).toBe(201);
    const body = (await created.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      name,
      namespace: "default",
      runtime: "Nodejs22",
      handler: "index.main_handler",
      timeout: 600,
      memorySize: 128,
      asyncRunEnable: true,
      qpsLimit: 1000,
    });
    const stored = await env.CODE_BUCKET.get(`code/default/${name}/${body.codeSha256 as string}.zip`);
    expect(stored?.size).toBe(body.codeSize);
    const read = await call(`/v1/namespaces/default/functions/${name}`);
    // GET of one function adds its dispatch state (scheduling/dispatch-pause.ts): running.
    expect(await read.json()).toEqual({ ...body, dispatchPaused: false, pausedAt: null });
  });

  it("lists functions with paging and a total", async () => {
    const namespace = `ns${Date.now().toString(36)}`;
    for (const name of ["alpha1", "beta22", "gamma3"]) {
      expect((await create({ name, runtime: "Python3.11", code: { zipFile: ZIP } }, namespace)).status).toBe(201);
    }
    const page = await call(`/v1/namespaces/${namespace}/functions?offset=1&limit=1`);
    const body = (await page.json()) as { total: number; functions: { name: string }[] };
    expect(body.total).toBe(3);
    expect(body.functions.map((fn) => fn.name)).toEqual(["beta22"]);
  });

  it("updates configuration and code", async () => {
    const name = uniqueName();
    await createOk({ name, runtime: "Nodejs22", code: { zipFile: ZIP } });
    const patched = await call(`/v1/namespaces/default/functions/${name}`, {
      method: "PATCH",
      body: JSON.stringify({ timeout: 3600, environment: { MODE: "batch" }, maxConcurrency: 4 }),
    });
    expect(patched.status).toBe(200);
    expect(await patched.json()).toMatchObject({ timeout: 3600, environment: { MODE: "batch" }, maxConcurrency: 4 });
    const newZip = zipBase64({ "index.js": "exports.main_handler = async () => 'v2';" });
    const code = await call(`/v1/namespaces/default/functions/${name}/code`, {
      method: "PUT",
      body: JSON.stringify({ zipFile: newZip }),
    });
    const body = (await code.json()) as { codeSha256: string };
    expect(code.status).toBe(200);
    expect(await env.CODE_BUCKET.head(`code/default/${name}/${body.codeSha256}.zip`)).not.toBeNull();
  });

  it("deletes a function and its code packages", async () => {
    const name = uniqueName();
    await createOk({ name, runtime: "Nodejs22", code: { zipFile: ZIP } });
    const deleted = await call(`/v1/namespaces/default/functions/${name}`, { method: "DELETE" });
    expect(deleted.status).toBe(204);
    expect((await call(`/v1/namespaces/default/functions/${name}`)).status).toBe(404);
    expect((await env.CODE_BUCKET.list({ prefix: `code/default/${name}/` })).objects).toHaveLength(0);
  });

  it("refuses to delete a function with events that have not ended", async () => {
    const name = uniqueName();
    await createOk({ name, runtime: "Nodejs22", code: { zipFile: ZIP } });
    await env.DB.prepare(
      `INSERT INTO events (request_id, namespace, function_name, qualifier, invoke_type, status, phase, start_time, version)
       VALUES (?, 'default', ?, '$LATEST', 'OTHERS', 'RUNNING', 'running', ?, 3)`,
    )
      .bind(crypto.randomUUID(), name, Date.now())
      .run();
    const deleted = await call(`/v1/namespaces/default/functions/${name}`, { method: "DELETE" });
    expect(deleted.status).toBe(409);
    expect(await errorCode(deleted)).toBe("FUNCTION_IN_USE");
    expect((await call(`/v1/namespaces/default/functions/${name}`)).status).toBe(200);
  });
});

describe("function registry refuses bad input and stores nothing", () => {
  const cases: [string, Record<string, unknown>, number, string][] = [
    ["a name that starts with a digit", { name: "1abc", runtime: "Nodejs22" }, 400, "INVALID_PARAMETER"],
    ["a name that ends with -", { name: "abc-", runtime: "Nodejs22" }, 400, "INVALID_PARAMETER"],
    ["a one-letter name", { name: "a", runtime: "Nodejs22" }, 400, "INVALID_PARAMETER"],
    ["an unknown runtime", { name: "valid-name", runtime: "Cobol85" }, 400, "INVALID_PARAMETER"],
    ["a timeout of 0", { name: "valid-name", runtime: "Nodejs22", timeout: 0 }, 400, "INVALID_PARAMETER"],
    ["a timeout over 24 h", { name: "valid-name", runtime: "Nodejs22", timeout: 86_401 }, 400, "INVALID_PARAMETER"],
    [
      "a timeout given as a string",
      { name: "valid-name", runtime: "Nodejs22", timeout: "60" },
      400,
      "INVALID_PARAMETER",
    ],
    [
      "code that is not a zip",
      { name: "valid-name", runtime: "Nodejs22", code: { zipFile: btoa("hello") } },
      400,
      "INVALID_PARAMETER",
    ],
    ["an unknown field", { name: "valid-name", runtime: "Nodejs22", colour: "red" }, 400, "INVALID_PARAMETER"],
  ];
  for (const [label, body, status, code] of cases) {
    it(`refuses ${label}`, async () => {
      const before = await functionCount();
      const response = await create({ code: { zipFile: ZIP }, ...body });
      expect(response.status).toBe(status);
      expect(await errorCode(response)).toBe(code);
      expect(await functionCount()).toBe(before);
    });
  }

  it("refuses a body that is not JSON", async () => {
    const response = await call("/v1/namespaces/default/functions", { method: "POST", body: "{not json" });
    expect(response.status).toBe(400);
    expect(await errorCode(response)).toBe("INVALID_JSON");
  });

  it("refuses a duplicate name and keeps the first function", async () => {
    const name = uniqueName();
    await createOk({ name, runtime: "Nodejs22", code: { zipFile: ZIP }, description: "first" });
    const again = await create({ name, runtime: "Python3.11", code: { zipFile: ZIP }, description: "second" });
    expect(again.status).toBe(409);
    const read = (await (await call(`/v1/namespaces/default/functions/${name}`)).json()) as { description: string };
    expect(read.description).toBe("first");
  });

  it("refuses to change asyncRunEnable and changes nothing else in the same request", async () => {
    const name = uniqueName();
    await createOk({ name, runtime: "Nodejs22", code: { zipFile: ZIP }, timeout: 60 });
    const response = await call(`/v1/namespaces/default/functions/${name}`, {
      method: "PATCH",
      body: JSON.stringify({ asyncRunEnable: false, timeout: 90 }),
    });
    expect(response.status).toBe(400);
    expect(await errorCode(response)).toBe("IMMUTABLE_PARAMETER");
    const read = (await (await call(`/v1/namespaces/default/functions/${name}`)).json()) as { timeout: number };
    expect(read.timeout).toBe(60);
  });

  it("answers not-found for an unknown function", async () => {
    const response = await call("/v1/namespaces/default/functions/no-such-function");
    expect(response.status).toBe(404);
    expect(await errorCode(response)).toBe("FUNCTION_NOT_FOUND");
  });
});

describe("async invoke validation", () => {
  async function eventCount(): Promise<number> {
    const ids = await env.DB.prepare("SELECT COUNT(*) AS n FROM events").first<{ n: number }>();
    return ids?.n ?? 0;
  }

  it("accepts an invocation at once with a RequestId", async () => {
    const name = uniqueName();
    await createOk({ name, runtime: "Nodejs22", code: { zipFile: ZIP } });
    const response = await call(`/v1/namespaces/default/functions/${name}/invocations`, {
      method: "POST",
      body: JSON.stringify({ key: "value" }),
    });
    expect(response.status).toBe(202);
    const { requestId } = (await response.json()) as { requestId: string };
    expect(requestId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const read = await call(`/v1/events/${requestId}`);
    expect(read.status).toBe(200);
    // Just accepted: RUNNING in SCF's words, and still queued (no instance has claimed it yet).
    expect(await read.json()).toMatchObject({ requestId, functionName: name, status: "RUNNING", phase: "queued" });
  });

  it("refuses an unknown function with 404", async () => {
    const response = await call("/v1/namespaces/default/functions/no-such-fn/invocations", {
      method: "POST",
      body: "{}",
    });
    expect(response.status).toBe(404);
    expect(await errorCode(response)).toBe("FUNCTION_NOT_FOUND");
  });

  it("refuses a payload over 128 KB with 413 and stores no event", async () => {
    const name = uniqueName();
    await createOk({ name, runtime: "Nodejs22", code: { zipFile: ZIP } });
    const before = await eventCount();
    const response = await call(`/v1/namespaces/default/functions/${name}/invocations`, {
      method: "POST",
      body: JSON.stringify({ blob: "x".repeat(128 * 1024) }),
    });
    expect(response.status).toBe(413);
    expect(await errorCode(response)).toBe("PAYLOAD_TOO_LARGE");
    expect(await eventCount()).toBe(before);
  });

  it("refuses a payload that is not JSON with 400", async () => {
    const name = uniqueName();
    await createOk({ name, runtime: "Nodejs22", code: { zipFile: ZIP } });
    const response = await call(`/v1/namespaces/default/functions/${name}/invocations`, {
      method: "POST",
      body: "not json at all",
    });
    expect(response.status).toBe(400);
    expect(await errorCode(response)).toBe("INVALID_JSON");
  });

  it("queues an event of a sync function (async execution off) invoked through the async route", async () => {
    const name = uniqueName();
    await createOk({ name, runtime: "Nodejs22", code: { zipFile: ZIP }, asyncRunEnable: false });
    const response = await call(`/v1/namespaces/default/functions/${name}/invocations`, { method: "POST", body: "{}" });
    expect(response.status).toBe(202);
    const { requestId } = (await response.json()) as { requestId: string };
    const event = await call(`/v1/events/${requestId}`);
    expect(event.status).toBe(200);
    expect(((await event.json()) as { functionName: string }).functionName).toBe(name);
  });

  it("answers 429 over the function's QPS limit and stores nothing for the refused calls", async () => {
    const name = uniqueName();
    await createOk({ name, runtime: "Nodejs22", code: { zipFile: ZIP }, qpsLimit: 2 });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const response = await call(`/v1/namespaces/default/functions/${name}/invocations`, {
        method: "POST",
        body: "{}",
      });
      statuses.push(response.status);
      if (response.status === 429) expect(await errorCode(response)).toBe("RATE_LIMITED");
    }
    expect(statuses.filter((status) => status === 202)).toHaveLength(2);
    expect(statuses.filter((status) => status === 429)).toHaveLength(2);
  });

  it("answers not-found for an unknown or malformed RequestId", async () => {
    expect((await call(`/v1/events/${crypto.randomUUID()}`)).status).toBe(404);
    expect((await call("/v1/events/not-a-uuid")).status).toBe(404);
  });
});

describe("credentials", () => {
  it("are required on every /v1 route", async () => {
    for (const [method, path] of [
      ["GET", "/v1/namespaces/default/functions"],
      ["POST", "/v1/namespaces/default/functions"],
      ["POST", "/v1/namespaces/default/functions/x1/invocations"],
      ["GET", `/v1/events/${crypto.randomUUID()}`],
    ] as const) {
      const response = await SELF.fetch(`https://platform.test${path}`, {
        method,
        body: method === "POST" ? "{}" : null,
      });
      expect(response.status, `${method} ${path}`).toBe(401);
    }
  });

  it("refuse a wrong secret key without revealing anything", async () => {
    const response = await SELF.fetch("https://platform.test/v1/namespaces/default/functions", {
      headers: { authorization: "Bearer AKIDintegration:wrong" },
    });
    expect(response.status).toBe(401);
    const body = await response.text();
    expect(body).not.toContain("integration-secret");
  });
});
