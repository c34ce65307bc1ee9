// Runtime names (issue 13): the SCF names of the languages shipped are accepted and run on the
// shipped engine, the function keeps and reports the name it was created with, every other name is
// refused with an error listing the supported ones (REST 400 and Tencent InvalidParameterValue.Runtime).
import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { engineOf, executionSpecSchema, RUNTIME_ENGINES, RUNTIME_NAMES } from "../../worker/contract/execution-spec";
import { signedAction } from "../helpers/signed-action";
import { zipBase64 } from "../helpers/zip";

const BASE = "https://platform.test";
const workerEnv: Env = env;
const AUTH = { authorization: `Bearer ${workerEnv.DEV_SECRET_ID ?? ""}:${workerEnv.DEV_SECRET_KEY ?? ""}` };
const ZIP = zipBase64({ "index.js": "exports.main_handler = (event, context, callback) => callback(null, 'ok');" });
/** SCF names of languages this platform does not ship, and names it chose not to accept. */
const REFUSED = ["Php7", "Php8.0", "Java8", "Go1", "Python2.7", "Nodejs8.9", "Python3.12", "nodejs18.15"];
let counter = 0;

function uniqueName(): string {
  counter += 1;
  return `rt-${Date.now().toString(36)}-${counter}`;
}

function rest(path: string, init: RequestInit = {}): Promise<Response> {
  return SELF.fetch(`${BASE}${path}`, { ...init, headers: { ...AUTH, ...(init.headers ?? {}) } });
}

const tc = signedAction;

describe("the runtime table", () => {
  it("maps every accepted name to a shipped engine, SCF's Node.js and Python names included", () => {
    for (const name of RUNTIME_NAMES) expect(RUNTIME_ENGINES, name).toContain(engineOf(name));
    expect(engineOf("Nodejs18.15")).toBe("Nodejs22");
    expect(engineOf("Nodejs16.13")).toBe("Nodejs22");
    expect(engineOf("Python3.9")).toBe("Python3.11");
    expect(engineOf("Python3.6")).toBe("Python3.11");
    expect(engineOf("CustomRuntime")).toBe("CustomRuntime");
    for (const name of [...REFUSED, "__proto__", "constructor", "toString", 7, undefined]) {
      expect(engineOf(name), String(name)).toBeUndefined();
    }
  });

  it("lets the container contract carry an accepted name and refuses the others", () => {
    const spec = (runtime: unknown) => ({
      requestId: "r1",
      runtime,
      handler: "index.main_handler",
      codeSha256: "0".repeat(64),
      event: {},
      environment: {},
      memoryLimitMb: 128,
      timeoutMs: 1000,
      context: {
        request_id: "r1",
        function_name: "f",
        namespace: "default",
        function_version: "$LATEST",
        memory_limit_in_mb: 128,
        time_limit_in_ms: 1000,
      },
    });
    expect(executionSpecSchema.safeParse(spec("Nodejs18.15")).success).toBe(true);
    expect(executionSpecSchema.safeParse(spec("Php7")).success).toBe(false);
  });
});

describe("runtime names through the REST API", () => {
  it("creates a function with an SCF name and reports that name, not the engine's", async () => {
    const name = uniqueName();
    const created = await rest("/v1/namespaces/default/functions", {
      method: "POST",
      body: JSON.stringify({ name, runtime: "Nodejs18.15", code: { zipFile: ZIP } }),
    });
    expect(created.status, await created.clone().text()).toBe(201);
    expect(((await created.json()) as { runtime: string }).runtime).toBe("Nodejs18.15");
    const read = await rest(`/v1/namespaces/default/functions/${name}`);
    expect(((await read.json()) as { runtime: string }).runtime).toBe("Nodejs18.15");
    const patched = await rest(`/v1/namespaces/default/functions/${name}`, {
      method: "PATCH",
      body: JSON.stringify({ runtime: "Nodejs16.13" }),
    });
    expect(patched.status).toBe(200);
    expect(((await patched.json()) as { runtime: string }).runtime).toBe("Nodejs16.13");
  });

  it("refuses a runtime it does not ship with 400 listing every supported name", async () => {
    for (const runtime of REFUSED) {
      const response = await rest("/v1/namespaces/default/functions", {
        method: "POST",
        body: JSON.stringify({ name: uniqueName(), runtime, code: { zipFile: ZIP } }),
      });
      expect(response.status, runtime).toBe(400);
      const { error } = (await response.json()) as { error: { code: string; message: string } };
      expect(error.code).toBe("INVALID_PARAMETER");
      for (const supported of RUNTIME_NAMES) expect(error.message, runtime).toContain(supported);
    }
  });
});

describe("runtime names through the Tencent API", () => {
  it("creates a function with Nodejs18.15 and GetFunction reports Nodejs18.15", async () => {
    const name = uniqueName();
    const created = await tc("CreateFunction", { FunctionName: name, Runtime: "Nodejs18.15", Code: { ZipFile: ZIP } });
    expect(created.Error).toBeUndefined();
    const got = await tc("GetFunction", { FunctionName: name });
    expect(got.Runtime).toBe("Nodejs18.15");
  });

  it("creates a CustomRuntime function and GetFunction reports CustomRuntime", async () => {
    const name = uniqueName();
    const created = await tc("CreateFunction", {
      FunctionName: name,
      Runtime: "CustomRuntime",
      Code: { ZipFile: ZIP },
    });
    expect(created.Error).toBeUndefined();
    const got = await tc("GetFunction", { FunctionName: name });
    expect(got.Runtime).toBe("CustomRuntime");
  });

  it("refuses Php7 and Python2.7 with InvalidParameterValue.Runtime listing every supported name", async () => {
    for (const runtime of ["Php7", "Python2.7", "Go1"]) {
      const answer = await tc("CreateFunction", {
        FunctionName: uniqueName(),
        Runtime: runtime,
        Code: { ZipFile: ZIP },
      });
      expect(answer.Error?.Code, runtime).toBe("InvalidParameterValue.Runtime");
      for (const supported of RUNTIME_NAMES) expect(answer.Error?.Message, runtime).toContain(supported);
    }
  });
});
