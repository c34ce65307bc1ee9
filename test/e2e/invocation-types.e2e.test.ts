// Invocation types through the official Tencent Cloud SDK (issue 12, "Invoke with RequestResponse
// works on both async and sync functions"): a sync function (AsyncRunEnable FALSE) answers
// RequestResponse with its return value in RetMsg and its log with LogType Tail; a failing one
// answers ErrMsg without an API error; an async function answers RequestResponse with the RequestId
// while its handler still sleeps; ListAsyncEvents filters on InvokeType and refuses unknown values.
import { beforeAll, describe, expect, inject, it } from "vitest";
import { ApiClient, uniqueName } from "../helpers/api-client";
import { type ScfSdkClient as Client, scfClient, sdkError } from "../helpers/scf-client";
import { pollUntil } from "../helpers/wait";
import { zipBase64 } from "../helpers/zip";

const baseUrl = inject("baseUrl");
const admin = new ApiClient(baseUrl);

/** Logs a marker, then returns the event's echo, throws, or sleeps `sleepMs` first. */
const HANDLER = `
exports.main_handler = async (event) => {
  console.log("sync-marker " + JSON.stringify(event));
  if (event.fail) throw new Error("failed on purpose: " + event.fail);
  if (event.sleepMs) await new Promise((resolve) => setTimeout(resolve, event.sleepMs));
  return { echo: event, n: 42 };
};
`;

describe("Invoke's invocation types through the official SDK", () => {
  const namespace = `it${Math.random().toString(36).slice(2, 8)}`;
  let client: Client;
  beforeAll(async () => {
    const { status, body } = await admin.json<{ secretId: string; secretKey: string }>("/v1/admin/credentials", {
      method: "POST",
      body: JSON.stringify({ namespaces: [namespace], description: "invocation types e2e" }),
    });
    expect(status).toBe(201);
    client = scfClient(baseUrl, body.secretId, body.secretKey);
  });

  async function createFunction(asyncRunEnable: "TRUE" | "FALSE"): Promise<string> {
    const name = uniqueName(asyncRunEnable === "TRUE" ? "it-async" : "it-sync");
    await client.CreateFunction({
      FunctionName: name,
      Namespace: namespace,
      Runtime: "Nodejs22",
      Handler: "index.main_handler",
      Code: { ZipFile: zipBase64({ "index.js": HANDLER }) },
      Timeout: 20,
      AsyncRunEnable: asyncRunEnable,
    });
    return name;
  }

  it("a sync function answers RequestResponse with its return value in RetMsg and the log with LogType Tail; a failure is ErrMsg, not an API error", async () => {
    const name = await createFunction("FALSE");
    const answer = await client.Invoke({
      FunctionName: name,
      Namespace: namespace,
      InvocationType: "RequestResponse",
      LogType: "Tail",
      ClientContext: JSON.stringify({ k: "v" }),
    });
    const result = answer.Result;
    expect(result?.FunctionRequestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(JSON.parse(result?.RetMsg ?? "")).toEqual({ echo: { k: "v" }, n: 42 });
    expect(result?.ErrMsg).toBe("");
    expect(result?.InvokeResult).toBe(0);
    expect(result?.Log).toContain('sync-marker {"k":"v"}');
    expect(result?.Log).toContain(`[PLATFORM] END RequestId: ${result?.FunctionRequestId} Status: FINISHED`);
    expect(result?.Duration).toBeGreaterThanOrEqual(0);
    expect(result?.BillDuration).toBeGreaterThanOrEqual(100);
    expect((result?.BillDuration ?? 0) % 100).toBe(0);
    // The event is recorded like any other.
    expect(await client.GetAsyncEventStatus({ InvokeRequestId: result?.FunctionRequestId ?? "" })).toMatchObject({
      Result: { Status: "FINISHED", StatusCode: 200 },
    });

    // The SDK's default InvocationType (RequestResponse), a failing handler, no LogType: no log back.
    const failed = await client.Invoke({
      FunctionName: name,
      Namespace: namespace,
      ClientContext: JSON.stringify({ fail: "x1" }),
    });
    expect(failed.Result?.RetMsg).toBe("");
    expect(failed.Result?.Log).toBe("");
    expect(failed.Result?.InvokeResult).toBe(430);
    expect(JSON.parse(failed.Result?.ErrMsg ?? "")).toMatchObject({
      errorCode: -1,
      errorMessage: expect.stringContaining("failed on purpose: x1"),
      requestId: failed.Result?.FunctionRequestId,
      statusCode: 430,
    });
  });

  it("the REST sync route answers a sync function's outcome, and an async function's RequestId at once", async () => {
    const name = await createFunction("FALSE");
    const sync = await admin.json<{ status: string; result: unknown; logTail: string; requestId: string }>(
      `/v1/namespaces/${namespace}/functions/${name}/invocations/sync`,
      { method: "POST", body: JSON.stringify({ via: "rest" }) },
    );
    expect(sync.status).toBe(200);
    expect(sync.body).toMatchObject({ status: "FINISHED", result: { echo: { via: "rest" }, n: 42 } });
    expect(sync.body.logTail).toContain('sync-marker {"via":"rest"}');
    const asyncName = await createFunction("TRUE");
    const accepted = await admin.json<{ requestId: string }>(
      `/v1/namespaces/${namespace}/functions/${asyncName}/invocations/sync`,
      { method: "POST", body: JSON.stringify({ sleepMs: 5_000 }) },
    );
    expect(accepted.status).toBe(202);
    expect(accepted.body.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("an async function answers RequestResponse with the RequestId while its handler still runs", async () => {
    const name = await createFunction("TRUE");
    const began = Date.now();
    const answer = await client.Invoke({
      FunctionName: name,
      Namespace: namespace,
      InvocationType: "RequestResponse",
      LogType: "Tail",
      ClientContext: JSON.stringify({ sleepMs: 8_000 }),
    });
    const answeredMs = Date.now() - began;
    const requestId = answer.Result?.FunctionRequestId ?? "";
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(answer.Result).toMatchObject({ RetMsg: "", ErrMsg: "", Log: "", InvokeResult: 0 });
    expect(answeredMs).toBeLessThan(8_000);
    // The handler had not ended when the answer came.
    const status = await client.GetAsyncEventStatus({ InvokeRequestId: requestId });
    expect(status.Result?.Status).toBe("RUNNING");
  });

  it("ListAsyncEvents filters by InvokeType OTHERS and refuses an unknown invoke type", async () => {
    const name = await createFunction("FALSE");
    const invoked = await client.Invoke({ FunctionName: name, Namespace: namespace, InvocationType: "Event" });
    const requestId = invoked.Result?.FunctionRequestId ?? "";
    const listed = await pollUntil(
      () => client.ListAsyncEvents({ FunctionName: name, Namespace: namespace, InvokeType: ["OTHERS"] }),
      (page) => page.TotalCount === 1,
    );
    expect(listed.EventList?.[0]).toMatchObject({ InvokeRequestId: requestId, InvokeType: "OTHERS" });
    const timers = await client.ListAsyncEvents({
      FunctionName: name,
      Namespace: namespace,
      InvokeType: ["TRIGGER_TIMER", "COS"],
    });
    expect(timers.TotalCount).toBe(0);
    expect(
      await sdkError(client.ListAsyncEvents({ FunctionName: name, Namespace: namespace, InvokeType: ["TIMER"] })),
    ).toBe("InvalidParameterValue.InvokeType");
    expect(await sdkError(client.Invoke({ FunctionName: name, Namespace: namespace, InvocationType: "DryRun" }))).toBe(
      "InvalidParameterValue.InvocationType",
    );
  });
});
