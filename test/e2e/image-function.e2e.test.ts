// Image functions end to end (issue 13): SCF's own image sample (containers/images/flask-sample:
// Flask on port 9000, POST /event-invoke loops until a SIGTERM handler sets a flag, then answers
// "END"), created through the official SDK with Code.ImageConfig and run in a real container: the
// answer as the result, the server's own lines in the live log and in GetFunctionLogs, a warm
// container for the next event, a forced and a graceful terminate, and an unregistered image refused.
import { beforeAll, describe, expect, inject, it } from "vitest";
import { ApiClient, followLogs, TEST_CREDENTIALS, uniqueName } from "../helpers/api-client";
import { type ScfSdkClient, scfClient, sdkError } from "../helpers/scf-client";
import { pollUntil } from "../helpers/wait";

const baseUrl = inject("baseUrl");
const api = new ApiClient(baseUrl);
const NAMESPACE = "default";
/** The registered image every namespace may use (wrangler.toml CONTAINER_IMAGES "flask-sample=*"). */
const IMAGE_URI = "ccr.ccs.tencentyun.com/e2e/flask-sample:latest";
/** Longest wait for an event or a line (a cold start of the image on a shared, slow machine). */
const WAIT_MS = 120_000;

async function lines(requestId: string): Promise<string[]> {
  return (await api.logs(requestId)).map((record) => record.line);
}

/** Waits until the server printed that it started working on the event. */
async function waitForStarted(requestId: string): Promise<string[]> {
  return pollUntil(
    () => lines(requestId),
    (found) => found.some((line) => line.startsWith(`event-invoke ${requestId} started: `)),
    WAIT_MS,
  );
}

/** Reconnections a live follower makes (from Last-Event-ID) when its connection drops before the end. */
const FOLLOW_RECONNECTS = 3;

/** The event's live log followed to its end, resumed from the last id as an SSE client does. */
async function followToEnd(requestId: string): Promise<{ lines: string[]; end: unknown }> {
  const lines: string[] = [];
  let lastEventId: number | undefined;
  for (let attempt = 0; attempt <= FOLLOW_RECONNECTS; attempt++) {
    const { logs, end } = await followLogs(api, requestId, lastEventId === undefined ? {} : { lastEventId });
    for (const event of logs) lines.push((event.data as { line: string }).line);
    lastEventId = logs.at(-1)?.id ?? lastEventId;
    if (end) return { lines, end: end.data };
  }
  return { lines, end: undefined };
}

async function waitForStatus(client: ScfSdkClient, requestId: string) {
  return pollUntil(
    async () => (await client.GetAsyncEventStatus({ InvokeRequestId: requestId })).Result,
    (result) => result?.Status !== "RUNNING",
    WAIT_MS,
  );
}

