// Tags in the D1 event index (issue 15, "Tags"): the index writer's `events.tags` and `event_tags`
// rows (written once, idempotent under retries and later versions), the list's tag filter (one tag,
// several, scoped by namespace and function), the list rows' tags, the purge taking the tag rows
// along, and the REST routes' refusal of malformed tags.
import { env, SELF } from "cloudflare:test";
import { drizzle } from "drizzle-orm/d1";
import { beforeAll, describe, expect, it } from "vitest";
import { type EventIndexEntry, writeIndexEntries } from "../../worker/events/event-index";
import {
  EVENT_INDEX_RETENTION_MS,
  listEvents,
  listEventsQuerySchema,
  listedEvent,
  listStatements,
} from "../../worker/events/event-list";
import { purgeExpiredIndexRows } from "../../worker/events/event-retention";
import { functionStatistics } from "../../worker/events/event-statistics";
import { MAX_TAG_FILTERS, MAX_TAGS_PER_EVENT } from "../../worker/events/event-tags";

const AUTH = { authorization: "Bearer AKIDintegration:integration-secret-key-0123456789abcdef" };
const NAMESPACE = "tags-list";
const OTHER_NAMESPACE = "tags-list-other";
const FUNCTION = "tagged";
const OTHER_FUNCTION = "tagged-too";
const NOW = Date.now();

function entry(index: number, overrides: Partial<EventIndexEntry> = {}): EventIndexEntry {
  return {
    requestId: `00000000-7a65-4000-8000-${index.toString().padStart(12, "0")}`,
    namespace: NAMESPACE,
    functionName: FUNCTION,
    qualifier: "$LATEST",
    invokeType: "OTHERS",
    status: "RUNNING",
    statusCode: null,
    phase: "queued",
    startTime: NOW - index * 1000,
    endTime: null,
    durationMs: null,
    version: 1,
    ...overrides,
  };
}

/** The RequestIds a list query (its text form, as the route reads it) finds, oldest first. */
async function listed(query: Record<string, string>, namespace = NAMESPACE, fn = FUNCTION): Promise<string[]> {
  const page = await listEvents(env.DB, namespace, fn, listEventsQuerySchema.parse({ limit: "100", ...query }));
  return page.events.map((row) => row.requestId).sort();
}

async function tagRowsOf(requestId: string): Promise<{ key: string; value: string }[]> {
  const { results } = await env.DB.prepare("SELECT key, value FROM event_tags WHERE request_id = ? ORDER BY key")
    .bind(requestId)
    .all<{ key: string; value: string }>();
  return results;
}

const prodVideo = entry(1, { tags: { env: "prod", team: "video" } });
const prodAudio = entry(2, { tags: { env: "prod", team: "audio" } });
const devVideo = entry(3, { tags: { env: "dev", team: "video" } });
const untagged = entry(4);
const otherFunction = entry(5, { functionName: OTHER_FUNCTION, tags: { env: "prod", team: "video" } });
const otherNamespace = entry(6, { namespace: OTHER_NAMESPACE, tags: { env: "prod", team: "video" } });

beforeAll(async () => {
  await writeIndexEntries(env.DB, [prodVideo, prodAudio, devVideo, untagged, otherFunction, otherNamespace]);
});

describe("the index writer's tags", () => {
  it("writes the tags as the row's JSON column and one event_tags row per tag", async () => {
    const row = await env.DB.prepare("SELECT tags FROM events WHERE request_id = ?")
      .bind(prodVideo.requestId)
      .first<{ tags: string | null }>();
    expect(JSON.parse(row?.tags ?? "null")).toEqual({ env: "prod", team: "video" });
    expect(await tagRowsOf(prodVideo.requestId)).toEqual([
      { key: "env", value: "prod" },
      { key: "team", value: "video" },
    ]);
  });

  it("writes no tags for an event without any", async () => {
    const row = await env.DB.prepare("SELECT tags FROM events WHERE request_id = ?")
      .bind(untagged.requestId)
      .first<{ tags: string | null }>();
    expect(row?.tags).toBeNull();
    expect(await tagRowsOf(untagged.requestId)).toEqual([]);
  });

  it("keeps the tag rows unchanged through retried writes and later versions of the row", async () => {
    const event = entry(10, { tags: { env: "ci", build: "42" } });
    await writeIndexEntries(env.DB, [event]);
    await writeIndexEntries(env.DB, [event]);
    const ended = { ...event, status: "FINISHED", statusCode: 200, phase: "finished", endTime: NOW, version: 3 };
    await writeIndexEntries(env.DB, [ended]);
    // A late write of an older version (without tags, as a pre-tags dispatch message had it) changes nothing.
    const { tags: _, ...late } = event;
    await writeIndexEntries(env.DB, [late]);
    expect(await tagRowsOf(event.requestId)).toEqual([
      { key: "build", value: "42" },
      { key: "env", value: "ci" },
    ]);
    const row = await env.DB.prepare("SELECT tags, status, version FROM events WHERE request_id = ?")
      .bind(event.requestId)
      .first<{ tags: string; status: string; version: number }>();
    expect(row).toMatchObject({ status: "FINISHED", version: 3 });
    expect(JSON.parse(row?.tags ?? "null")).toEqual({ env: "ci", build: "42" });
  });

  it("fills in the tags of a row first written without them (a dispatch message of before tags)", async () => {
    const event = entry(11, { tags: { env: "stage" } });
    const { tags: _, ...first } = event;
    await writeIndexEntries(env.DB, [first]);
    await writeIndexEntries(env.DB, [{ ...event, version: 2, phase: "running" }]);
    expect(await tagRowsOf(event.requestId)).toEqual([{ key: "env", value: "stage" }]);
    expect(await listed({ tags: "env=stage" })).toEqual([event.requestId]);
  });
});

