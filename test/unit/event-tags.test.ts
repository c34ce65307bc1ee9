// Tags on an invocation (issue 15, "Tags"): the rules of an invocation's tags and of a tag filter,
// their refusals naming the rule broken, and how the tags travel with the event (its public view,
// its index entry, its dispatch message).
import { describe, expect, it } from "vitest";
import { dispatchMessageOf, dispatchMessageSchema } from "../../worker/events/dispatch-message";
import { indexEntryOf } from "../../worker/events/event-index";
import { type EventState, publicEvent } from "../../worker/events/event-machine";
import {
  checkInvocationTags,
  invocationTagsQuerySchema,
  invocationTagsSchema,
  MAX_TAG_FILTERS,
  MAX_TAG_KEY_CHARS,
  MAX_TAG_VALUE_CHARS,
  MAX_TAGS_PER_EVENT,
  tagFilterSchema,
  tagsOfColumn,
} from "../../worker/events/event-tags";
import { PlatformError } from "../../worker/shared/errors";
import { queuedEventState } from "../helpers/event-state";

/** `count` distinct tags: {k0: "v", k1: "v", ...}. */
function tagsOf(count: number): Record<string, string> {
  return Object.fromEntries(Array.from({ length: count }, (_, index) => [`k${index}`, "v"]));
}

/** The same tags as query text: `k0=v,k1=v,...`. */
function pairsOf(count: number): string {
  return Object.entries(tagsOf(count))
    .map(([key, value]) => `${key}=${value}`)
    .join(",");
}

/** The message of the INVALID_PARAMETER checkInvocationTags throws for `tags` (fails the test otherwise). */
function refusal(tags: unknown): string {
  try {
    checkInvocationTags(tags);
  } catch (error) {
    expect(error).toBeInstanceOf(PlatformError);
    expect((error as PlatformError).code).toBe("INVALID_PARAMETER");
    return (error as PlatformError).message;
  }
  throw new Error(`tags ${JSON.stringify(tags)} were accepted`);
}

function accepted(overrides: Partial<EventState> = {}): EventState {
  return queuedEventState({ requestId: "7f1d2a1e-0000-4000-8000-0000000000aa", ...overrides });
}

describe("an invocation's tags", () => {
  it("accepts up to MAX_TAGS_PER_EVENT tags with keys and values of the allowed characters, empty values too", () => {
    const tags = { env: "prod", "team.video": "a b=c", "a:b/c@d+e-f_g": "", ...tagsOf(MAX_TAGS_PER_EVENT - 3) };
    expect(Object.keys(tags)).toHaveLength(MAX_TAGS_PER_EVENT);
    expect(checkInvocationTags(tags)).toEqual(tags);
    expect(invocationTagsSchema.safeParse(tags).success).toBe(true);
  });

  it("treats no tags and an empty object alike: the event carries none", () => {
    expect(checkInvocationTags(undefined)).toBeUndefined();
    expect(checkInvocationTags({})).toBeUndefined();
  });

  it("refuses more than MAX_TAGS_PER_EVENT tags, naming the bound", () => {
    expect(refusal(tagsOf(MAX_TAGS_PER_EVENT + 1))).toContain(`at most ${MAX_TAGS_PER_EVENT} tags`);
    expect(invocationTagsSchema.safeParse(tagsOf(MAX_TAGS_PER_EVENT + 1)).success).toBe(false);
  });

  it("refuses a key breaking the key rule: too long, empty, a leading symbol, a space, a comma or an equals sign", () => {
    for (const key of ["k".repeat(MAX_TAG_KEY_CHARS + 1), "", "-lead", "a b", "a,b", "a=b", "名前"]) {
      expect(refusal({ [key]: "v" }), key).toContain("a tag key is");
      expect(invocationTagsSchema.safeParse({ [key]: "v" }).success, key).toBe(false);
    }
    expect(checkInvocationTags({ ["k".repeat(MAX_TAG_KEY_CHARS)]: "v" })).toBeDefined();
  });

  it("refuses a value breaking the value rule: too long, a comma or a character outside the set", () => {
    for (const value of ["v".repeat(MAX_TAG_VALUE_CHARS + 1), "a,b", "a;b", "line\nbreak", "名前"]) {
      expect(refusal({ k: value }), value).toContain("a tag value is");
      expect(invocationTagsSchema.safeParse({ k: value }).success, value).toBe(false);
    }
    expect(checkInvocationTags({ k: "v".repeat(MAX_TAG_VALUE_CHARS) })).toEqual({ k: "v".repeat(MAX_TAG_VALUE_CHARS) });
  });

  it("refuses tags that are not an object of string values", () => {
    for (const tags of [null, "env=prod", 3, ["env", "prod"], true]) {
      expect(refusal(tags), JSON.stringify(tags)).toContain("an object of key to string value");
    }
    expect(refusal({ env: 1 })).toContain("the value of env is not a string");
    expect(refusal({ env: null })).toContain("not a string");
    expect(refusal({ env: { nested: "x" } })).toContain("not a string");
  });

  it("reads the query form of the invoke routes, up to MAX_TAGS_PER_EVENT pairs", () => {
    expect(invocationTagsQuerySchema.parse("env=prod,team=video")).toEqual({ env: "prod", team: "video" });
    expect(invocationTagsQuerySchema.parse(pairsOf(MAX_TAGS_PER_EVENT))).toEqual(tagsOf(MAX_TAGS_PER_EVENT));
    const over = invocationTagsQuerySchema.safeParse(pairsOf(MAX_TAGS_PER_EVENT + 1));
    expect(over.success).toBe(false);
    expect(over.error?.issues[0]?.message).toContain(`at most ${MAX_TAGS_PER_EVENT} tags`);
  });
});

