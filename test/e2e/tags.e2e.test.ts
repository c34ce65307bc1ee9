// Tags on invocation on the running platform with real containers (issue 15, "Tags"): events invoked
// with tags show them in their status and list rows, the list filters by one tag and by two, a
// replay keeps its original's tags, a duplicate Idempotency-Key answers the first event whatever
// its tags, a caller of another namespace sees nothing, and malformed or oversized tags are refused
// with 400 before any event exists.
import { beforeAll, describe, expect, inject, it } from "vitest";
import { MAX_TAGS_PER_EVENT } from "../../worker/events/event-tags";
import { ApiClient, type EventView } from "../helpers/api-client";
import { NODE_HANDLER } from "./fixtures";

const baseUrl = inject("baseUrl");
const api = new ApiClient(baseUrl);
const NAMESPACE = "default";

interface ListPage {
  total: number;
  events: { requestId: string; tags: Record<string, string> }[];
}

type Tagged = EventView & { tags: Record<string, string> };

describe("tags on invocation", () => {
  let name: string;
  let videoId: string;
  let audioId: string;
  let plainId: string;
  let keyedId: string;
  let replayId: string;

  const list = (query: string) =>
    api.json<ListPage>(`/v1/namespaces/${NAMESPACE}/functions/${name}/events?limit=100&${query}`);
  const ids = (page: ListPage) => page.events.map((event) => event.requestId).sort();
  const invoke = (tags: string | undefined, init: RequestInit = {}) =>
    api.json<{ requestId: string; idempotentReplay?: boolean }>(
      `/v1/namespaces/${NAMESPACE}/functions/${name}/invocations${tags !== undefined ? `?tags=${encodeURIComponent(tags)}` : ""}`,
      { method: "POST", body: "{}", ...init },
    );

  beforeAll(async () => {
    name = await api.createUniqueFunction(NAMESPACE, "tags", {
      runtime: "Nodejs22",
      handler: "index.main_handler",
      files: { "index.js": NODE_HANDLER },
      timeout: 30,
    });
    const key = { headers: { "idempotency-key": `tags-${name}` } };
    const [video, audio, plain, keyed] = await Promise.all([
      invoke("env=prod,team=video"),
      invoke("env=prod,team=audio"),
      invoke(undefined),
      invoke("run=first", key),
    ]);
    for (const answer of [video, audio, plain, keyed]) expect(answer.status, JSON.stringify(answer.body)).toBe(202);
    videoId = video.body.requestId;
    audioId = audio.body.requestId;
    plainId = plain.body.requestId;
    keyedId = keyed.body.requestId;
    // The same key with other tags: the key's event, not a new one.
    const again = await invoke("run=second", key);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ requestId: keyedId, idempotentReplay: true });
    await Promise.all([videoId, audioId, plainId, keyedId].map((id) => api.waitForEvent(id)));
    const replayed = await api.json<{ requestId: string }>(`/v1/events/${videoId}/replay`, { method: "POST" });
    expect(replayed.status).toBe(202);
    replayId = replayed.body.requestId;
    await api.waitForEvent(replayId);
    // The index follows each event's object: wait until it lists all five.
    const deadline = Date.now() + 20_000;
    while ((await list("")).body.total < 5 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }, 120_000);

  it("shows each event's tags in its status, {} for one invoked without", async () => {
    expect(((await api.event(videoId)) as Tagged).tags).toEqual({ env: "prod", team: "video" });
    expect(((await api.event(audioId)) as Tagged).tags).toEqual({ env: "prod", team: "audio" });
    expect(((await api.event(plainId)) as Tagged).tags).toEqual({});
  });

  it("keeps the first event's tags for a duplicate Idempotency-Key, and the original's for a replay", async () => {
    expect(((await api.event(keyedId)) as Tagged).tags).toEqual({ run: "first" });
    const replay = (await api.event(replayId)) as Tagged & { replayOf: string };
    expect(replay.replayOf).toBe(videoId);
    expect(replay.tags).toEqual({ env: "prod", team: "video" });
  });

  it("shows each listed row's tags", async () => {
    const { status, body } = await list("");
    expect(status).toBe(200);
    expect(body.total).toBe(5);
    const byId = new Map(body.events.map((event) => [event.requestId, event.tags]));
    expect(byId.get(audioId)).toEqual({ env: "prod", team: "audio" });
    expect(byId.get(plainId)).toEqual({});
    expect(byId.get(keyedId)).toEqual({ run: "first" });
  });

  it("filters the list by one tag and by two", async () => {
    expect(ids((await list("tags=env%3Dprod")).body)).toEqual([videoId, audioId, replayId].sort());
    expect(ids((await list(`tags=${encodeURIComponent("env=prod,team=video")}`)).body)).toEqual(
      [videoId, replayId].sort(),
    );
    expect(ids((await list(`tags=${encodeURIComponent("team=audio,env=prod")}`)).body)).toEqual([audioId]);
    expect((await list("tags=run%3Dsecond")).body.total).toBe(0);
  });

  it("shows a caller of another namespace neither the events nor the list", async () => {
    const other = `tagsother${Math.random().toString(36).slice(2, 8)}`;
    const created = await api.json<{ secretId: string; secretKey: string }>("/v1/admin/credentials", {
      method: "POST",
      body: JSON.stringify({ namespaces: [other], description: "tags e2e" }),
    });
    expect(created.status).toBe(201);
    const stranger = new ApiClient(baseUrl, created.body);
    const event = await stranger.json<{ error: { code: string } }>(`/v1/events/${videoId}`);
    expect(event.status).toBe(404);
    const listed = await stranger.json<{ error: { code: string } }>(
      `/v1/namespaces/${NAMESPACE}/functions/${name}/events?tags=env%3Dprod`,
    );
    expect(listed.status).toBe(404);
    // Its own namespace has no such function, tags or not.
    const own = await stranger.json<{ error: { code: string } }>(
      `/v1/namespaces/${other}/functions/${name}/events?tags=env%3Dprod`,
    );
    expect([200, 404]).toContain(own.status);
    if (own.status === 200) expect((own.body as unknown as ListPage).total).toBe(0);
  });

  it("refuses malformed and oversized tags with 400 naming the rule, creating no event", async () => {
    const before = (await list("")).body.total;
    const over = Array.from({ length: MAX_TAGS_PER_EVENT + 1 }, (_, index) => `k${index}=v`).join(",");
    const cases: [string, string][] = [
      ["env", "key=value"],
      ["env=prod,env=dev", "named twice"],
      ["bad key=x", "a tag key is"],
      [`k=${"v".repeat(129)}`, "a tag value is"],
      [over, `at most ${MAX_TAGS_PER_EVENT} tags`],
    ];
    for (const [tags, rule] of cases) {
      const answer = await invoke(tags);
      expect(answer.status, tags).toBe(400);
      const error = (answer.body as unknown as { error: { code: string; message: string } }).error;
      expect(error.code).toBe("INVALID_PARAMETER");
      expect(error.message).toContain(rule);
    }
    // An accepted event reaches the index within a second or so (the waits above show it): give it time.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect((await list("")).body.total).toBe(before);
  });
});