describe("the list's tag filter", () => {
  it("keeps the events carrying one tag", async () => {
    expect(await listed({ tags: "env=prod" })).toEqual([prodVideo.requestId, prodAudio.requestId].sort());
    expect(await listed({ tags: "team=video" })).toEqual([prodVideo.requestId, devVideo.requestId].sort());
  });

  it("keeps only the events carrying every tag of a filter of two", async () => {
    expect(await listed({ tags: "env=prod,team=video" })).toEqual([prodVideo.requestId]);
    expect(await listed({ tags: "team=video,env=dev" })).toEqual([devVideo.requestId]);
  });

  it("finds nothing for a value no event has, and counts the matches in total", async () => {
    expect(await listed({ tags: "env=qa" })).toEqual([]);
    const page = await listEvents(env.DB, NAMESPACE, FUNCTION, listEventsQuerySchema.parse({ tags: "env=prod" }));
    expect(page.total).toBe(2);
  });

  it("stays within the namespace and function listed, whatever tags other events carry", async () => {
    expect(await listed({ tags: "env=prod,team=video" }, OTHER_NAMESPACE, FUNCTION)).toEqual([
      otherNamespace.requestId,
    ]);
    expect(await listed({ tags: "env=prod,team=video" }, NAMESPACE, OTHER_FUNCTION)).toEqual([otherFunction.requestId]);
    expect(await listed({ tags: "env=prod,team=video" }, "tags-list-nobody", FUNCTION)).toEqual([]);
  });

  it("combines with the other filters", async () => {
    expect(await listed({ tags: "team=video", requestId: devVideo.requestId })).toEqual([devVideo.requestId]);
    expect(await listed({ tags: "team=video", statuses: "FINISHED" })).toEqual([]);
  });

  it("shows each listed row's tags, {} for an event without any", async () => {
    const page = await listEvents(env.DB, NAMESPACE, FUNCTION, listEventsQuerySchema.parse({ limit: "100" }));
    const byId = new Map(page.events.map((row) => [row.requestId, listedEvent(row).tags]));
    expect(byId.get(prodAudio.requestId)).toEqual({ env: "prod", team: "audio" });
    expect(byId.get(untagged.requestId)).toEqual({});
  });
});