describe("a tag filter", () => {
  it("parses key=value pairs separated by commas, a value keeping its own equals signs", () => {
    expect(tagFilterSchema.parse("env=prod,team=video")).toEqual({ env: "prod", team: "video" });
    expect(tagFilterSchema.parse("expr=a=b")).toEqual({ expr: "a=b" });
    expect(tagFilterSchema.parse("empty=")).toEqual({ empty: "" });
  });

  it("takes at most MAX_TAG_FILTERS tags, naming the bound", () => {
    expect(tagFilterSchema.parse(pairsOf(MAX_TAG_FILTERS))).toEqual(tagsOf(MAX_TAG_FILTERS));
    const over = tagFilterSchema.safeParse(pairsOf(MAX_TAG_FILTERS + 1));
    expect(over.error?.issues[0]?.message).toContain(`at most ${MAX_TAG_FILTERS} tags`);
  });

  it("refuses a part without a key, a key named twice, and keys or values breaking their rules", () => {
    const cases: [string, string][] = [
      ["", "key=value"],
      ["env", "key=value"],
      ["=prod", "key=value"],
      ["env=prod,", "key=value"],
      ["env=prod,env=dev", "named twice"],
      ["a b=c", "a tag key is"],
      [`${"k".repeat(MAX_TAG_KEY_CHARS + 1)}=v`, "a tag key is"],
      ["k=a;b", "a tag value is"],
      [`k=${"v".repeat(MAX_TAG_VALUE_CHARS + 1)}`, "a tag value is"],
    ];
    for (const [text, message] of cases) {
      const parsed = tagFilterSchema.safeParse(text);
      expect(parsed.success, text).toBe(false);
      expect(parsed.error?.issues[0]?.message, text).toContain(message);
    }
  });

  it("refuses text longer than its most pairs could be, before splitting it", () => {
    const long = "k=".padEnd(MAX_TAG_FILTERS * (MAX_TAG_KEY_CHARS + MAX_TAG_VALUE_CHARS + 2) + 1, "v");
    expect(tagFilterSchema.safeParse(long).success).toBe(false);
  });
});

describe("tags kept with the event", () => {
  it("shows the tags in the event's public view, {} when it has none", () => {
    expect(publicEvent(accepted()).tags).toEqual({});
    expect(publicEvent(accepted({ tags: { env: "prod" } })).tags).toEqual({ env: "prod" });
  });

  it("carries the tags into the index entry and the dispatch message, and none when it has none", () => {
    const tagged = accepted({ tags: { env: "prod", team: "video" } });
    expect(indexEntryOf(tagged).tags).toEqual({ env: "prod", team: "video" });
    expect(indexEntryOf(accepted())).not.toHaveProperty("tags");
    const message = dispatchMessageOf(tagged);
    expect(dispatchMessageSchema.parse(message).tags).toEqual({ env: "prod", team: "video" });
    expect(dispatchMessageOf(accepted())).not.toHaveProperty("tags");
  });

  it("reads the index column back: JSON text to tags, {} for null or text that is not valid tags", () => {
    expect(tagsOfColumn('{"env":"prod"}')).toEqual({ env: "prod" });
    expect(tagsOfColumn(null)).toEqual({});
    expect(tagsOfColumn("not json")).toEqual({});
    expect(tagsOfColumn('{"env":1}')).toEqual({});
  });
});
