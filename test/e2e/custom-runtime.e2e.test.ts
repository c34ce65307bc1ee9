// SCF's Custom Runtime end to end (issue 13): a function created through the official SDK with
// Runtime "CustomRuntime" whose package is a bash scf_bootstrap (HTTP/1.0 over /dev/tcp: the runtime
// image has no curl) runs in a real container: result, error, graceful terminate handled by the
// program's own trap, exit mid-event and timeout end as a code function's would; a package whose
// scf_bootstrap is not executable fails its events saying so.
import { beforeAll, describe, expect, inject, it } from "vitest";
import { ApiClient, type EventView, TEST_CREDENTIALS, uniqueName } from "../helpers/api-client";
import { customRuntimeZip } from "../helpers/custom-runtime";
import { scfClient } from "../helpers/scf-client";
import { pollUntil } from "../helpers/wait";

const baseUrl = inject("baseUrl");
const api = new ApiClient(baseUrl);
const NAMESPACE = "default";
/** Longest wait for a line of the program (a cold start on a shared, slow machine). */
const LINE_WAIT_MS = 60_000;

function zipBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64");
}

async function lines(requestId: string): Promise<string[]> {
  return (await api.logs(requestId)).map((record) => record.line);
}

async function waitForLine(requestId: string, line: string): Promise<string[]> {
  return pollUntil(
    () => lines(requestId),
    (found) => found.includes(line),
    LINE_WAIT_MS,
  );
}

describe("a CustomRuntime function with a bash scf_bootstrap", () => {
  let name: string;
  beforeAll(async () => {
    name = uniqueName("custom");
    const client = scfClient(baseUrl, TEST_CREDENTIALS.secretId, TEST_CREDENTIALS.secretKey);
    await client.CreateFunction({
      FunctionName: name,
      Namespace: NAMESPACE,
      Runtime: "CustomRuntime",
      Handler: "index.main_handler",
      Code: { ZipFile: zipBase64(customRuntimeZip()) },
      Timeout: 60,
      MemorySize: 128,
    });
    const fn = await client.GetFunction({ FunctionName: name, Namespace: NAMESPACE });
    expect(fn.Runtime).toBe("CustomRuntime");
  });

  it("ends FINISHED with the posted response, the program's output in the log", async () => {
    const requestId = await api.invoke(NAMESPACE, name, { n: 7 });
    const done = await api.waitForEvent(requestId);
    expect(done.status, JSON.stringify(done)).toBe("FINISHED");
    expect(done.result).toMatchObject({ echo: { n: 7 }, requestId, memory: 128, handler: "index.main_handler" });
    const logged = await lines(requestId);
    expect(logged).toContain("init handler=index.main_handler runtime=CustomRuntime api=127.0.0.1");
    expect(logged).toContain(`event ${requestId} {"n":7}`);
  });

  it("ends FAILED/430 with the posted error", async () => {
    const done = await api.waitForEvent(await api.invoke(NAMESPACE, name, { mode: "error" }));
    expect(done.status).toBe("FAILED");
    expect(done.statusCode).toBe(430);
    expect(done.errorMessage).toBe('bad input: {"mode":"error"}');
  });

  it("lets the program's trap handle a graceful terminate; the event ends ABORTED with its result", async () => {
    const requestId = await api.invoke(NAMESPACE, name, { mode: "sleep" });
    await waitForLine(requestId, "ready");
    const response = await api.json<EventView>(`/v1/events/${requestId}/terminate`, {
      method: "POST",
      body: JSON.stringify({ graceful: true }),
    });
    expect(response.status).toBe(200);
    const done = await api.waitForEvent(requestId);
    expect(done.status).toBe("ABORTED");
    expect(done.result).toEqual({ terminated: 1 });
    const logged = await lines(requestId);
    expect(logged).toContain("got TERM, finishing");
    expect(logged).toContain("[PLATFORM] Signal received successfully");
  });

  it("ends FAILED/439 when the program exits mid-event", async () => {
    const requestId = await api.invoke(NAMESPACE, name, { mode: "exit" });
    const done = await api.waitForEvent(requestId);
    expect(done.status).toBe("FAILED");
    expect(done.statusCode).toBe(439);
    expect(done.errorMessage).toContain("exit code 3");
    expect(await lines(requestId)).toContain("exiting 3");
  });

  it("runs every event of a program that exits after each answer, however soon the next one comes", async () => {
    // One container (maxConcurrency 1): each event is sent as soon as the one before ended, while
    // the program that answered it may still be exiting; the next event starts it again.
    const oneShot = await api.createFunction(NAMESPACE, {
      name: uniqueName("custom-oneshot"),
      runtime: "CustomRuntime",
      maxConcurrency: 1,
      code: { zipFile: zipBase64(customRuntimeZip()) },
    });
    expect(oneShot.status, JSON.stringify(oneShot.body)).toBe(201);
    const requestIds = await Promise.all(
      [1, 2, 3].map(() => api.invoke(NAMESPACE, String(oneShot.body.name), { mode: "oneshot" })),
    );
    for (const requestId of requestIds) {
      const done = await api.waitForEvent(requestId, undefined, 120_000);
      expect(done.status, JSON.stringify(done)).toBe("FINISHED");
      expect(done.result).toBe(`one shot ${requestId}`);
    }
  });

  it("ends FAILED/430 saying so when scf_bootstrap is not executable", async () => {
    const created = await api.createFunction(NAMESPACE, {
      name: uniqueName("custom-noexec"),
      runtime: "CustomRuntime",
      code: { zipFile: zipBase64(customRuntimeZip({ executable: false })) },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const done = await api.waitForEvent(await api.invoke(NAMESPACE, String(created.body.name), {}));
    expect(done.status).toBe("FAILED");
    expect(done.statusCode).toBe(430);
    expect(done.errorMessage).toContain("scf_bootstrap is missing or not executable (chmod 755 before zipping)");
  });

  it("ends FAILED/433 when the program does not answer within the function's timeout", async () => {
    const short = await api.createFunction(NAMESPACE, {
      name: uniqueName("custom-timeout"),
      runtime: "CustomRuntime",
      timeout: 2,
      code: { zipFile: zipBase64(customRuntimeZip()) },
    });
    expect(short.status, JSON.stringify(short.body)).toBe(201);
    const done = await api.waitForEvent(
      await api.invoke(NAMESPACE, String(short.body.name), { mode: "sleep" }),
      undefined,
      60_000,
    );
    expect(done.status).toBe("FAILED");
    expect(done.statusCode).toBe(433);
  });
});