describe("an image function of SCF's Flask sample, through the official SDK", () => {
  const client = scfClient(baseUrl, TEST_CREDENTIALS.secretId, TEST_CREDENTIALS.secretKey);
  const name = uniqueName("image-flask");

  async function invoke(event: object): Promise<string> {
    const invoked = await client.Invoke({
      FunctionName: name,
      Namespace: NAMESPACE,
      InvocationType: "Event",
      ClientContext: JSON.stringify(event),
    });
    const requestId = invoked.Result?.FunctionRequestId ?? "";
    expect(requestId).not.toBe("");
    return requestId;
  }

  beforeAll(async () => {
    await client.CreateFunction({
      FunctionName: name,
      Namespace: NAMESPACE,
      MemorySize: 512,
      Timeout: 300,
      AsyncRunEnable: "TRUE",
      Code: { ImageConfig: { ImageType: "personal", ImageUri: IMAGE_URI } },
    });
    const fn = await client.GetFunction({ FunctionName: name, Namespace: NAMESPACE });
    expect(fn.Runtime).toBe("CustomImage");
    expect(fn.ImageConfig).toMatchObject({ ImageType: "personal", ImageUri: IMAGE_URI });
  });

  let firstInstance: string | null = null;

  it("ends FINISHED with the server's answer, its own lines in the live log and in GetFunctionLogs", async () => {
    const requestId = await invoke({ sleep: 0 });
    const { lines: followed, end } = await followToEnd(requestId);
    expect(followed, JSON.stringify({ followed, end })).toContain(`event-invoke ${requestId} started: {"sleep": 0}`);
    expect(followed).toContain(`stderr line of ${requestId}`);
    expect(end).toMatchObject({ requestId, status: "FINISHED", statusCode: 200 });

    expect(await waitForStatus(client, requestId)).toMatchObject({ Status: "FINISHED", StatusCode: 200 });
    const done = await api.event(requestId);
    expect(done).toMatchObject({ status: "FINISHED", result: "END", coldStart: true });
    expect(done.instanceId).toMatch(/@image$/);
    firstInstance = done.instanceId;

    // GetFunctionLogs lists from the index, which follows each event's end.
    const listed = await pollUntil(
      () => client.GetFunctionLogs({ FunctionName: name, Namespace: NAMESPACE, FunctionRequestId: requestId }),
      (answer) => answer.Data?.length === 1,
      WAIT_MS,
    );
    const entry = listed.Data?.[0];
    expect(entry).toMatchObject({ RequestId: requestId, RetCode: 0, RetMsg: JSON.stringify("END") });
    expect(entry?.Log).toContain(`event-invoke ${requestId} started: {"sleep": 0}`);
    expect(entry?.Log).toContain(`event-invoke ${requestId} done after`);
  });

  it("runs the next event in the same warm container", async () => {
    const requestId = await invoke({ sleep: 0, second: true });
    expect(await waitForStatus(client, requestId)).toMatchObject({ Status: "FINISHED" });
    const done = await api.event(requestId);
    expect(done, JSON.stringify({ done, firstInstance })).toMatchObject({
      status: "FINISHED",
      result: "END",
      coldStart: false,
    });
    expect(done.instanceId).toBe(firstInstance);
  });

  it("ends ABORTED at once on a forced terminate of the running loop", async () => {
    // No "sleep": the server loops until a SIGTERM (each event differs: an identical signed call
    // within the same second would be refused as a replay).
    const requestId = await invoke({ terminate: "forced" });
    await waitForStarted(requestId);
    await client.TerminateAsyncEvent({ FunctionName: name, Namespace: NAMESPACE, InvokeRequestId: requestId });
    expect(await client.GetAsyncEventStatus({ InvokeRequestId: requestId })).toMatchObject({
      Result: { Status: "ABORTED", StatusCode: 499 },
    });
    expect(await lines(requestId)).not.toContain("received SIGTERM, finishing the current event");
  });

  it("delivers SIGTERM to the server on a graceful terminate: its own line, the platform's, and END", async () => {
    const requestId = await invoke({ terminate: "graceful" });
    await waitForStarted(requestId);
    await client.TerminateAsyncEvent({
      FunctionName: name,
      Namespace: NAMESPACE,
      InvokeRequestId: requestId,
      GraceShutdown: true,
    });
    expect(await waitForStatus(client, requestId)).toMatchObject({ Status: "ABORTED" });
    const done = await api.event(requestId);
    expect(done.result).toBe("END");
    const logged = await lines(requestId);
    expect(logged).toContain("[PLATFORM] Signal received successfully");
    expect(logged).toContain("received SIGTERM, finishing the current event");
    expect(logged.some((line) => line.startsWith(`event-invoke ${requestId} done after`))).toBe(true);
  });

  it("refuses an image that is not registered, creating nothing", async () => {
    const refused = uniqueName("image-unknown");
    expect(
      await sdkError(
        client.CreateFunction({
          FunctionName: refused,
          Namespace: NAMESPACE,
          Code: { ImageConfig: { ImageType: "personal", ImageUri: "ccr.ccs.tencentyun.com/e2e/not-registered:v1" } },
        }),
      ),
    ).toBe("InvalidParameterValue.ImageUri");
    expect(await sdkError(client.GetFunction({ FunctionName: refused, Namespace: NAMESPACE }))).toBe(
      "ResourceNotFound.Function",
    );
  });
});
