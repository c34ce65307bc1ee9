// Generic generators for the fuzz pass (test/integration/fuzz.test.ts): objects with one or two
// malformed fields, malformed JSON bodies, query strings and path segments. Every generated value
// carries the list of what is wrong with it, so that a case is only sent when it is malformed.
import fc from "fast-check";

/** Longest excerpt of a generated value quoted in a malformation label. */
const LABEL_VALUE_CHARS = 40;

/** At most this many fields of one object are made wrong in one case. */
const MAX_FIELD_MUTATIONS = 2;

/**
 * A value that JSON.stringify cannot express (`1e999` parses to Infinity). It is written into the
 * JSON text as this marker string and replaced by the raw text after stringifying.
 */
export function rawJson(text: string): string {
  return `@@RAW@@${text}@@`;
}

/** JSON.stringify, with rawJson markers replaced by their raw text. */
export function toJsonText(value: unknown): string {
  return JSON.stringify(value).replace(/"@@RAW@@([^@"]*)@@"/g, "$1");
}

/** A short, printable excerpt of a value, for labels. */
export function excerpt(value: unknown): string {
  const text = typeof value === "string" ? JSON.stringify(value) : toJsonText(value);
  return text === undefined
    ? String(value)
    : text.length > LABEL_VALUE_CHARS
      ? `${text.slice(0, LABEL_VALUE_CHARS)}…(${text.length})`
      : text;
}

/** A value with the list of what is wrong with it (empty: it is well formed). */
export interface Judged<T> {
  value: T;
  bad: string[];
}

/** How one field of an object may be generated. */
export interface FieldSpec {
  /** Well-formed values; undefined when the field has none worth sending (it is then left out). */
  valid?: fc.Arbitrary<unknown>;
  /** Values of the right JSON type that the route must refuse. */
  invalid: readonly unknown[];
  /** Values of a wrong JSON type (picked as often as `invalid` ones, so that both are exercised). */
  wrongType?: readonly unknown[];
  /** Whether leaving the field out is itself malformed. */
  required?: boolean;
}

/** Values of no JSON type but string. */
export const NOT_STRING: readonly unknown[] = [null, true, 0, -1, 1.5, [], {}, ["x"], { a: "b" }];
/** Values of no JSON type but number. */
export const NOT_NUMBER: readonly unknown[] = [null, true, "1", "", [], {}, [1], { n: 1 }];
/** Values of no JSON type but boolean. */
export const NOT_BOOLEAN: readonly unknown[] = [null, 0, 1, "true", "TRUE", "", [], {}];
/** Values of no JSON type but object. */
export const NOT_OBJECT: readonly unknown[] = [null, true, 0, "x", "", [], [{}]];
/** Numbers no integer field accepts: non-integers, infinities and integers past 2^53. */
export const NOT_SAFE_INTEGER: readonly unknown[] = [
  1.5,
  -0.25,
  rawJson("1e999"),
  rawJson("-1e999"),
  rawJson("9007199254740993"),
];
/** Keys no strict schema knows; prototype names included. */
export const UNKNOWN_KEYS: readonly string[] = ["nmae", "Name", "extra", "", "__proto__", "constructor", "prototype"];

/** A string of `length` characters (a field past its length limit). */
export function longString(length: number, char = "x"): string {
  return char.repeat(length);
}

type Mutation =
  | { kind: "wrong"; field: string; pick: number }
  | { kind: "drop"; field: string }
  | { kind: "unknown"; key: string };

/**
 * An object whose fields are well formed except for up to MAX_FIELD_MUTATIONS mutations: a field
 * given a wrong value, a field left out (malformed when required), or (strict schemas) an unknown
 * key. It may come out well formed: the case is then sent only if something else is malformed.
 */
