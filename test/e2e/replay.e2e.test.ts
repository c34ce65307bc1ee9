// Payload and replay on the running platform with real containers (issue 14): an ended event's
// payload is readable as it was sent, and its replay runs as a new event, linked both ways, that
// FINISHES with the same result.
import { beforeAll, describe, expect, inject, it } from "vitest";
import { ApiClient, type EventView } from "../helpers/api-client";

const api = new ApiClient(inject("baseUrl"));
const NAMESPACE = "default";

/** A handler whose result depends on its event only (not on the RequestId or the container). */
const DETERMINISTIC_HANDLER = `
exports.main_handler = async (event) => {
  console.log("replayable " + JSON.stringify(event));
  return { echo: event, total: (event.items ?? []).reduce((sum, item) => sum + item, 0) };
};
`;

/** A payload sent as this exact text: spacing, key order and number forms JSON.stringify would change. */
const PAYLOAD_TEXT = '{ "items" : [1, 2.50, 3e1],\n  "file": "a.mp4", "note": "caf\\u00e9" }';

/** The event view with the replay fields (GET /v1/events/{id}). */
type ReplayView = EventView & {
  replayOf: string | null;
  replays: string[];
  replayCount: number;
  replaysTruncated: boolean;
};

describe("payload and replay", () => {
  let name: string;
  beforeAll(async () => {
    name = await api.createUniqueFunction(NAMESPACE, "replay", {
      runtime: "Nodejs22",
      handler: "index.main_handler",
      files: { "index.js": DETERMINISTIC_HANDLER },
      timeout: 30,
    });
  });

  it("replays an ended event: the new event runs, FINISHES with the same result, and both are linked", async () => {
    const invoked = await api.request(`/v1/namespaces/${NAMESPACE}/functions/${name}/invocations`, {
      method: "POST",
      body: PAYLOAD_TEXT,
    });
    expect(invoked.status).toBe(202);
    const { requestId: original } = (await invoked.json()) as { requestId: string };
    const first = await api.waitForEvent(original);
    expect(first.status).toBe("FINISHED");
    expect(first.result).toEqual({ echo: JSON.parse(PAYLOAD_TEXT), total: 33.5 });

    // The payload of the ended event, exactly as it was sent.
    const payload = await api.request(`/v1/events/${original}/payload`);
    expect(payload.status).toBe(200);
    expect(payload.headers.get("content-type")).toContain("application/json");
    expect(await payload.text()).toBe(PAYLOAD_TEXT);

    const replayed = await api.json<{ requestId: string; replayOf: string }>(`/v1/events/${original}/replay`, {
      method: "POST",
      body: "{}",
    });
    expect(replayed.status).toBe(202);
    expect(replayed.body.replayOf).toBe(original);
    const replayId = replayed.body.requestId;
    expect(replayId).not.toBe(original);

    const second = (await api.waitForEvent(replayId)) as ReplayView;
    expect(second.status).toBe("FINISHED");
    expect(second.statusCode).toBe(200);
    expect(second.functionName).toBe(name);
    expect(second.qualifier).toBe(first.qualifier);
    expect(second.result).toEqual(first.result);
    expect(second.replayOf).toBe(original);
    expect(second.startedAt).not.toBeNull();
    const lines = (await api.logs(replayId)).map((record) => record.line);
    expect(lines).toContain(`replayable ${JSON.stringify(JSON.parse(PAYLOAD_TEXT))}`);

    const replayPayload = await api.request(`/v1/events/${replayId}/payload`);
    expect(await replayPayload.text()).toBe(PAYLOAD_TEXT);

    const originalView = (await api.event(original)) as ReplayView;
    expect(originalView).toMatchObject({
      status: "FINISHED",
      replayOf: null,
      replays: [replayId],
      replayCount: 1,
      replaysTruncated: false,
    });
  });

  it("answers an unknown event's payload and replay EVENT_NOT_FOUND", async () => {
    const unknown = crypto.randomUUID();
    const payload = await api.json<{ error: { code: string } }>(`/v1/events/${unknown}/payload`);
    expect(payload.status).toBe(404);
    expect(payload.body.error.code).toBe("EVENT_NOT_FOUND");
    const replay = await api.json<{ error: { code: string } }>(`/v1/events/${unknown}/replay`, {
      method: "POST",
      body: "{}",
    });
    expect(replay.status).toBe(404);
    expect(replay.body.error.code).toBe("EVENT_NOT_FOUND");
  });
});
