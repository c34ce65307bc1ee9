// Versions and aliases (issue 12): publishing freezes $LATEST, versions are listed and immutable,
// aliases route (weighted) to versions, `$DEFAULT` exists from creation, invocations record the
// version run and the alias named, and refusals (in use, unknown, malformed, oversized, another
// namespace) through REST and the Tencent actions.
import { env, runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { EventState, PublicEvent } from "../../worker/events/event-machine";
import { MAX_ALIASES_PER_FUNCTION } from "../../worker/functions/aliases";
import { chooseVersion, type QualifierRoute, resolveQualifier } from "../../worker/functions/qualifiers";
import { MAX_VERSIONS_PER_FUNCTION } from "../../worker/functions/versions";
import { unwrap } from "../../worker/shared/errors";
import { functionSnapshot } from "../helpers/function-snapshot";
import { referenceSignedHeaders } from "../helpers/tc3-reference";
import { zipBase64 } from "../helpers/zip";

const BASE = "https://platform.test";
const workerEnv: Env = env;
const ADMIN = { authorization: `Bearer ${workerEnv.DEV_SECRET_ID ?? ""}:${workerEnv.DEV_SECRET_KEY ?? ""}` };
const ZIP_V1 = zipBase64({ "index.js": "exports.main_handler = async () => 'v1';" });
const ZIP_V2 = zipBase64({ "index.js": "exports.main_handler = async () => 'v2';" });
/** Body limit of the version and alias routes (api/routes/versions.ts MAX_VERSION_BODY_BYTES). */
const VERSION_BODY_LIMIT_BYTES = 16 * 1024;

type Headers = Record<string, string>;
interface Key {
  secretId: string;
  secretKey: string;
}
interface ErrorBody {
  error: { code: string; message: string };
}
interface VersionView {
  version: string;
  description: string;
  function: { codeSha256: string; timeout: number; handler: string; description: string };
}
interface AliasView {
  name: string;
  functionVersion: string;
  routingConfig: { additionalVersionWeights: { version: string; weight: number }[] };
  description: string;
}

let counter = 0;
function unique(prefix: string): string {
  counter += 1;
  return `${prefix}${Date.now().toString(36)}${counter}`;
}

function call(path: string, init: RequestInit & { headers?: Headers } = {}): Promise<Response> {
  return SELF.fetch(`${BASE}${path}`, {
    ...init,
    headers: { ...ADMIN, "content-type": "application/json", ...(init.headers ?? {}) },
  });
}

async function json<T>(response: Response, status: number): Promise<T> {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  return JSON.parse(text) as T;
}

async function errorCode(response: Response, status: number): Promise<string> {
  return (await json<ErrorBody>(response, status)).error.code;
}

async function createFunction(namespace: string, name: string, extra: Record<string, unknown> = {}): Promise<void> {
  const response = await call(`/v1/namespaces/${namespace}/functions`, {
    method: "POST",
    body: JSON.stringify({ name, runtime: "Nodejs22", code: { zipFile: ZIP_V1 }, qpsLimit: 100_000, ...extra }),
  });
  expect(response.status, await response.clone().text()).toBe(201);
}

async function setUp(): Promise<{ namespace: string; name: string; fn: string }> {
  const namespace = unique("vs");
  const name = unique("fn");
  await createFunction(namespace, name);
  return { namespace, name, fn: `/v1/namespaces/${namespace}/functions/${name}` };
}

async function publish(fn: string, description?: string): Promise<VersionView> {
  return json<VersionView>(
    await call(`${fn}/versions`, {
      method: "POST",
      ...(description !== undefined ? { body: JSON.stringify({ description }) } : {}),
    }),
    201,
  );
}

async function updateCode(fn: string, zip: string): Promise<string> {
  const body = await json<{ codeSha256: string }>(
    await call(`${fn}/code`, { method: "PUT", body: JSON.stringify({ zipFile: zip }) }),
    200,
  );
  return body.codeSha256;
}

function putAlias(fn: string, alias: string, body: unknown): Promise<Response> {
  return call(`${fn}/aliases/${encodeURIComponent(alias)}`, { method: "PUT", body: JSON.stringify(body) });
}

function postAlias(fn: string, body: unknown): Promise<Response> {
  return call(`${fn}/aliases`, { method: "POST", body: JSON.stringify(body) });
}

async function invoke(fn: string, qualifier?: string, headers: Headers = {}): Promise<Response> {
  const query = qualifier !== undefined ? `?qualifier=${encodeURIComponent(qualifier)}` : "";
  return call(`${fn}/invocations${query}`, { method: "POST", body: "{}", headers });
}

async function invokeOk(fn: string, qualifier?: string): Promise<string> {
  return (await json<{ requestId: string }>(await invoke(fn, qualifier), 202)).requestId;
}

async function viewOf(requestId: string): Promise<PublicEvent> {
  return unwrap<PublicEvent>(await env.ASYNC_EVENT.get(env.ASYNC_EVENT.idFromName(requestId)).view());
}

/** The function snapshot the event carries (what its execution will run). */
async function snapshotOfEvent(requestId: string): Promise<EventState["function"]> {
  const stub = env.ASYNC_EVENT.get(env.ASYNC_EVENT.idFromName(requestId));
  return runInDurableObject(stub, async (_instance, state) => {
    const stored = await state.storage.get<EventState>("state");
    if (!stored) throw new Error(`no state for ${requestId}`);
    return stored.function;
  });
}

/** Waits for the event's index row and answers its qualifier and alias columns. */
async function indexRow(requestId: string): Promise<{ qualifier: string; alias: string | null }> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const row = await env.DB.prepare("SELECT qualifier, alias FROM events WHERE request_id = ?")
      .bind(requestId)
      .first<{ qualifier: string; alias: string | null }>();
    if (row) return row;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no index row for ${requestId}`);
}

async function createKey(namespaces: string[]): Promise<Key> {
  return json<Key>(
    await call("/v1/admin/credentials", {
      method: "POST",
      body: JSON.stringify({ namespaces, description: "versions" }),
    }),
    201,
  );
}

let signed = 0;
/** A Tencent action, signed (each call a distinct timestamp, so the replay ledger never refuses it). */
async function tc(
  action: string,
  payload: Record<string, unknown>,
  key: Key = { secretId: String(workerEnv.DEV_SECRET_ID), secretKey: String(workerEnv.DEV_SECRET_KEY) },
) {
  signed += 1;
  const body = JSON.stringify(payload);
  const headers = await referenceSignedHeaders({
    secretId: key.secretId,
    secretKey: key.secretKey,
    timestamp: Math.floor(Date.now() / 1000) - (signed % 200),
    host: "platform.test",
    action,
    body,
  });
  const response = await SELF.fetch(`${BASE}/`, { method: "POST", headers, body });
  expect(response.status).toBe(200);
  return ((await response.json()) as { Response: Record<string, unknown> & { Error?: { Code: string } } }).Response;
}

async function tcOk(action: string, payload: Record<string, unknown>, key?: Key) {
  const answer = await tc(action, payload, key);
  expect(answer.Error, `${action} ${JSON.stringify(answer.Error)}`).toBeUndefined();
  return answer;
}

describe("publishing versions", () => {
  it("freezes $LATEST's code and configuration as 1, 2, ...; later changes to $LATEST leave them as they were", async () => {
    const { fn } = await setUp();
    const v1 = await publish(fn, "first");
    expect(v1.version).toBe("1");
    expect(v1.description).toBe("first");
    const sha1 = v1.function.codeSha256;
    const sha2 = await updateCode(fn, ZIP_V2);
    expect(sha2).not.toBe(sha1);
    await json(await call(fn, { method: "PATCH", body: JSON.stringify({ timeout: 77, description: "changed" }) }), 200);
    const read = await json<VersionView>(await call(`${fn}/versions/1`), 200);
    expect(read.function.codeSha256).toBe(sha1);
    expect(read.function.timeout).toBe(3);
    expect(read.function.description).toBe("");
    const v2 = await publish(fn);
    expect(v2.version).toBe("2");
    expect(v2.function.codeSha256).toBe(sha2);
    expect(v2.function.timeout).toBe(77);
    const latest = await json<VersionView>(await call(`${fn}/versions/$LATEST`), 200);
    expect(latest.function.codeSha256).toBe(sha2);
  });

  it("lists $LATEST first and the newest version next (DESC), or the oldest first and $LATEST last (ASC), by pages", async () => {
    const { fn } = await setUp();
    for (let index = 0; index < 3; index += 1) await publish(fn);
    const list = async (query: string) =>
      await json<{ total: number; versions: VersionView[] }>(await call(`${fn}/versions${query}`), 200);
    const desc = await list("");
    expect(desc.total).toBe(4);
    expect(desc.versions.map((v) => v.version)).toEqual(["$LATEST", "3", "2", "1"]);
    expect((await list("?order=ASC")).versions.map((v) => v.version)).toEqual(["1", "2", "3", "$LATEST"]);
    expect((await list("?offset=1&limit=2")).versions.map((v) => v.version)).toEqual(["3", "2"]);
    expect((await list("?order=asc&offset=2&limit=5")).versions.map((v) => v.version)).toEqual(["3", "$LATEST"]);
    expect((await list("?offset=9")).versions).toEqual([]);
  });

  it("never gives a deleted number again, even the newest one", async () => {
    const { fn } = await setUp();
    await publish(fn);
    await publish(fn);
    expect((await call(`${fn}/versions/2`, { method: "DELETE" })).status).toBe(204);
    expect(await errorCode(await call(`${fn}/versions/2`), 404)).toBe("QUALIFIER_NOT_FOUND");
    expect((await publish(fn)).version).toBe("3");
    expect((await call(`${fn}/versions/1`, { method: "DELETE" })).status).toBe(204);
    expect((await call(`${fn}/versions/3`, { method: "DELETE" })).status).toBe(204);
    expect((await publish(fn)).version).toBe("4");
    // Only the newest tombstone is kept.
    const rows = await env.DB.prepare(
      "SELECT version, config = '' AS dead FROM function_versions WHERE function_name = ? ORDER BY version",
    )
      .bind(fn.split("/").pop())
      .all<{ version: number; dead: number }>();
    expect(rows.results).toEqual([
      { version: 3, dead: 1 },
      { version: 4, dead: 0 },
    ]);
  });

  it(`refuses a publication past ${MAX_VERSIONS_PER_FUNCTION} versions with VERSION_LIMIT_EXCEEDED`, async () => {
    const { namespace, name, fn } = await setUp();
    // Seeded up to the bound (publishing a thousand times through the API is slow and proves nothing more).
    const statements = Array.from({ length: MAX_VERSIONS_PER_FUNCTION }, (_, index) =>
      env.DB.prepare(
        "INSERT INTO function_versions (namespace, function_name, version, config, description, created_at) VALUES (?, ?, ?, '{}', '', 0)",
      ).bind(namespace, name, index + 1),
    );
    await env.DB.batch(statements);
    expect(await errorCode(await call(`${fn}/versions`, { method: "POST" }), 409)).toBe("VERSION_LIMIT_EXCEEDED");
  });

  it("refuses deleting $LATEST, and unknown or malformed versions are QUALIFIER_NOT_FOUND", async () => {
    const { fn } = await setUp();
    expect(await errorCode(await call(`${fn}/versions/$LATEST`, { method: "DELETE" }), 400)).toBe("INVALID_PARAMETER");
    for (const version of ["9", "0", "01", "abc", "1.5", "%24DEFAULT"]) {
      expect(await errorCode(await call(`${fn}/versions/${version}`), 404), version).toBe("QUALIFIER_NOT_FOUND");
      expect(await errorCode(await call(`${fn}/versions/${version}`, { method: "DELETE" }), 404), version).toBe(
        "QUALIFIER_NOT_FOUND",
      );
    }
  });

  it("refuses a malformed, unknown-field, non-JSON or oversized publish body and publishes nothing", async () => {
    const { fn } = await setUp();
    const bodies: [string, number, string][] = [
      ["{", 400, "INVALID_JSON"],
      ['{"description": 5}', 400, "INVALID_PARAMETER"],
      ['{"version": "7"}', 400, "INVALID_PARAMETER"],
      [JSON.stringify({ description: "d".repeat(1001) }), 400, "INVALID_PARAMETER"],
      [JSON.stringify({ description: "d".repeat(VERSION_BODY_LIMIT_BYTES) }), 413, "PAYLOAD_TOO_LARGE"],
    ];
    for (const [body, status, code] of bodies) {
      expect(await errorCode(await call(`${fn}/versions`, { method: "POST", body }), status), body.slice(0, 40)).toBe(
        code,
      );
    }
    const list = await json<{ total: number }>(await call(`${fn}/versions`), 200);
    expect(list.total).toBe(1);
  });

  it("deletes a function's versions and aliases with it: a function created again under its name has none", async () => {
    const { namespace, name, fn } = await setUp();
    await publish(fn);
    expect((await postAlias(fn, { name: "prod", functionVersion: "1" })).status).toBe(201);
    expect((await putAlias(fn, "$DEFAULT", { functionVersion: "1" })).status).toBe(200);
    expect((await call(fn, { method: "DELETE" })).status).toBe(204);
    const left = await env.DB.prepare(
      `SELECT (SELECT count(*) FROM function_versions WHERE namespace = ?1 AND function_name = ?2)
            + (SELECT count(*) FROM function_aliases WHERE namespace = ?1 AND function_name = ?2) AS n`,
    )
      .bind(namespace, name)
      .first<{ n: number }>();
    expect(left?.n).toBe(0);
    await createFunction(namespace, name);
    expect((await json<{ total: number }>(await call(`${fn}/versions`), 200)).total).toBe(1);
    expect(await errorCode(await call(`${fn}/aliases/prod`), 404)).toBe("QUALIFIER_NOT_FOUND");
    const event = await viewOf(await invokeOk(fn));
    expect(event.qualifier).toBe("$LATEST");
  });
});

describe("aliases", () => {
  it("has $DEFAULT from creation, pointing at $LATEST, listed first; it can be updated but not deleted or created", async () => {
    const { fn } = await setUp();
    const initial = await json<AliasView>(await call(`${fn}/aliases/$DEFAULT`), 200);
    expect(initial).toMatchObject({ name: "$DEFAULT", functionVersion: "$LATEST" });
    await publish(fn);
    expect((await postAlias(fn, { name: "beta", functionVersion: "$LATEST" })).status).toBe(201);
    expect((await postAlias(fn, { name: "alpha", functionVersion: "1" })).status).toBe(201);
    const list = await json<{ total: number; aliases: AliasView[] }>(await call(`${fn}/aliases`), 200);
    expect(list.aliases.map((alias) => alias.name)).toEqual(["$DEFAULT", "alpha", "beta"]);
    const filtered = await json<{ aliases: AliasView[] }>(await call(`${fn}/aliases?functionVersion=1`), 200);
    expect(filtered.aliases.map((alias) => alias.name)).toEqual(["alpha"]);
    const updated = await json<AliasView>(
      await putAlias(fn, "$DEFAULT", { functionVersion: "1", description: "d" }),
      200,
    );
    expect(updated).toMatchObject({ name: "$DEFAULT", functionVersion: "1", description: "d" });
    expect(await errorCode(await call(`${fn}/aliases/$DEFAULT`, { method: "DELETE" }), 400)).toBe("INVALID_PARAMETER");
    expect(await errorCode(await postAlias(fn, { name: "$DEFAULT", functionVersion: "1" }), 400)).toBe(
      "INVALID_PARAMETER",
    );
    // Updating keeps the description when none is given, and a routing without routingConfig has none.
    await putAlias(fn, "alpha", {
      functionVersion: "1",
      routingConfig: { additionalVersionWeights: [{ version: "$LATEST", weight: 0.5 }] },
      description: "kept",
    });
    const again = await json<AliasView>(await putAlias(fn, "alpha", { functionVersion: "$LATEST" }), 200);
    expect(again).toMatchObject({ functionVersion: "$LATEST", description: "kept" });
    expect(again.routingConfig.additionalVersionWeights).toEqual([]);
  });

  it("refuses names, routings and versions that break SCF's rules", async () => {
    const { fn } = await setUp();
    await publish(fn);
    const refused: [unknown, number, string][] = [
      [{ name: "1abc", functionVersion: "1" }, 400, "INVALID_PARAMETER"],
      [{ name: "a".repeat(65), functionVersion: "1" }, 400, "INVALID_PARAMETER"],
      [{ name: "has space", functionVersion: "1" }, 400, "INVALID_PARAMETER"],
      [{ name: "ok", functionVersion: "latest" }, 400, "INVALID_PARAMETER"],
      [{ name: "ok", functionVersion: "9" }, 404, "QUALIFIER_NOT_FOUND"],
      [
        {
          name: "ok",
          functionVersion: "1",
          routingConfig: { additionalVersionWeights: [{ version: "9", weight: 0.2 }] },
        },
        404,
        "QUALIFIER_NOT_FOUND",
      ],
      [
        {
          name: "ok",
          functionVersion: "1",
          routingConfig: { additionalVersionWeights: [{ version: "1", weight: 0.2 }] },
        },
        400,
        "INVALID_PARAMETER",
      ],
      ...[0, 1, 1.5, -0.1].map((weight): [unknown, number, string] => [
        {
          name: "ok",
          functionVersion: "1",
          routingConfig: { additionalVersionWeights: [{ version: "$LATEST", weight }] },
        },
        400,
        "INVALID_PARAMETER",
      ]),
      [
        {
          name: "ok",
          functionVersion: "1",
          routingConfig: {
            additionalVersionWeights: [
              { version: "$LATEST", weight: 0.1 },
              { version: "$LATEST", weight: 0.2 },
            ],
          },
        },
        400,
        "INVALID_PARAMETER",
      ],
      [
        {
          name: "ok",
          functionVersion: "1",
          routingConfig: {
            addtionVersionMatchs: [{ version: "$LATEST", key: "invoke.headers.User", method: "exact" }],
          },
        },
        400,
        "UNSUPPORTED_OPERATION",
      ],
      [{ name: "ok", functionVersion: "1", routingConfig: { addtionVersionMatchs: "x" } }, 400, "INVALID_PARAMETER"],
      [{ name: "ok", functionVersion: "1", extra: true }, 400, "INVALID_PARAMETER"],
    ];
    for (const [body, status, code] of refused) {
      expect(await errorCode(await postAlias(fn, body), status), JSON.stringify(body).slice(0, 120)).toBe(code);
    }
    expect(await errorCode(await call(`${fn}/aliases`, { method: "POST", body: "{" }), 400)).toBe("INVALID_JSON");
    expect(
      await errorCode(
        await postAlias(fn, { name: "ok", functionVersion: "1", description: "d".repeat(VERSION_BODY_LIMIT_BYTES) }),
        413,
      ),
    ).toBe("PAYLOAD_TOO_LARGE");
    expect((await json<{ total: number }>(await call(`${fn}/aliases`), 200)).total).toBe(1);
    expect((await postAlias(fn, { name: "ok", functionVersion: "1" })).status).toBe(201);
    expect(await errorCode(await postAlias(fn, { name: "ok", functionVersion: "$LATEST" }), 409)).toBe("ALIAS_EXISTS");
    expect(await errorCode(await putAlias(fn, "missing", { functionVersion: "1" }), 404)).toBe("QUALIFIER_NOT_FOUND");
    expect(await errorCode(await putAlias(fn, "ok", { functionVersion: "8" }), 404)).toBe("QUALIFIER_NOT_FOUND");
    expect(await errorCode(await call(`${fn}/aliases/${"a".repeat(65)}`), 400)).toBe("INVALID_PARAMETER");
  });

  it(`refuses more than ${MAX_ALIASES_PER_FUNCTION} aliases besides $DEFAULT with ALIAS_LIMIT_EXCEEDED`, async () => {
    const { namespace, name, fn } = await setUp();
    await env.DB.batch(
      Array.from({ length: MAX_ALIASES_PER_FUNCTION }, (_, index) =>
        env.DB.prepare(
          "INSERT INTO function_aliases (namespace, function_name, name, function_version, created_at, updated_at) VALUES (?, ?, ?, '$LATEST', 0, 0)",
        ).bind(namespace, name, `seeded${index}`),
      ),
    );
    expect(await errorCode(await postAlias(fn, { name: "onemore", functionVersion: "$LATEST" }), 409)).toBe(
      "ALIAS_LIMIT_EXCEEDED",
    );
    // $DEFAULT is not counted: it can still be updated.
    expect((await putAlias(fn, "$DEFAULT", { functionVersion: "$LATEST" })).status).toBe(200);
  });
});

describe("deleting what is in use", () => {
  async function addTrigger(namespace: string, name: string, qualifier: string): Promise<void> {
    await env.DB.prepare(
      `INSERT INTO triggers (id, namespace, function_name, name, type, qualifier, trigger_desc, enabled, created_at, updated_at)
       VALUES (?, ?, ?, ?, 'timer', ?, '0 */5 * * * * *', 1, 0, 0)`,
    )
      .bind(crypto.randomUUID(), namespace, name, unique("t"), qualifier)
      .run();
  }

  it("refuses deleting a version an alias routes to (main or additional) until the alias moves", async () => {
    const { fn } = await setUp();
    await publish(fn);
    await publish(fn);
    await postAlias(fn, { name: "main", functionVersion: "1" });
    await postAlias(fn, {
      name: "canary",
      functionVersion: "$LATEST",
      routingConfig: { additionalVersionWeights: [{ version: "2", weight: 0.1 }] },
    });
    const inUse = await json<ErrorBody>(await call(`${fn}/versions/1`, { method: "DELETE" }), 409);
    expect(inUse.error.code).toBe("VERSION_IN_USE");
    expect(inUse.error.message).toContain("main");
    expect(await errorCode(await call(`${fn}/versions/2`, { method: "DELETE" }), 409)).toBe("VERSION_IN_USE");
    expect((await call(`${fn}/aliases/main`, { method: "DELETE" })).status).toBe(204);
    expect((await putAlias(fn, "canary", { functionVersion: "$LATEST" })).status).toBe(200);
    expect((await call(`${fn}/versions/1`, { method: "DELETE" })).status).toBe(204);
    expect((await call(`${fn}/versions/2`, { method: "DELETE" })).status).toBe(204);
  });

  it("refuses deleting a version or an alias a trigger targets, naming the trigger", async () => {
    const { namespace, name, fn } = await setUp();
    await publish(fn);
    await postAlias(fn, { name: "prod", functionVersion: "$LATEST" });
    await addTrigger(namespace, name, "1");
    await addTrigger(namespace, name, "prod");
    const version = await json<ErrorBody>(await call(`${fn}/versions/1`, { method: "DELETE" }), 409);
    expect(version.error.code).toBe("VERSION_IN_USE");
    expect(version.error.message).toContain("trigger");
    const alias = await json<ErrorBody>(await call(`${fn}/aliases/prod`, { method: "DELETE" }), 409);
    expect(alias.error.code).toBe("ALIAS_IN_USE");
    expect(alias.error.message).toContain("timer");
    expect((await call(`${fn}/aliases/prod`)).status).toBe(200);
  });

  it("refuses deleting a version with RUNNING events unless forced", async () => {
    const { namespace, name, fn } = await setUp();
    await publish(fn);
    await env.DB.prepare(
      `INSERT INTO events (request_id, namespace, function_name, qualifier, invoke_type, status, phase, start_time, version)
       VALUES (?, ?, ?, '1', 'OTHERS', 'RUNNING', 'running', ?, 1)`,
    )
      .bind(crypto.randomUUID(), namespace, name, Date.now())
      .run();
    const refused = await json<ErrorBody>(await call(`${fn}/versions/1`, { method: "DELETE" }), 409);
    expect(refused.error.message).toContain("RUNNING");
    expect(await errorCode(await call(`${fn}/versions/1?force=yes`, { method: "DELETE" }), 400)).toBe(
      "INVALID_PARAMETER",
    );
    expect((await call(`${fn}/versions/1?force=true`, { method: "DELETE" })).status).toBe(204);
  });
});

describe("invoking through qualifiers", () => {
  it("defaults to $DEFAULT: $LATEST until $DEFAULT points at a version, which then runs its frozen code", async () => {
    const { fn } = await setUp();
    const before = await invokeOk(fn);
    expect(await viewOf(before)).toMatchObject({ qualifier: "$LATEST", alias: "$DEFAULT" });
    expect(await indexRow(before)).toEqual({ qualifier: "$LATEST", alias: "$DEFAULT" });
    const v1 = await publish(fn);
    await json(await putAlias(fn, "$DEFAULT", { functionVersion: "1" }), 200);
    const sha2 = await updateCode(fn, ZIP_V2);
    const published = await invokeOk(fn);
    expect(await viewOf(published)).toMatchObject({ qualifier: "1", alias: "$DEFAULT" });
    expect((await snapshotOfEvent(published)).codeSha256).toBe(v1.function.codeSha256);
    expect(await indexRow(published)).toEqual({ qualifier: "1", alias: "$DEFAULT" });
    const latest = await invokeOk(fn, "$LATEST");
    expect(await viewOf(latest)).toMatchObject({ qualifier: "$LATEST", alias: null });
    expect((await snapshotOfEvent(latest)).codeSha256).toBe(sha2);
    const byNumber = await invokeOk(fn, "1");
    expect(await viewOf(byNumber)).toMatchObject({ qualifier: "1", alias: null });
    const listed = await json<{ events: { requestId: string; qualifier: string; alias: string | null }[] }>(
      await call(`${fn}/events?qualifier=%24DEFAULT`),
      200,
    );
    expect(listed.events.map((event) => event.requestId).sort()).toEqual([before, published].sort());
  });

  it("refuses unknown qualifiers with QUALIFIER_NOT_FOUND and malformed ones with INVALID_PARAMETER", async () => {
    const { fn } = await setUp();
    for (const qualifier of ["7", "nosuch", "LATEST"]) {
      expect(await errorCode(await invoke(fn, qualifier), 404), qualifier).toBe("QUALIFIER_NOT_FOUND");
    }
    for (const qualifier of ["", "$latest", "0", "a b", "q".repeat(65), "名前"]) {
      expect(await errorCode(await invoke(fn, qualifier), 400), qualifier).toBe("INVALID_PARAMETER");
    }
    const indexed = await env.DB.prepare("SELECT count(*) AS n FROM events WHERE function_name = ?")
      .bind(fn.split("/").pop())
      .first<{ n: number }>();
    expect(indexed?.n).toBe(0);
  });

  it("routes a weighted alias by its weight: the additional version when the draw is below it", () => {
    const snapshot = functionSnapshot("ns", "fn");
    const route: QualifierRoute = {
      alias: "canary",
      main: { version: "1", snapshot },
      additional: { version: "2", snapshot, weight: 0.3 },
    };
    const draws: [number, string][] = [
      [0, "2"],
      [0.2999, "2"],
      [0.3, "1"],
      [0.7, "1"],
      [0.9999, "1"],
    ];
    for (const [draw, version] of draws) {
      expect(
        chooseVersion(route, () => draw),
        String(draw),
      ).toMatchObject({ version, alias: "canary" });
    }
    expect(chooseVersion({ main: { version: "1", snapshot } }, () => 0)).toEqual({ version: "1", snapshot });
  });

  it("sends about the additional version's weight of invocations to it (statistical, 20,000 draws)", async () => {
    const { namespace, name, fn } = await setUp();
    await publish(fn);
    await updateCode(fn, ZIP_V2);
    await publish(fn);
    await postAlias(fn, {
      name: "canary",
      functionVersion: "1",
      routingConfig: { additionalVersionWeights: [{ version: "2", weight: 0.3 }] },
    });
    const draws = 20_000;
    let additional = 0;
    for (let index = 0; index < draws; index += 1) {
      const resolved = await resolveQualifier(workerEnv, namespace, name, "canary");
      if (resolved.version === "2") additional += 1;
      else expect(resolved.version).toBe("1");
    }
    // Expected 6,000, σ ≈ 64.8: ±5σ fails by chance about once in 1.7 million runs, and fails at
    // once for a routing that ignores the weight (0 or 20,000) or inverts it (14,000).
    expect(additional).toBeGreaterThan(6_000 - 324);
    expect(additional).toBeLessThan(6_000 + 324);
  });

  it("records the version chosen per event and the alias on each, through the API", async () => {
    const { fn } = await setUp();
    const v1 = await publish(fn);
    await updateCode(fn, ZIP_V2);
    const v2 = await publish(fn);
    await postAlias(fn, {
      name: "half",
      functionVersion: "1",
      routingConfig: { additionalVersionWeights: [{ version: "2", weight: 0.5 }] },
    });
    const seen = new Map<string, number>();
    for (let index = 0; index < 40; index += 1) {
      const requestId = await invokeOk(fn, "half");
      const view = await viewOf(requestId);
      expect(view.alias).toBe("half");
      const sha = (await snapshotOfEvent(requestId)).codeSha256;
      expect(sha).toBe(view.qualifier === "1" ? v1.function.codeSha256 : v2.function.codeSha256);
      seen.set(view.qualifier, (seen.get(view.qualifier) ?? 0) + 1);
    }
    // Both versions among 40 fair draws: missing one happens with probability 2 × 2^-40.
    expect([...seen.keys()].sort()).toEqual(["1", "2"]);
  });

  it("compares an idempotency key with the alias requested, not the version drawn", async () => {
    const { fn } = await setUp();
    await publish(fn);
    await postAlias(fn, {
      name: "half",
      functionVersion: "1",
      routingConfig: { additionalVersionWeights: [{ version: "$LATEST", weight: 0.5 }] },
    });
    const key = unique("key");
    const first = await json<{ requestId: string }>(await invoke(fn, "half", { "idempotency-key": key }), 202);
    for (let index = 0; index < 10; index += 1) {
      const again = await json<{ requestId: string }>(await invoke(fn, "half", { "idempotency-key": key }), 200);
      expect(again.requestId).toBe(first.requestId);
    }
    expect(await errorCode(await invoke(fn, "1", { "idempotency-key": key }), 409)).toBe("IDEMPOTENCY_KEY_REUSED");
  });
});

describe("another namespace", () => {
  it("answers 404 for every version and alias route of a function the key may not see, and changes nothing", async () => {
    const victim = await setUp();
    await publish(victim.fn);
    await postAlias(victim.fn, { name: "prod", functionVersion: "1" });
    const attacker = await createKey([unique("other")]);
    const headers = { authorization: `Bearer ${attacker.secretId}:${attacker.secretKey}` };
    const attempts: [string, string, unknown?][] = [
      ["POST", "/versions", {}],
      ["GET", "/versions"],
      ["GET", "/versions/1"],
      ["DELETE", "/versions/1"],
      ["POST", "/aliases", { name: "mine", functionVersion: "1" }],
      ["GET", "/aliases"],
      ["GET", "/aliases/prod"],
      ["PUT", "/aliases/prod", { functionVersion: "$LATEST" }],
      ["DELETE", "/aliases/prod"],
      ["POST", "/invocations?qualifier=prod", {}],
    ];
    for (const [method, suffix, body] of attempts) {
      const response = await call(`${victim.fn}${suffix}`, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      expect(response.status, `${method} ${suffix}`).toBe(404);
    }
    expect((await json<{ total: number }>(await call(`${victim.fn}/versions`), 200)).total).toBe(2);
    expect((await json<AliasView>(await call(`${victim.fn}/aliases/prod`), 200)).functionVersion).toBe("1");
  });

  it("keeps versions and aliases per namespace: the same function name elsewhere has none of them", async () => {
    const first = await setUp();
    const namespace = unique("vs");
    await createFunction(namespace, first.name);
    const other = `/v1/namespaces/${namespace}/functions/${first.name}`;
    await publish(first.fn);
    await postAlias(first.fn, { name: "prod", functionVersion: "1" });
    expect(await errorCode(await call(`${other}/versions/1`), 404)).toBe("QUALIFIER_NOT_FOUND");
    expect(await errorCode(await call(`${other}/aliases/prod`), 404)).toBe("QUALIFIER_NOT_FOUND");
    expect(await errorCode(await invoke(other, "prod"), 404)).toBe("QUALIFIER_NOT_FOUND");
    expect((await publish(other)).version).toBe("1");
  });
});

describe("Tencent version and alias actions", () => {
  it("publishes, lists, reads a version's configuration through GetFunction's Qualifier, and deletes", async () => {
    const name = unique("tcv");
    await tcOk("CreateFunction", { FunctionName: name, Runtime: "Nodejs22", Code: { ZipFile: ZIP_V1 }, Timeout: 5 });
    const published = await tcOk("PublishVersion", { FunctionName: name, Description: "release" });
    expect(published).toMatchObject({
      FunctionVersion: "1",
      Description: "release",
      Timeout: 5,
      Runtime: "Nodejs22",
      Handler: "index.main_handler",
      MemorySize: 128,
      Namespace: "default",
    });
    await tcOk("UpdateFunctionConfiguration", { FunctionName: name, Timeout: 9 });
    const listed = await tcOk("ListVersionByFunction", { FunctionName: name });
    expect(listed.FunctionVersion).toEqual(["$LATEST", "1"]);
    expect(listed.TotalCount).toBe(2);
    expect((listed.Versions as { Version: string; Status: string }[])[1]).toMatchObject({
      Version: "1",
      Description: "release",
      Status: "Active",
    });
    expect(await tcOk("GetFunction", { FunctionName: name, Qualifier: "1" })).toMatchObject({
      Timeout: 5,
      FunctionVersion: "1",
      Qualifier: "1",
    });
    expect(await tcOk("GetFunction", { FunctionName: name })).toMatchObject({ Timeout: 9, Qualifier: "$LATEST" });
    await tcOk("UpdateAlias", { FunctionName: name, Name: "$DEFAULT", FunctionVersion: "1" });
    expect(await tcOk("GetFunction", { FunctionName: name, Qualifier: "$DEFAULT" })).toMatchObject({
      Timeout: 5,
      Qualifier: "1",
    });
    expect((await tc("GetFunction", { FunctionName: name, Qualifier: "4" })).Error?.Code).toBe(
      "ResourceNotFound.Qualifier",
    );
    expect((await tc("DeleteFunctionVersion", { FunctionName: name, Qualifier: "1" })).Error?.Code).toBe(
      "FailedOperation.DeleteFunctionVersion",
    );
    expect((await tc("DeleteFunctionVersion", { FunctionName: name, Qualifier: "$LATEST" })).Error?.Code).toBe(
      "InvalidParameterValue.Qualifier",
    );
    expect((await tc("DeleteFunctionVersion", { FunctionName: name })).Error?.Code).toBe("MissingParameter");
    await tcOk("UpdateAlias", { FunctionName: name, Name: "$DEFAULT", FunctionVersion: "$LATEST" });
    await tcOk("DeleteFunctionVersion", { FunctionName: name, Qualifier: "1" });
    expect((await tcOk("ListVersionByFunction", { FunctionName: name })).FunctionVersion).toEqual(["$LATEST"]);
  });

  it("creates, reads, lists, updates and deletes aliases in SCF's shapes, and refuses what SCF refuses", async () => {
    const name = unique("tca");
    await tcOk("CreateFunction", { FunctionName: name, Runtime: "Nodejs22", Code: { ZipFile: ZIP_V1 } });
    await tcOk("PublishVersion", { FunctionName: name });
    await tcOk("CreateAlias", {
      FunctionName: name,
      Name: "canary",
      FunctionVersion: "1",
      RoutingConfig: { AdditionalVersionWeights: [{ Version: "$LATEST", Weight: 0.25 }] },
      Description: "ten percent",
    });
    const alias = await tcOk("GetAlias", { FunctionName: name, Name: "canary" });
    expect(alias).toMatchObject({
      Name: "canary",
      FunctionVersion: "1",
      Description: "ten percent",
      RoutingConfig: { AdditionalVersionWeights: [{ Version: "$LATEST", Weight: 0.25 }], AddtionVersionMatchs: [] },
    });
    expect(alias.AddTime).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
    const listed = await tcOk("ListAliases", { FunctionName: name, Offset: "0", Limit: "10" });
    expect((listed.Aliases as { Name: string }[]).map((entry) => entry.Name)).toEqual(["$DEFAULT", "canary"]);
    expect(listed.TotalCount).toBe(2);
    const byVersion = await tcOk("ListAliases", { FunctionName: name, FunctionVersion: "1" });
    expect((byVersion.Aliases as { Name: string }[]).map((entry) => entry.Name)).toEqual(["canary"]);
    await tcOk("UpdateAlias", { FunctionName: name, Name: "canary", FunctionVersion: "$LATEST" });
    expect(await tcOk("GetAlias", { FunctionName: name, Name: "canary" })).toMatchObject({
      FunctionVersion: "$LATEST",
      Description: "ten percent",
      RoutingConfig: { AdditionalVersionWeights: [] },
    });
    const refusals: [string, Record<string, unknown>, string][] = [
      ["DeleteAlias", { FunctionName: name, Name: "$DEFAULT" }, "InvalidParameterValue.Alias"],
      ["CreateAlias", { FunctionName: name, Name: "$DEFAULT", FunctionVersion: "1" }, "InvalidParameterValue.Name"],
      ["CreateAlias", { FunctionName: name, Name: "9x", FunctionVersion: "1" }, "InvalidParameterValue.Name"],
      ["CreateAlias", { FunctionName: name, Name: "canary", FunctionVersion: "1" }, "ResourceInUse.Alias"],
      ["CreateAlias", { FunctionName: name, Name: "new", FunctionVersion: "5" }, "ResourceNotFound.Qualifier"],
      [
        "CreateAlias",
        { FunctionName: name, Name: "new", FunctionVersion: "v1" },
        "InvalidParameterValue.FunctionVersion",
      ],
      ["CreateAlias", { FunctionName: name, Name: "new" }, "MissingParameter"],
      [
        "CreateAlias",
        {
          FunctionName: name,
          Name: "rule",
          FunctionVersion: "1",
          RoutingConfig: {
            AddtionVersionMatchs: [
              { Version: "$LATEST", Key: "invoke.headers.User", Method: "exact", Expression: "Bob" },
            ],
          },
        },
        "UnsupportedOperation.RoutingConfig",
      ],
      [
        "CreateAlias",
        {
          FunctionName: name,
          Name: "w",
          FunctionVersion: "1",
          RoutingConfig: { AdditionalVersionWeights: [{ Version: "$LATEST", Weight: 1 }] },
        },
        "InvalidParameterValue.RoutingConfig",
      ],
      [
        "UpdateAlias",
        {
          FunctionName: name,
          Name: "canary",
          FunctionVersion: "1",
          RoutingConfig: { AdditionalVersionWeights: [{ Version: "1", Weight: 0.5 }] },
        },
        "InvalidParameterValue",
      ],
      ["GetAlias", { FunctionName: name, Name: "nosuch" }, "ResourceNotFound.Qualifier"],
      ["ListAliases", { FunctionName: name, Limit: "1000" }, "InvalidParameterValue.Limit"],
      ["ListAliases", { FunctionName: name, Offset: "-1" }, "InvalidParameterValue.Offset"],
      ["GetAlias", { FunctionName: "nosuchfn", Name: "canary" }, "ResourceNotFound.Function"],
    ];
    for (const [action, params, code] of refusals) {
      expect((await tc(action, params)).Error?.Code, `${action} ${JSON.stringify(params)}`).toBe(code);
    }
    await tcOk("DeleteAlias", { FunctionName: name, Name: "canary" });
    expect((await tc("GetAlias", { FunctionName: name, Name: "canary" })).Error?.Code).toBe(
      "ResourceNotFound.Qualifier",
    );
  });

  it("invokes through a Qualifier and filters GetFunctionLogs by version or alias", async () => {
    const name = unique("tci");
    await tcOk("CreateFunction", { FunctionName: name, Runtime: "Nodejs22", Code: { ZipFile: ZIP_V1 } });
    await tcOk("PublishVersion", { FunctionName: name });
    await tcOk("CreateAlias", { FunctionName: name, Name: "prod", FunctionVersion: "1" });
    const invoke = async (qualifier?: string) =>
      (
        (
          await tcOk("Invoke", {
            FunctionName: name,
            InvocationType: "Event",
            ...(qualifier !== undefined ? { Qualifier: qualifier } : {}),
          })
        ).Result as { FunctionRequestId: string }
      ).FunctionRequestId;
    const viaAlias = await invoke("prod");
    const viaLatest = await invoke("$LATEST");
    const viaDefault = await invoke();
    await Promise.all([viaAlias, viaLatest, viaDefault].map(indexRow));
    const logs = async (qualifier: string) =>
      ((await tcOk("GetFunctionLogs", { FunctionName: name, Qualifier: qualifier })).Data as { RequestId: string }[])
        .map((entry) => entry.RequestId)
        .sort();
    expect(await logs("1")).toEqual([viaAlias]);
    expect(await logs("prod")).toEqual([viaAlias]);
    expect(await logs("$LATEST")).toEqual([viaDefault, viaLatest].sort());
    expect(await logs("$DEFAULT")).toEqual([viaDefault]);
    expect(await logs("nosuch")).toEqual([]);
    expect((await tc("GetFunctionLogs", { FunctionName: name, Qualifier: "$latest" })).Error?.Code).toBe(
      "InvalidParameterValue",
    );
    expect((await tc("Invoke", { FunctionName: name, InvocationType: "Event", Qualifier: "7" })).Error?.Code).toBe(
      "ResourceNotFound.Qualifier",
    );
  });

  it("answers ResourceNotFound.Namespace for another namespace's function, and its versions stay as they were", async () => {
    const victim = await setUp();
    await publish(victim.fn);
    const attacker = await createKey([unique("other")]);
    const namespace = victim.namespace;
    const attempts: [string, Record<string, unknown>][] = [
      ["PublishVersion", { FunctionName: victim.name, Namespace: namespace }],
      ["ListVersionByFunction", { FunctionName: victim.name, Namespace: namespace }],
      ["DeleteFunctionVersion", { FunctionName: victim.name, Namespace: namespace, Qualifier: "1" }],
      ["CreateAlias", { FunctionName: victim.name, Namespace: namespace, Name: "x", FunctionVersion: "1" }],
      ["UpdateAlias", { FunctionName: victim.name, Namespace: namespace, Name: "$DEFAULT", FunctionVersion: "1" }],
      ["GetAlias", { FunctionName: victim.name, Namespace: namespace, Name: "$DEFAULT" }],
      ["ListAliases", { FunctionName: victim.name, Namespace: namespace }],
      ["DeleteAlias", { FunctionName: victim.name, Namespace: namespace, Name: "x" }],
      ["GetFunction", { FunctionName: victim.name, Namespace: namespace, Qualifier: "1" }],
    ];
    for (const [action, params] of attempts) {
      expect((await tc(action, params, attacker)).Error?.Code, action).toBe("ResourceNotFound.Namespace");
    }
    expect((await json<{ total: number }>(await call(`${victim.fn}/versions`), 200)).total).toBe(2);
    expect((await json<AliasView>(await call(`${victim.fn}/aliases/$DEFAULT`), 200)).functionVersion).toBe("$LATEST");
  });
});