describe("paging a tag filter", () => {
  const PAGED = "tags-list-paged";
  /** 40 events: every other one tagged env=paged (half of those also team=one), a third running. */
  const paged = Array.from({ length: 40 }, (_, index) => {
    const running = index % 3 === 0;
    // Start times with ties (two events share each), end times in another order than start times.
    const startTime = NOW - Math.floor(index / 2) * 1000;
    return entry(100 + index, {
      namespace: PAGED,
      status: running ? "RUNNING" : "FINISHED",
      statusCode: running ? null : 200,
      phase: running ? "running" : "finished",
      startTime,
      endTime: running ? null : startTime + ((index * 7) % 11) * 1000,
      durationMs: running ? null : ((index * 7) % 11) * 1000,
      tags: index % 2 === 0 ? { env: "paged", ...(index % 4 === 0 ? { team: "one" } : {}) } : { env: "other" },
    });
  });

  beforeAll(async () => {
    await writeIndexEntries(env.DB, paged);
  });

  /** The expected order: by the key (NULL first ascending, last descending), then the RequestId. */
  function expectedOrder(rows: EventIndexEntry[], orderBy: "startTime" | "endTime", order: "ASC" | "DESC") {
    const sign = order === "ASC" ? 1 : -1;
    const keyOf = (row: EventIndexEntry) => (orderBy === "startTime" ? row.startTime : row.endTime);
    return [...rows]
      .sort((a, b) => {
        const [ka, kb] = [keyOf(a), keyOf(b)];
        if (ka !== kb) {
          if (ka === null) return -sign;
          if (kb === null) return sign;
          return sign * (ka - kb);
        }
        return sign * (a.requestId < b.requestId ? -1 : 1);
      })
      .map((row) => row.requestId);
  }

  for (const orderBy of ["startTime", "endTime"] as const) {
    for (const order of ["ASC", "DESC"] as const) {
      it(`walks every tagged event once, in order, by cursor (orderBy=${orderBy}, order=${order})`, async () => {
        for (const [tags, keep] of [
          ["env=paged", (row: EventIndexEntry) => row.tags?.env === "paged"],
          ["env=paged,team=one", (row: EventIndexEntry) => row.tags?.team === "one"],
        ] as const) {
          const expected = expectedOrder(paged.filter(keep), orderBy, order);
          const seen: string[] = [];
          let cursor: string | undefined;
          for (let page = 0; page < 20; page++) {
            const query = { tags, orderBy, order, limit: "3", ...(cursor !== undefined ? { cursor } : {}) };
            const listed = await listEvents(env.DB, PAGED, FUNCTION, listEventsQuerySchema.parse(query));
            expect(listed.total).toBe(expected.length);
            seen.push(...listed.events.map((row) => row.requestId));
            if (listed.nextCursor === null) break;
            cursor = listed.nextCursor;
          }
          expect(seen).toEqual(expected);
        }
      });
    }
  }

  it("pages by offset and combines with the time and status filters", async () => {
    const from = NOW - 12_000;
    const query = listEventsQuerySchema.parse({
      tags: "env=paged",
      statuses: "FINISHED",
      startTimeFrom: String(from),
      order: "ASC",
      offset: "2",
      limit: "4",
    });
    const matching = paged.filter(
      (row) => row.tags?.env === "paged" && row.status === "FINISHED" && row.startTime >= from,
    );
    const listed = await listEvents(env.DB, PAGED, FUNCTION, query);
    expect(listed.total).toBe(matching.length);
    expect(listed.events.map((row) => row.requestId)).toEqual(expectedOrder(matching, "startTime", "ASC").slice(2, 6));
  });

  it("walks the tag's index in order for a start-time page: no sort, no walk of the function's events", async () => {
    const planOf = async (text: Record<string, string>) => {
      const query = listEventsQuerySchema.parse({ limit: "100", ...text });
      const { pageOf, total } = listStatements(drizzle(env.DB), PAGED, FUNCTION, query);
      const plans: string[] = [];
      for (const statement of [pageOf(undefined), total]) {
        const { sql, params } = statement.toSQL();
        const plan = await env.DB.prepare(`EXPLAIN QUERY PLAN ${sql}`)
          .bind(...params)
          .all<{ detail: string }>();
        plans.push(plan.results.map((row) => row.detail).join("; "));
      }
      return plans;
    };
    const queries: Record<string, string>[] = [
      { tags: "env=paged" },
      { tags: "env=paged", order: "ASC" },
      { tags: "env=paged,team=one", statuses: "FINISHED,FAILED" },
      { tags: "env=paged", startTimeFrom: String(NOW - 10_000), startTimeTo: String(NOW) },
    ];
    for (const text of queries) {
      const [page, count] = await planOf(text);
      // The tag's rows first (the outer loop), each event found by its RequestId.
      expect(page, JSON.stringify(text)).toMatch(/^SEARCH event_tags USING COVERING INDEX event_tags_by_function_tag/);
      expect(page, JSON.stringify(text)).toContain("sqlite_autoindex_events_1 (request_id=?)");
      expect(page, JSON.stringify(text)).not.toContain("TEMP B-TREE");
      expect(count, JSON.stringify(text)).toMatch(/^SEARCH event_tags USING COVERING INDEX event_tags_by_function_tag/);
    }
  });
});