export function objectWithMutations(
  specs: Record<string, FieldSpec>,
  options: { strict: boolean },
): fc.Arbitrary<Judged<Record<string, unknown>>> {
  const names = Object.keys(specs);
  if (names.length === 0) return fc.constant({ value: {}, bad: [] });
  const base = fc.record(
    Object.fromEntries(
      names.map((name) => {
        const spec = specs[name] as FieldSpec;
        if (!spec.valid) return [name, fc.constant({ present: false as const })];
        const present = spec.valid.map((value) => ({ present: true as const, value }));
        return [name, spec.required ? present : fc.oneof(present, fc.constant({ present: false as const }))];
      }),
    ) as Record<string, fc.Arbitrary<{ present: boolean; value?: unknown }>>,
  );
  const mutation: fc.Arbitrary<Mutation> = fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({ kind: fc.constant("wrong" as const), field: fc.constantFrom(...names), pick: fc.nat() }),
    },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("drop" as const), field: fc.constantFrom(...names) }) },
    ...(options.strict
      ? [
          {
            weight: 2,
            arbitrary: fc.record({ kind: fc.constant("unknown" as const), key: fc.constantFrom(...UNKNOWN_KEYS) }),
          },
        ]
      : []),
  );
  return fc
    .record({ base, mutations: fc.array(mutation, { minLength: 0, maxLength: MAX_FIELD_MUTATIONS }) })
    .map(({ base: fields, mutations }) => {
      const value: Record<string, unknown> = {};
      for (const name of names) {
        const generated = fields[name];
        if (generated?.present) value[name] = generated.value;
      }
      const bad: string[] = [];
      for (const mutation of mutations) {
        if (mutation.kind === "unknown") {
          // defineProperty: a "__proto__" key must become an own property, as JSON.parse makes it.
          Object.defineProperty(value, mutation.key, {
            value: 1,
            enumerable: true,
            configurable: true,
            writable: true,
          });
          bad.push(`unknown field ${JSON.stringify(mutation.key)}`);
        } else if (mutation.kind === "drop") {
          delete value[mutation.field];
          if (specs[mutation.field]?.required) bad.push(`${mutation.field} missing`);
        } else {
          const spec = specs[mutation.field];
          const categories = [spec?.invalid ?? [], spec?.wrongType ?? []].filter((list) => list.length > 0);
          const category = categories[mutation.pick % Math.max(categories.length, 1)];
          if (!category) continue;
          const wrong = category[Math.floor(mutation.pick / 2) % category.length];
          value[mutation.field] = wrong;
          bad.push(`${mutation.field}=${excerpt(wrong)}`);
        }
      }
      // A field dropped after being made wrong is no longer wrong: keep only what is still true.
      return { value, bad: bad.filter((label) => stillHolds(label, value)) };
    });
}

function stillHolds(label: string, value: Record<string, unknown>): boolean {
  const assigned = /^([A-Za-z]+)=/.exec(label);
  if (assigned?.[1]) return Object.hasOwn(value, assigned[1]);
  const missing = /^([A-Za-z]+) missing$/.exec(label);
  if (missing?.[1]) return !Object.hasOwn(value, missing[1]);
  return true;
}

/** Texts that are not JSON at all. */
export const INVALID_JSON_TEXTS: readonly string[] = [
  "{",
  "{'a': 1}",
  '{"a": 1,}',
  '{"a":1}}',
  "nul",
  "[1,",
  "undefined",
  "NaN",
  '{"a": "\\x"}',
  "\u00ff\u00fe{}",
  "<xml/>",
  '{"a": 01}',
];

/** JSON texts that are valid JSON but not an object. */
export const NON_OBJECT_JSON_TEXTS: readonly string[] = ["[]", "[{}]", '"text"', "42", "null", "true"];

/**
 * What a request body is. An oversized body is `prefix` (JSON) padded with spaces to `bytes`:
 * still valid JSON, so only the size bound can refuse it. It is built only when sent.
 */
export type BodySpec =
  | { kind: "none" }
  | { kind: "text"; text: string }
  | { kind: "oversized"; prefix: string; bytes: number; streamed: boolean };

/**
 * A JSON body for a route expecting an object: the generated object, or (malformed) invalid JSON,
 * JSON that is not an object, an empty body, or (with a limit) the object padded one byte over it.
 */
export function jsonBody(
  object: fc.Arbitrary<Judged<Record<string, unknown>>>,
  options: { limitBytes?: number; emptyIsValid?: boolean } = {},
): fc.Arbitrary<Judged<BodySpec>> {
  const variants: fc.WeightedArbitrary<Judged<BodySpec>>[] = [
    {
      weight: 16,
      arbitrary: object.map(({ value, bad }) => ({ value: { kind: "text" as const, text: toJsonText(value) }, bad })),
    },
    {
      weight: 2,
      arbitrary: fc
        .constantFrom(...INVALID_JSON_TEXTS)
        .map((text) => ({ value: { kind: "text" as const, text }, bad: [`invalid JSON ${excerpt(text)}`] })),
    },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(...NON_OBJECT_JSON_TEXTS)
        .map((text) => ({ value: { kind: "text" as const, text }, bad: [`JSON not an object: ${text}`] })),
    },
    {
      weight: 1,
      arbitrary: fc.constant({
        value: { kind: "none" as const },
        bad: options.emptyIsValid ? [] : ["empty body"],
      }),
    },
  ];
  if (options.limitBytes !== undefined) {
    const bytes = options.limitBytes + 1;
    variants.push({
      weight: 1,
      arbitrary: fc.record({ object, streamed: fc.boolean() }).map(({ object: generated, streamed }) => ({
        value: { kind: "oversized" as const, prefix: toJsonText(generated.value), bytes, streamed },
        bad: [...generated.bad, `body padded to ${bytes} bytes${streamed ? " (streamed, no content-length)" : ""}`],
      })),
    });
  }
  return fc.oneof(...variants);
}

