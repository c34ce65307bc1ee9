import { beforeAll, describe, expect, inject, it } from "vitest";
import { ApiClient, uniqueName } from "../helpers/api-client";
import { type ScfSdkClient as Client, scfClient, sdkError } from "../helpers/scf-client";
import { pollUntil } from "../helpers/wait";
import { zipBase64 } from "../helpers/zip";
import { NODE_HANDLER, NODE_LONG_JOB, PYTHON_HANDLER } from "./fixtures";

const baseUrl = inject("baseUrl");
const admin = new ApiClient(baseUrl);

/** The official SDK client, pointed at the platform over plain HTTP. */
function sdk(secretId: string, secretKey: string): Client {
  return scfClient(baseUrl, secretId, secretKey);
}

async function createKey(namespaces: string[]): Promise<{ secretId: string; secretKey: string }> {
  const { status, body } = await admin.json<{ secretId: string; secretKey: string }>("/v1/admin/credentials", {
    method: "POST",
    body: JSON.stringify({ namespaces, description: "sdk e2e" }),
  });
  expect(status).toBe(201);
  return body;
}

/** Resolves once the clock is in a later whole second than `at` (TC3 timestamps are seconds). */
async function nextSecondAfter(at: number): Promise<void> {
  const wait = (Math.floor(at / 1000) + 1) * 1000 - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait + 10));
}