describe("the statistics' tag filter", () => {
  it("counts only the events carrying every tag of the filter, within the namespace and function", async () => {
    const count = async (tags: Record<string, string>) =>
      (await functionStatistics(env.DB, NAMESPACE, FUNCTION, 72, Date.now(), tags)).totals.RUNNING;
    expect(await count({ env: "prod" })).toBe(2);
    expect(await count({ env: "prod", team: "video" })).toBe(1);
    expect(await count({ env: "qa" })).toBe(0);
    expect(await count({})).toBeGreaterThanOrEqual(4);
  });

  it("refuses a malformed statistics filter with 400 INVALID_PARAMETER", async () => {
    const response = await SELF.fetch(
      `https://platform.test/v1/namespaces/${NAMESPACE}/functions/${FUNCTION}/statistics?tags=${encodeURIComponent("env=a,env=b")}`,
      { headers: AUTH },
    );
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error).toMatchObject({ code: "INVALID_PARAMETER" });
    expect(body.error.message).toContain("named twice");
  });
});

describe("the purge", () => {
  it("deletes the tag rows of the index rows it deletes and keeps the others'", async () => {
    const old = entry(20, { startTime: NOW - EVENT_INDEX_RETENTION_MS - 60_000, tags: { env: "old" } });
    const recent = entry(21, { tags: { env: "recent" } });
    await writeIndexEntries(env.DB, [old, recent]);
    expect(await tagRowsOf(old.requestId)).toHaveLength(1);
    await purgeExpiredIndexRows(env.DB, NOW);
    expect(await tagRowsOf(old.requestId)).toEqual([]);
    expect(await tagRowsOf(recent.requestId)).toEqual([{ key: "env", value: "recent" }]);
    const gone = await env.DB.prepare("SELECT COUNT(*) AS n FROM events WHERE request_id = ?")
      .bind(old.requestId)
      .first<{ n: number }>();
    expect(gone?.n).toBe(0);
  });
});

describe("the REST routes' tags", () => {
  it("lists by tags through the route, rows carrying their tags", async () => {
    const response = await SELF.fetch(
      `https://platform.test/v1/namespaces/${NAMESPACE}/functions/${FUNCTION}/events?tags=${encodeURIComponent("env=prod,team=video")}`,
      { headers: AUTH },
    );
    expect(response.status).toBe(200);
    const body = (await response.json()) as { total: number; events: { requestId: string; tags: unknown }[] };
    expect(body.total).toBe(1);
    expect(body.events[0]).toMatchObject({ requestId: prodVideo.requestId, tags: { env: "prod", team: "video" } });
    // As curl sends it: `=` and `,` unencoded read the same.
    const plain = await SELF.fetch(
      `https://platform.test/v1/namespaces/${NAMESPACE}/functions/${FUNCTION}/events?tags=env=prod,team=video`,
      { headers: AUTH },
    );
    expect(((await plain.json()) as { events: { requestId: string }[] }).events.map((e) => e.requestId)).toEqual([
      prodVideo.requestId,
    ]);
  });

  it("refuses a malformed or oversized list filter with 400 INVALID_PARAMETER naming the rule", async () => {
    const over = Array.from({ length: MAX_TAG_FILTERS + 1 }, (_, index) => `k${index}=v`).join(",");
    for (const [text, rule] of [
      ["env", "key=value"],
      ["env=prod,env=dev", "named twice"],
      [over, `at most ${MAX_TAG_FILTERS} tags`],
    ] as const) {
      const response = await SELF.fetch(
        `https://platform.test/v1/namespaces/${NAMESPACE}/functions/${FUNCTION}/events?tags=${encodeURIComponent(text)}`,
        { headers: AUTH },
      );
      expect(response.status, text).toBe(400);
      const body = (await response.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe("INVALID_PARAMETER");
      expect(body.error.message).toContain(rule);
    }
  });

  it("refuses an invocation with malformed or too many tags with 400 INVALID_PARAMETER naming the rule", async () => {
    const over = Array.from({ length: MAX_TAGS_PER_EVENT + 1 }, (_, index) => `k${index}=v`).join(",");
    for (const [text, rule] of [
      ["a b=c", "a tag key is"],
      ["k=a;b", "a tag value is"],
      [over, `at most ${MAX_TAGS_PER_EVENT} tags`],
    ] as const) {
      for (const suffix of ["invocations", "invocations/sync"]) {
        const response = await SELF.fetch(
          `https://platform.test/v1/namespaces/${NAMESPACE}/functions/${FUNCTION}/${suffix}?tags=${encodeURIComponent(text)}`,
          { method: "POST", headers: AUTH, body: "{}" },
        );
        expect(response.status, `${suffix} ${text}`).toBe(400);
        const body = (await response.json()) as { error: { code: string; message: string } };
        expect(body.error.code).toBe("INVALID_PARAMETER");
        expect(body.error.message).toContain(rule);
      }
    }
  });
});