/** One query parameter: a valid value, an invalid one, or left out. */
export interface QuerySpec {
  valid: readonly string[];
  invalid: readonly string[];
}

/**
 * A query string (with its leading "?" when not empty) whose parameters are valid or left out,
 * except for up to two made invalid, plus (strict schemas) an unknown parameter.
 */
export function queryString(
  specs: Record<string, QuerySpec>,
  options: { strict: boolean },
): fc.Arbitrary<Judged<string>> {
  const names = Object.keys(specs);
  const entry = (name: string) =>
    fc.oneof(
      { weight: 3, arbitrary: fc.constant<Judged<string | undefined>>({ value: undefined, bad: [] }) },
      {
        weight: 2,
        arbitrary: fc
          .constantFrom(...(specs[name] as QuerySpec).valid)
          .map((value): Judged<string | undefined> => ({ value, bad: [] })),
      },
      {
        weight: 1,
        arbitrary: fc
          .constantFrom(...(specs[name] as QuerySpec).invalid)
          .map((value): Judged<string | undefined> => ({ value, bad: [`query ${name}=${excerpt(value)}`] })),
      },
    );
  const unknown = options.strict
    ? fc.option(fc.constantFrom("foo", "namespace", "constructor", "toString", "LIMIT", "x%00"), { freq: 6 })
    : fc.constant(null);
  return fc.record({ entries: fc.tuple(...names.map(entry)), unknown }).map(({ entries, unknown: extra }) => {
    const parts: string[] = [];
    const bad: string[] = [];
    entries.forEach((generated, index) => {
      if (generated.value === undefined) return;
      parts.push(`${names[index]}=${encodeURIComponent(generated.value)}`);
      bad.push(...generated.bad);
    });
    if (extra !== null) {
      parts.push(`${extra}=1`);
      bad.push(`unknown query parameter ${extra}`);
    }
    return { value: parts.length > 0 ? `?${parts.join("&")}` : "", bad };
  });
}

/** Path segments (already URL-encoded) that are no valid name of anything. */
export const BAD_SEGMENTS: readonly string[] = [
  "..",
  ".",
  "%2e%2e",
  "%2E%2E%2F",
  "a%2Fb",
  "a%2fb%2f..",
  "%2F",
  "%00",
  "%ZZ",
  "%E0%A4%A",
  "a%20b",
  "a%0Ab",
  encodeURIComponent("名前"),
  encodeURIComponent("ñame"),
  encodeURIComponent("😀x"),
  encodeURIComponent("é".normalize("NFD")),
  longString(500, "a"),
  "",
  "-lead",
  "_lead",
  "__proto__",
  "constructor%2F..",
  "a.b",
  "a;b",
  "%252e%252e",
  "*",
];

/** Decodes a path segment as the router does, or undefined when it is not valid percent-encoding. */
export function decodeSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/** Candidates drawn when a component should come out malformed (or well formed). */
const PREFERENCE_CANDIDATES = 8;

/** The fault site meaning "leave every component as generated" (often several faults). */
export const SEVERAL_FAULTS = "several";

/**
 * The component a case should get wrong: one of `components` (each as likely), or
 * SEVERAL_FAULTS. Single faults are what reach the deepest checks: a request with several is
 * refused at the first.
 */
export function faultSiteArb(components: readonly string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...components) },
    { weight: 1, arbitrary: fc.constant(SEVERAL_FAULTS) },
  );
}

/**
 * A component generated malformed when it is the fault site and well formed otherwise, as far as
 * PREFERENCE_CANDIDATES draws allow (never looping: some components cannot be well formed for
 * some callers, and then the first draw is kept).
 */
export function prefer<T>(arb: fc.Arbitrary<Judged<T>>, site: string, component: string): fc.Arbitrary<Judged<T>> {
  if (site === SEVERAL_FAULTS) return arb;
  const wantBad = site === component;
  return fc
    .array(arb, { minLength: PREFERENCE_CANDIDATES, maxLength: PREFERENCE_CANDIDATES })
    .map(
      (candidates) =>
        candidates.find((candidate) => candidate.bad.length > 0 === wantBad) ?? (candidates[0] as Judged<T>),
    );
}