async function waitForStatus(client: Client, requestId: string, done: (status: string) => boolean) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const answer = await client.GetAsyncEventStatus({ InvokeRequestId: requestId });
    if (done(answer.Result?.Status ?? "") || Date.now() > deadline) return answer.Result;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe("the official tencentcloud-sdk-nodejs-scf client", () => {
  const namespace = `sdk${Math.random().toString(36).slice(2, 8)}`;
  let client: Client;
  beforeAll(async () => {
    const key = await createKey([namespace]);
    client = sdk(key.secretId, key.secretKey);
  });

  it("creates Node.js and Python functions, invokes them with Event and reads them FINISHED", async () => {
    const created: string[] = [];
    for (const [runtime, files] of [
      ["Nodejs22", { "index.js": NODE_HANDLER }],
      ["Python3.11", { "index.py": PYTHON_HANDLER }],
    ] as const) {
      const name = uniqueName(runtime === "Nodejs22" ? "sdk-node" : "sdk-py");
      created.push(name);
      await client.CreateFunction({
        FunctionName: name,
        Namespace: namespace,
        Runtime: runtime,
        Handler: "index.main_handler",
        Code: { ZipFile: zipBase64(files) },
        Timeout: 30,
        MemorySize: 128,
        Environment: { Variables: [{ Key: "GREETING", Value: "ni hao" }] },
        AsyncRunEnable: "TRUE",
        Description: "from the SDK",
      });
      const fn = await client.GetFunction({ FunctionName: name, Namespace: namespace });
      expect(fn).toMatchObject({ FunctionName: name, Runtime: runtime, AsyncRunEnable: "TRUE", Timeout: 30 });
      expect(fn.AddTime).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);

      const invoked = await client.Invoke({
        FunctionName: name,
        Namespace: namespace,
        InvocationType: "Event",
        ClientContext: JSON.stringify({ n: 7 }),
      });
      const requestId = invoked.Result?.FunctionRequestId ?? "";
      expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
      const status = await waitForStatus(client, requestId, (s) => s !== "RUNNING");
      expect(status).toMatchObject({ Status: "FINISHED", StatusCode: 200, InvokeRequestId: requestId });
      const event = await admin.event(requestId);
      expect(event.result).toMatchObject({ echo: { n: 7 }, greeting: "ni hao" });
    }
    // Both functions are listed (whatever other tests of the namespace created before or after).
    const listed = await client.ListFunctions({ Namespace: namespace, Limit: 100 });
    const listedNames = listed.Functions?.map((fn) => fn.FunctionName) ?? [];
    expect(listedNames).toEqual(expect.arrayContaining(created));
  });

  it("lists async events with filters and paging", async () => {
    const name = uniqueName("sdk-list");
    await client.CreateFunction({
      FunctionName: name,
      Namespace: namespace,
      Runtime: "Nodejs22",
      Handler: "index.main_handler",
      Code: { ZipFile: zipBase64({ "index.js": NODE_HANDLER }) },
      AsyncRunEnable: "TRUE",
    });
    const ids: string[] = [];
    for (const event of [{ n: 1 }, { n: 2 }, { throw: "x" }, { n: 3 }, { throw: "y" }]) {
      const invoked = await client.Invoke({
        FunctionName: name,
        Namespace: namespace,
        InvocationType: "Event",
        ClientContext: JSON.stringify(event),
      });
      ids.push(invoked.Result?.FunctionRequestId ?? "");
      await waitForStatus(client, ids.at(-1) ?? "", (s) => s !== "RUNNING");
    }
    // The list index follows each event's end: wait until it shows the two failures.
    const failed = await pollUntil(
      () => client.ListAsyncEvents({ FunctionName: name, Namespace: namespace, Status: ["FAILED"] }),
      (answer) => answer.TotalCount === 2,
    );
    expect(failed.TotalCount).toBe(2);
    expect(failed.EventList?.map((event) => event.InvokeRequestId).sort()).toEqual([ids[2], ids[4]].sort());
    const firstPage = await client.ListAsyncEvents({
      FunctionName: name,
      Namespace: namespace,
      Order: "ASC",
      Orderby: "StartTime",
      Offset: 0,
      Limit: 3,
    });
    const secondPage = await client.ListAsyncEvents({
      FunctionName: name,
      Namespace: namespace,
      Order: "ASC",
      Orderby: "StartTime",
      Offset: 3,
      Limit: 3,
    });
    expect(firstPage.TotalCount).toBe(5);
    expect([...(firstPage.EventList ?? []), ...(secondPage.EventList ?? [])].map((e) => e.InvokeRequestId)).toEqual(
      ids,
    );
    expect(firstPage.EventList?.[0]?.StartTime).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
    const now = new Date();
    const window = await client.ListAsyncEvents({
      FunctionName: name,
      Namespace: namespace,
      StartTimeInterval: {
        Start: new Date(now.getTime() - 3_600_000).toISOString().slice(0, 19).replace("T", " "),
        End: new Date(now.getTime() + 3_600_000).toISOString().slice(0, 19).replace("T", " "),
      },
      InvokeType: ["OTHERS"],
    });
    expect(window.TotalCount).toBe(5);

    const logs = await client.GetFunctionLogs({
      FunctionName: name,
      Namespace: namespace,
      Filter: { RetCode: "not0" },
      Limit: 10,
    });
    expect(logs.TotalCount).toBe(2);
    expect(logs.Data?.every((entry) => entry.RetCode !== 0)).toBe(true);
    expect(logs.Data?.map((entry) => entry.Log).join("\n")).toContain("start ");
  });

  it("terminates forced and with GraceShutdown, then deletes the function", async () => {
    const name = uniqueName("sdk-term");
    await client.CreateFunction({
      FunctionName: name,
      Namespace: namespace,
      Runtime: "Nodejs22",
      Handler: "index.main_handler",
      Code: { ZipFile: zipBase64({ "index.js": NODE_LONG_JOB }) },
      Timeout: 300,
      AsyncRunEnable: "TRUE",
    });
    const start = async (event: object) => {
      const invoked = await client.Invoke({
        FunctionName: name,
        Namespace: namespace,
        InvocationType: "Event",
        ClientContext: JSON.stringify(event),
      });
      const id = invoked.Result?.FunctionRequestId ?? "";
      await admin.waitForEvent(id, (view) => view.phase === "running");
      return id;
    };
    const forced = await start({ runMs: 60_000 });
    const forcedAt = Date.now();
    await client.TerminateAsyncEvent({ FunctionName: name, Namespace: namespace, InvokeRequestId: forced });
    expect(await client.GetAsyncEventStatus({ InvokeRequestId: forced })).toMatchObject({
      Result: { Status: "ABORTED", StatusCode: 499 },
    });

    const graceful = await start({ runMs: 60_000, listen: true });
    // The handler installs its SIGTERM listener before its first "tick": wait for that line.
    await pollUntil(
      () => admin.logs(graceful),
      (records) => records.some((record) => record.line === "tick"),
    );
    await client.TerminateAsyncEvent({
      FunctionName: name,
      Namespace: namespace,
      InvokeRequestId: graceful,
      GraceShutdown: true,
    });
    const ended = await waitForStatus(client, graceful, (s) => s !== "RUNNING");
    expect(ended).toMatchObject({ Status: "ABORTED" });
    const lines = (await admin.logs(graceful)).map((record) => record.line);
    expect(lines).toContain("[PLATFORM] Signal received successfully");

    // The same request signed in the same second is one signature, refused as a replay (README):
    // the repeat is sent in a later second so that it is judged on its merits.
    await nextSecondAfter(forcedAt);
    expect(
      await sdkError(client.TerminateAsyncEvent({ FunctionName: name, Namespace: namespace, InvokeRequestId: forced })),
    ).toBe("FailedOperation.AsyncEvent");
    // DeleteFunction is refused while the index shows a RUNNING event: wait until it shows none.
    await pollUntil(
      () => client.ListAsyncEvents({ FunctionName: name, Namespace: namespace, Status: ["RUNNING"] }),
      (answer) => answer.TotalCount === 0,
    );
    await client.DeleteFunction({ FunctionName: name, Namespace: namespace });
    expect(await sdkError(client.GetFunction({ FunctionName: name, Namespace: namespace }))).toBe(
      "ResourceNotFound.Function",
    );
  });

  it("refuses bad credentials and other namespaces with Tencent's codes, changing nothing", async () => {
    const other = await createKey([`${namespace}x`]);
    const foreign = sdk(other.secretId, other.secretKey);
    expect(await sdkError(foreign.ListFunctions({ Namespace: namespace }))).toBe("ResourceNotFound.Namespace");
    expect(await sdkError(sdk(other.secretId, "wrong-key").ListFunctions({}))).toBe("AuthFailure.SignatureFailure");
    expect(await sdkError(sdk("AKIDunknown0000", "x").ListFunctions({}))).toBe("AuthFailure.SecretIdNotFound");
    const name = uniqueName("sdk-guard");
    expect(
      await sdkError(
        foreign.CreateFunction({
          FunctionName: name,
          Namespace: namespace,
          Runtime: "Nodejs22",
          Code: { ZipFile: zipBase64({ "index.js": NODE_HANDLER }) },
        }),
      ),
    ).toBe("ResourceNotFound.Namespace");
    expect(await sdkError(client.GetFunction({ FunctionName: name, Namespace: namespace }))).toBe(
      "ResourceNotFound.Function",
    );
    expect(
      await sdkError(client.Invoke({ FunctionName: "no-such-fn", Namespace: namespace, InvocationType: "Event" })),
    ).toBe("ResourceNotFound.Function");
    expect(
      await sdkError(
        client.UpdateFunctionConfiguration({ FunctionName: "no-such-fn", Namespace: namespace, Timeout: 10 }),
      ),
    ).toBe("ResourceNotFound.Function");
  });
});
