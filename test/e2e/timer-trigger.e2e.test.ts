// The timer trigger end to end (issue 12, done-when: "a timer trigger firing every 2 seconds
// creates events with the timer invoke type and the documented event shape"), through the official
// tencentcloud-sdk-nodejs-scf client: CreateTrigger, ListAsyncEvents, UpdateTrigger, DeleteTrigger,
// ListTriggers, on one function kept warm in one container.
import { beforeAll, describe, expect, inject, it } from "vitest";
import { ApiClient, uniqueName } from "../helpers/api-client";
import { type ScfSdkClient as Client, scfClient } from "../helpers/scf-client";
import { pollUntil } from "../helpers/wait";
import { zipBase64 } from "../helpers/zip";

const baseUrl = inject("baseUrl");
const admin = new ApiClient(baseUrl);
/** The handler echoes its event as its result (and in a log line). */
const ECHO_HANDLER = `exports.main_handler = async (event) => { console.log(JSON.stringify(event)); return event; };`;
const CUSTOM_ARGUMENT = '{"job":"nightly-report","size":3}';

/** SCF's timer event (scf-reference §1.1). */
interface TimerEvent {
  Type: string;
  TriggerName: string;
  Time: string;
  Message: string;
}

async function createKey(namespaces: string[]): Promise<{ secretId: string; secretKey: string }> {
  const { status, body } = await admin.json<{ secretId: string; secretKey: string }>("/v1/admin/credentials", {
    method: "POST",
    body: JSON.stringify({ namespaces, description: "timer e2e" }),
  });
  expect(status).toBe(201);
  return body;
}

describe("a timer trigger through the official SDK", () => {
  const namespace = `tmr${Math.random().toString(36).slice(2, 8)}`;
  const functionName = uniqueName("timer-fn");
  let client: Client;

  beforeAll(async () => {
    const key = await createKey([namespace]);
    client = scfClient(baseUrl, key.secretId, key.secretKey);
    await client.CreateFunction({
      FunctionName: functionName,
      Namespace: namespace,
      Runtime: "Nodejs22",
      Handler: "index.main_handler",
      Code: { ZipFile: zipBase64({ "index.js": ECHO_HANDLER }) },
      Timeout: 10,
      MemorySize: 128,
      AsyncRunEnable: "TRUE",
    });
  });

  /** The function's TRIGGER_TIMER events, as ListAsyncEvents lists them. */
  async function timerEvents() {
    const answer = await client.ListAsyncEvents({
      FunctionName: functionName,
      Namespace: namespace,
      InvokeType: ["TRIGGER_TIMER"],
      Limit: 100,
    });
    return answer.EventList ?? [];
  }

  it("fires every 2 seconds with SCF's timer event, stops when closed, and is gone once deleted", async () => {
    const created = await client.CreateTrigger({
      FunctionName: functionName,
      Namespace: namespace,
      TriggerName: "every-2s",
      Type: "timer",
      TriggerDesc: "*/2 * * * * * *",
      CustomArgument: CUSTOM_ARGUMENT,
    });
    expect(created.TriggerInfo).toMatchObject({
      TriggerName: "every-2s",
      Type: "timer",
      TriggerDesc: '{"cron":"*/2 * * * * * *"}',
      Enable: 1,
      Qualifier: "$DEFAULT",
      CustomArgument: CUSTOM_ARGUMENT,
    });
    const fn = await client.GetFunction({ FunctionName: functionName, Namespace: namespace });
    expect(fn.Triggers?.map((trigger) => trigger.TriggerName)).toEqual(["every-2s"]);

    const listed = await pollUntil(timerEvents, (events) => events.length >= 3, 12_000);
    expect(listed.length).toBeGreaterThanOrEqual(3);
    for (const event of listed) expect(event.InvokeType).toBe("TRIGGER_TIMER");

    // Each event ran the handler, which answered with the event it was handed.
    const results = await Promise.all(
      listed.slice(0, 3).map(async (event) => {
        const ended = await admin.waitForEvent(event.InvokeRequestId ?? "", undefined, 30_000);
        expect(ended.status).toBe("FINISHED");
        expect(ended.invokeType).toBe("TRIGGER_TIMER");
        return { result: ended.result as TimerEvent, invokedAt: Date.parse(ended.invokedAt) };
      }),
    );
    for (const { result, invokedAt } of results) {
      expect(Object.keys(result).sort()).toEqual(["Message", "Time", "TriggerName", "Type"]);
      expect(result).toMatchObject({ Type: "Timer", TriggerName: "every-2s", Message: CUSTOM_ARGUMENT });
      expect(result.Time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
      const tick = Date.parse(result.Time);
      expect((tick / 1000) % 2).toBe(0);
      // Fired at or after its tick (lateness = invokedAt - Time), and not later than a tick.
      expect(invokedAt).toBeGreaterThanOrEqual(tick);
      expect(invokedAt - tick).toBeLessThan(2_000);
    }
    const ticks = results.map(({ result }) => Date.parse(result.Time)).sort((a, b) => a - b);
    expect(new Set(ticks).size).toBe(ticks.length);
    for (let index = 1; index < ticks.length; index++) {
      expect((ticks[index] ?? 0) - (ticks[index - 1] ?? 0)).toBe(2_000);
    }

    await client.UpdateTrigger({
      FunctionName: functionName,
      Namespace: namespace,
      TriggerName: "every-2s",
      Type: "timer",
      Enable: "CLOSE",
    });
    // A tick fired just before the switch may still be indexed: count once it has settled.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const atClose = (await timerEvents()).length;
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    expect((await timerEvents()).length).toBe(atClose);
    const closed = await client.ListTriggers({ FunctionName: functionName, Namespace: namespace });
    expect(closed.Triggers?.[0]).toMatchObject({ TriggerName: "every-2s", Enable: 0 });

    await client.DeleteTrigger({
      FunctionName: functionName,
      Namespace: namespace,
      TriggerName: "every-2s",
      Type: "timer",
    });
    const after = await client.ListTriggers({ FunctionName: functionName, Namespace: namespace });
    expect(after.TotalCount).toBe(0);
    expect(after.Triggers ?? []).toEqual([]);
  }, 90_000);
});
