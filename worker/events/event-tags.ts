// Tags on an invocation: key/value pairs given when an event is invoked, kept with the event (its
// status and its index row) and filterable in the list and the bulk operations. Pure rules here and
// the one SQL condition a tag filter adds to a query of the `events` index; writing the rows of
// `event_tags` belongs to the index writer (event-index.ts).
import { and, eq, type SQL, sql } from "drizzle-orm";
import { z } from "zod";
import { events, eventTags } from "../db/schema";
import { PlatformError } from "../shared/errors";

/** Most tags one event carries. */
export const MAX_TAGS_PER_EVENT = 10;
/** Most tags one filter names (all must match). */
export const MAX_TAG_FILTERS = 5;
/** Longest tag key (characters). */
export const MAX_TAG_KEY_CHARS = 64;
/** Longest tag value (characters). */
export const MAX_TAG_VALUE_CHARS = 128;
/**
 * A key: letters, digits and `_ . : / @ + -`, starting with a letter or digit. No `=` or `,`, which
 * separate the parts of a filter (`tags=env=prod,team=video`).
 */
export const TAG_KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:/@+-]*$/;
/** A value: the key's characters, spaces and `=`; it may be empty. No `,` (the filter's separator). */
export const TAG_VALUE_PATTERN = /^[A-Za-z0-9 _.:/@+=-]*$/;
export const TAG_KEY_RULE = `1 to ${MAX_TAG_KEY_CHARS} characters: letters, digits and _ . : / @ + -, starting with a letter or digit`;
export const TAG_VALUE_RULE = `0 to ${MAX_TAG_VALUE_CHARS} characters: letters, digits, spaces and _ . : / @ + = -`;

/** An event's tags: key to value. */
export type EventTags = Record<string, string>;

const tagKeySchema = z.string().min(1).max(MAX_TAG_KEY_CHARS).regex(TAG_KEY_PATTERN, `a tag key is ${TAG_KEY_RULE}`);
const tagValueSchema = z.string().max(MAX_TAG_VALUE_CHARS).regex(TAG_VALUE_PATTERN, `a tag value is ${TAG_VALUE_RULE}`);

/** The tags of an invocation body: an object of at most MAX_TAGS_PER_EVENT string values. */
export const invocationTagsSchema = z
  .record(tagKeySchema, tagValueSchema)
  .refine((tags) => Object.keys(tags).length <= MAX_TAGS_PER_EVENT, `at most ${MAX_TAGS_PER_EVENT} tags`);

/**
 * `key=value` pairs separated by commas, at most `maxPairs`, each key once, parsed to an object of
 * tags: the text form of both a filter and an invocation's tags given as a query parameter.
 */
function tagPairsSchema(maxPairs: number, what: string) {
  return z
    .string()
    .max(maxPairs * (MAX_TAG_KEY_CHARS + MAX_TAG_VALUE_CHARS + 2))
    .transform((text, context): EventTags => {
      const tags: EventTags = {};
      const parts = text.split(",");
      if (parts.length > maxPairs) {
        context.addIssue({ code: "custom", message: `at most ${maxPairs} tags in ${what}` });
        return z.NEVER;
      }
      for (const part of parts) {
        const separator = part.indexOf("=");
        if (separator <= 0) {
          context.addIssue({ code: "custom", message: "each tag is key=value, separated by commas" });
          return z.NEVER;
        }
        const key = part.slice(0, separator);
        const value = part.slice(separator + 1);
        if (!tagKeySchema.safeParse(key).success) {
          context.addIssue({ code: "custom", message: `a tag key is ${TAG_KEY_RULE}` });
          return z.NEVER;
        }
        if (!tagValueSchema.safeParse(value).success) {
          context.addIssue({ code: "custom", message: `a tag value is ${TAG_VALUE_RULE}` });
          return z.NEVER;
        }
        if (Object.hasOwn(tags, key)) {
          context.addIssue({ code: "custom", message: `tag key ${key} named twice` });
          return z.NEVER;
        }
        tags[key] = value;
      }
      return tags;
    });
}

/**
 * A tag filter as a query parameter: `key=value` pairs separated by commas, all of which must
 * match (`tags=env=prod,team=video`). A key may appear once.
 */
export const tagFilterSchema = tagPairsSchema(MAX_TAG_FILTERS, "one filter");

/**
 * An invocation's tags as a query parameter of the REST invoke routes, in the filter's form
 * (`tags=env=prod,team=video`): at most MAX_TAGS_PER_EVENT pairs, each key once. (The invoke body
 * is the event's payload, whatever JSON it is, so the tags cannot be a field of it.)
 */
export const invocationTagsQuerySchema = tagPairsSchema(MAX_TAGS_PER_EVENT, "one invocation");

/**
 * An invocation's tags, checked (invokeAsync calls it for every caller): the tags, or undefined for
 * none (absent or {}); INVALID_PARAMETER naming the rule broken otherwise.
 */
export function checkInvocationTags(tags: unknown): EventTags | undefined {
  if (tags === undefined) return undefined;
  const refuse = (rule: string) => new PlatformError("INVALID_PARAMETER", `tags: ${rule}`);
  if (typeof tags !== "object" || tags === null || Array.isArray(tags)) {
    throw refuse("an object of key to string value");
  }
  const entries = Object.entries(tags);
  if (entries.length > MAX_TAGS_PER_EVENT) throw refuse(`at most ${MAX_TAGS_PER_EVENT} tags`);
  for (const [key, value] of entries) {
    if (!tagKeySchema.safeParse(key).success) throw refuse(`a tag key is ${TAG_KEY_RULE}`);
    if (typeof value !== "string") throw refuse(`the value of ${key} is not a string`);
    if (!tagValueSchema.safeParse(value).success) throw refuse(`a tag value is ${TAG_VALUE_RULE}`);
  }
  return entries.length > 0 ? Object.fromEntries(entries) : undefined;
}

/**
 * The conditions on the `events` index that keep only events carrying every tag of `filter`: one
 * `request_id IN (SELECT request_id FROM event_tags ...)` per tag, each an index range of
 * `event_tags` (by namespace, function when given, key and value). No condition for an empty filter.
 */
export function tagFilterConditions(namespace: string, functionName: string | undefined, filter: EventTags): SQL[] {
  return Object.entries(filter).map(([key, value]) => {
    const where = [eq(eventTags.namespace, namespace), eq(eventTags.key, key), eq(eventTags.value, value)];
    if (functionName !== undefined) where.push(eq(eventTags.functionName, functionName));
    return sql`${events.requestId} IN (SELECT ${eventTags.requestId} FROM ${eventTags} WHERE ${and(...where)})`;
  });
}

/** The tags stored in an index row's `tags` column (JSON text), {} for none or unreadable text. */
export function tagsOfColumn(text: string | null): EventTags {
  if (text === null) return {};
  try {
    const parsed = invocationTagsSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : {};
  } catch {
    return {};
  }
}
