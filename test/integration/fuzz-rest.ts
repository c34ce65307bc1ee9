// Generators of malformed requests for every REST route of the platform (worker/api/app.ts and the
// route files it mounts). Each case knows what is wrong with it; only malformed cases are kept.
import fc from "fast-check";
import { MAX_DISPATCH_BODY_BYTES } from "../../worker/api/routes/dispatch";
import { MAX_BULK_TERMINATE_BODY_BYTES } from "../../worker/events/bulk-terminate";
import { MAX_GRACE_SECONDS, MIN_GRACE_SECONDS } from "../../worker/events/event-deadlines";
import {
  encodeCursor,
  MAX_CURSOR_CHARS,
  MAX_DURATION_FILTER_MS,
  MAX_STATUS_CODE_FILTERS,
} from "../../worker/events/event-list";
import { MAX_RETENTION_HOURS, MAX_SETTINGS_BODY_BYTES, MIN_RETENTION_HOURS } from "../../worker/events/event-retention";
import {
  MAX_TAG_FILTERS,
  MAX_TAG_KEY_CHARS,
  MAX_TAG_VALUE_CHARS,
  MAX_TAGS_PER_EVENT,
} from "../../worker/events/event-tags";
import { MAX_ASYNC_PAYLOAD_BYTES } from "../../worker/events/invoke";
import { MAX_DEADLINE_WARNING_SECONDS } from "../../worker/functions/model";
import { FUNCTION_NAME_PATTERN, NAMESPACE_PATTERN } from "../../worker/shared/names";
import { MAX_JSON_BODY_BYTES } from "../../worker/shared/validation";
import { zipBase64 } from "../helpers/zip";
import {
  BAD_SEGMENTS,
  type BodySpec,
  decodeSegment,
  excerpt,
  type FieldSpec,
  faultSiteArb,
  INVALID_JSON_TEXTS,
  type Judged,
  jsonBody,
  longString,
  NOT_BOOLEAN,
  NOT_NUMBER,
  NOT_OBJECT,
  NOT_SAFE_INTEGER,
  NOT_STRING,
  objectWithMutations,
  prefer,
  type QuerySpec,
  queryString,
  UNKNOWN_KEYS,
} from "./fuzz-fields";
import {
  type AuthSpec,
  authArb,
  type Caller,
  FIXTURE_EVENT,
  FIXTURE_FUNCTION,
  FOREIGN_NAMESPACE,
  FOREIGN_QUEUED_EVENT,
  type FuzzCase,
  judgedCaller,
  MISSING_FUNCTION,
  OWN_ENDED_EVENT,
  SCOPED_ID_TOKEN,
  SCOPED_NAMESPACE,
  VICTIM_ID_TOKEN,
} from "./fuzz-model";

/** Body limit of POST /v1/admin/credentials (admin-routes.ts). */
export const CREDENTIALS_BODY_LIMIT_BYTES = 64 * 1024;
/** Body limit of PATCH /v1/namespaces/:namespace/functions/:name (api/routes/functions.ts). */
export const PATCH_BODY_LIMIT_BYTES = 1024 * 1024;
/** Body limit of POST /v1/events/:requestId/terminate (api/routes/events.ts). */
export const TERMINATE_BODY_LIMIT_BYTES = 4096;
/** Body limit of POST /v1/events/:requestId/replay (api/routes/events.ts). */
export const REPLAY_BODY_LIMIT_BYTES = 4096;
/** Body limit of trigger create and update (api/routes/triggers.ts MAX_TRIGGER_BODY_BYTES). */
export const TRIGGER_BODY_LIMIT_BYTES = 64 * 1024;
/** Body limit of function creation and code upload: oversized ones are sent by fixed cases only. */
export const CODE_BODY_LIMIT_BYTES = MAX_JSON_BODY_BYTES;

/** A valid code package (a zip) that differs from the fixtures' packages. */
export const OTHER_ZIP = zipBase64({ "index.js": "exports.main_handler = async () => 'fuzz';" });
/** Base64 that is not a zip. */
const NOT_A_ZIP = btoa("this is not a zip archive");

/** Image values a body with a code package refuses (and most of them on their own too). */
const IMAGE_INVALID: readonly unknown[] = [
  { uri: "flask-sample" },
  { uri: "ccr.ccs.tencentyun.com/x/nope:1" },
  { uri: "team-image" },
  { uri: "" },
  { uri: longString(513, "a") },
  { uri: "has space" },
  { uri: "flask-sample", command: [] },
  { uri: "flask-sample", command: [""] },
  { uri: "flask-sample", command: Array.from({ length: 65 }, () => "x") },
  { uri: "flask-sample", command: [longString(4097, "x")] },
  { uri: "flask-sample", args: ["a\u0000b"] },
  { uri: "flask-sample", command: "python3" },
  { uri: "flask-sample", type: "public" },
  { uri: "flask-sample", extra: 1 },
  {},
];

/** Fields of the create-function body (functions/model.ts createFunctionSchema, strict). */
const createSpecs: Record<string, FieldSpec> = {
  name: {
    valid: fc.oneof(fc.stringMatching(/^fz[a-z0-9]{2,8}$/), fc.constantFrom("fuzz-fn", "fuzz-other")),
    wrongType: NOT_STRING,
    invalid: ["", "a", "-ab", "ab-", "1abc", "a/b", "..", "名前", longString(61, "a"), "__proto__"],
    required: true,
  },
  runtime: {
    valid: fc.constantFrom("Nodejs22", "Python3.11", "Nodejs18.15", "Python3.9", "CustomRuntime"),
    wrongType: NOT_STRING,
    // CustomImage: implied by an image, refused with code.
    invalid: ["", "nodejs22", "Nodejs18", "Go1", "Php7", "Python2.7", "constructor", "customruntime", "CustomImage"],
    required: true,
  },
  handler: {
    valid: fc.constantFrom("index.main_handler", "src/app.handler"),
    wrongType: NOT_STRING,
    invalid: ["", "index", ".index.main", "index.1bad", "index.main handler"],
  },
  code: {
    valid: fc.constant({ zipFile: OTHER_ZIP }),
    wrongType: NOT_OBJECT,
    invalid: [
      {},
      { zipFile: "" },
      { zipFile: "!!not base64!!" },
      { zipFile: NOT_A_ZIP },
      { zipFile: 5 },
      { zipFile: OTHER_ZIP, extra: 1 },
      { ZipFile: OTHER_ZIP },
      // Code from an R2 object (functions/code-from-object.ts): incomplete, mixed, foreign, missing.
      { bucket: "afp-uploads" },
      { key: "fuzz/a.zip" },
      { zipFile: OTHER_ZIP, bucket: "afp-uploads", key: "fuzz/a.zip" },
      { bucket: "afp-code", key: "fuzz/a.zip" },
      { bucket: "Bad_Bucket", key: "fuzz/a.zip" },
      { bucket: "afp-uploads", key: "fuzz/never-uploaded.zip" },
      { bucket: "afp-uploads", key: longString(1025, "k") },
    ],
    required: true,
  },
  // An image function's image (functions/images.ts): beside code always refused, and malformed,
  // oversized, unknown or another namespace's (team-image: team-a only) as well.
  image: {
    wrongType: NOT_OBJECT,
    invalid: IMAGE_INVALID,
  },
  timeout: {
    valid: fc.integer({ min: 1, max: 900 }),
    wrongType: NOT_NUMBER,
    invalid: [...NOT_SAFE_INTEGER, 0, -1, 86_401],
  },
  memorySize: {
    valid: fc.integer({ min: 64, max: 3072 }),
    wrongType: NOT_NUMBER,
    invalid: [...NOT_SAFE_INTEGER, 0, 63, 3073],
  },
  environment: {
    valid: fc.constantFrom({}, { STAGE: "dev" }, { constructor: "x", toString: "y" }),
    wrongType: NOT_OBJECT,
    invalid: [
      { "1BAD": "x" },
      { "A-B": "x" },
      { A: 1 },
      { A: null },
      { A: { nested: "x" } },
      Object.fromEntries(Array.from({ length: 101 }, (_, index) => [`V${index}`, "x"])),
    ],
  },
  description: { valid: fc.constantFrom("", "fuzz"), wrongType: NOT_STRING, invalid: [longString(1001)] },
  asyncRunEnable: { valid: fc.constant(true), wrongType: NOT_BOOLEAN, invalid: [] },
  // 50: FUNCTION_MAX_CONCURRENCY's default (the registry refuses above it; the schema above 1000).
  maxConcurrency: {
    valid: fc.integer({ min: 1, max: 50 }),
    wrongType: NOT_NUMBER,
    invalid: [...NOT_SAFE_INTEGER, 0, 51, 1000, 1001, -5],
  },
  // Up to 1024 MiB fits every memorySize (basic's disk: functions/instance-types.ts LOG_LIMIT_CAP_MB).
  logLimitMb: {
    valid: fc.integer({ min: 1, max: 1024 }),
    wrongType: NOT_NUMBER,
    invalid: [...NOT_SAFE_INTEGER, 0, -1, 1.5, 3073],
  },
  qpsLimit: {
    valid: fc.integer({ min: 1, max: 100_000 }),
    wrongType: NOT_NUMBER,
    invalid: [...NOT_SAFE_INTEGER, 0, 100_001],
  },
  idempotencyWindowSeconds: {
    valid: fc.integer({ min: 1, max: 259_200 }),
    wrongType: NOT_NUMBER,
    invalid: [...NOT_SAFE_INTEGER, 0, -1, 259_201],
  },
  // Only 0 (off) fits every valid timeout (a warning must be less than the timeout).
  deadlineWarningSeconds: {
    valid: fc.constant(0),
    wrongType: NOT_NUMBER,
    invalid: [...NOT_SAFE_INTEGER, -1, 1.5, MAX_DEADLINE_WARNING_SECONDS + 1],
  },
};

/** Fields of the configuration update body (updateConfigurationSchema, strict). */
const patchSpecs: Record<string, FieldSpec> = {
  handler: createSpecs.handler as FieldSpec,
  timeout: createSpecs.timeout as FieldSpec,
  memorySize: createSpecs.memorySize as FieldSpec,
  environment: createSpecs.environment as FieldSpec,
  description: createSpecs.description as FieldSpec,
  maxConcurrency: createSpecs.maxConcurrency as FieldSpec,
  logLimitMb: createSpecs.logLimitMb as FieldSpec,
  qpsLimit: createSpecs.qpsLimit as FieldSpec,
  idempotencyWindowSeconds: createSpecs.idempotencyWindowSeconds as FieldSpec,
  deadlineWarningSeconds: createSpecs.deadlineWarningSeconds as FieldSpec,
  runtime: {
    valid: fc.constantFrom("Nodejs22", "Python3.11", "Nodejs18.15", "Python3.9"),
    wrongType: NOT_STRING,
    invalid: ["", "Go1", "Php7"],
  },
  // The fixtures are async: asking for false is refused (IMMUTABLE_PARAMETER); true is a no-op.
  asyncRunEnable: { invalid: [false, ...NOT_BOOLEAN] },
};

/** The code upload body (codeSchema, strict). */
const codeSpecs: Record<string, FieldSpec> = {
  zipFile: {
    valid: fc.constant(OTHER_ZIP),
    wrongType: NOT_STRING,
    invalid: ["", "!!not base64!!", NOT_A_ZIP, "UEsDBA", `${OTHER_ZIP}====`],
    required: true,
  },
  // Code from an R2 object: with zipFile, or without its partner, always refused.
  bucket: { wrongType: NOT_STRING, invalid: ["afp-uploads", "afp-code", "Bad_Bucket"] },
  key: { wrongType: NOT_STRING, invalid: ["fuzz/a.zip", ""] },
  // With a package, image is refused; a runtime only a code runtime.
  image: { wrongType: NOT_OBJECT, invalid: IMAGE_INVALID },
  runtime: { wrongType: NOT_STRING, invalid: ["CustomImage", "Go1", ""] },
};

/** The credential creation body (admin-routes.ts, strict). */
const credentialSpecs: Record<string, FieldSpec> = {
  namespaces: {
    valid: fc.constantFrom(["fuzz-new"], ["fuzz-a", "fuzz-b"]),
    invalid: [
      ...NOT_OBJECT.filter((value) => !Array.isArray(value) || value.length > 0),
      [],
      [1],
      [""],
      ["a/b"],
      [".."],
      ["名前"],
      [longString(31, "a")],
      [null],
      Array.from({ length: 101 }, (_, index) => `ns-${index}`),
    ],
    required: true,
  },
  description: { valid: fc.constantFrom("", "fuzz key"), wrongType: NOT_STRING, invalid: [longString(201)] },
};

/** Fields of the trigger update body (api/routes/triggers.ts, strict). */
const updateTriggerSpecs: Record<string, FieldSpec> = {
  enabled: { valid: fc.boolean(), wrongType: NOT_BOOLEAN, invalid: [] },
  triggerDesc: {
    valid: fc.constantFrom("*/5 * * * * * *", '{"cron":"0 */5 * * * * *"}'),
    wrongType: NOT_STRING,
    invalid: ["", "not a cron", "* * *", "61 * * * * * *", '{"cron":5}', longString(4097, "*")],
  },
  customArgument: { valid: fc.constantFrom("", "hello"), wrongType: NOT_STRING, invalid: [longString(4097, "m")] },
  description: { valid: fc.constantFrom("", "fuzz"), wrongType: NOT_STRING, invalid: [longString(1001)] },
};

/** Fields of the trigger create body (api/routes/triggers.ts, strict). */
const createTriggerSpecs: Record<string, FieldSpec> = {
  name: {
    valid: fc.stringMatching(/^fz[a-z0-9_-]{1,10}$/),
    wrongType: NOT_STRING,
    invalid: ["", "1abc", "-ab", "a b", "a/b", "名前", "__proto__", longString(101, "t")],
    required: true,
  },
  type: { valid: fc.constant("timer"), wrongType: NOT_STRING, invalid: ["", "Timer", "apigw", "cls"], required: true },
  qualifier: {
    valid: fc.constantFrom("$DEFAULT", "$LATEST"),
    wrongType: NOT_STRING,
    invalid: ["", "0", "$OTHER", "a b", "7", "no-such-alias", longString(70, "q")],
  },
  ...updateTriggerSpecs,
};

/** The terminate body (strict; an empty body is valid). */
const terminateSpecs: Record<string, FieldSpec> = {
  graceful: { valid: fc.boolean(), wrongType: NOT_BOOLEAN, invalid: [] },
  graceSeconds: {
    valid: fc.integer({ min: MIN_GRACE_SECONDS, max: MAX_GRACE_SECONDS }),
    wrongType: NOT_NUMBER,
    invalid: [...NOT_SAFE_INTEGER, 0, -1, 1.5, MAX_GRACE_SECONDS + 1],
  },
};

/** The terminate body, judged: graceSeconds belongs to a graceful terminate only. */
const terminateObject: fc.Arbitrary<Judged<Record<string, unknown>>> = objectWithMutations(terminateSpecs, {
  strict: true,
}).map((judged) =>
  "graceSeconds" in judged.value && judged.value.graceful !== true
    ? { value: judged.value, bad: [...judged.bad, "graceSeconds without graceful: true"] }
    : judged,
);

/** The bulk termination body (strict; every field optional, but the body itself is required). */
const bulkTerminateSpecs: Record<string, FieldSpec> = {
  functionName: {
    wrongType: NOT_STRING,
    invalid: ["", "a", "-ab", "ab-", "a/b", longString(61, "a"), MISSING_FUNCTION],
  },
  statuses: {
    valid: fc.constant(["RUNNING"]),
    wrongType: [null, "RUNNING", 1, {}],
    invalid: [[], ["FINISHED"], ["RUNNING", "RUNNING"], ["running"], [1]],
  },
  qualifier: {
    valid: fc.constantFrom("$LATEST", "$DEFAULT"),
    wrongType: NOT_STRING,
    invalid: ["", "a b", longString(70, "q")],
  },
  invokeTypes: {
    valid: fc.constant(["OTHERS"]),
    wrongType: [null, "OTHERS", 1, {}],
    invalid: [[], ["HTTP"], ["others"], Array.from({ length: 11 }, () => "OTHERS")],
  },
  startTimeFrom: {
    valid: fc.constantFrom(0, "2024-01-01T00:00:00Z"),
    wrongType: [null, true, [], {}],
    invalid: [-1, 1.5, "yesterday", "2024-13-01T00:00:00Z", ...NOT_SAFE_INTEGER],
  },
  tags: {
    valid: fc.constant({ env: "fuzz" }),
    wrongType: NOT_OBJECT,
    invalid: [{ "bad key": "x" }, { env: 1 }, { env: "a,b" }, { a: "1", b: "1", c: "1", d: "1", e: "1", f: "1" }],
  },
  mode: { valid: fc.constant("forced"), wrongType: NOT_STRING, invalid: ["", "gentle", "FORCED"] },
  dryRun: { valid: fc.constant(true), wrongType: NOT_BOOLEAN, invalid: [] },
};

/** The bulk termination body, judged: graceSeconds belongs to mode "graceful" only (never sent here). */
const bulkTerminateObject = objectWithMutations(bulkTerminateSpecs, { strict: true });

/** The namespace settings body (strict; either field alone is valid). */
const namespaceSettingsSpecs: Record<string, FieldSpec> = {
  retentionHours: {
    valid: fc.integer({ min: MIN_RETENTION_HOURS, max: MAX_RETENTION_HOURS }),
    wrongType: NOT_NUMBER,
    invalid: [...NOT_SAFE_INTEGER, 0, -1, 1.5, MAX_RETENTION_HOURS + 1],
  },
  archive: { valid: fc.boolean(), wrongType: NOT_BOOLEAN, invalid: [] },
};

/** RequestIds of no archived event: malformed, never archived, or longer than the path allows. */
const ARCHIVE_REQUEST_IDS: readonly { id: string; bad: string }[] = [
  { id: "not-a-uuid", bad: "requestId not a UUID" },
  { id: "00000000-0000-4000-8000-0000000000aa", bad: "no archived event" },
  { id: longString(65, "r"), bad: "requestId not a UUID" },
];

const archiveListQuery: Record<string, QuerySpec> = {
  functionName: { valid: ["fuzz-fn"], invalid: ["", "1a", "-ab", longString(61, "a")] },
  cursor: { valid: ["eyJ4IjoxfQ"], invalid: ["", longString(1025, "c")] },
  limit: { valid: ["1", "100"], invalid: ["0", "101", "x", "1.5"] },
};

const archiveLogQuery: Record<string, QuerySpec> = {
  after: { valid: ["0", "10"], invalid: ["-1", "x", "1.5", "1e400"] },
  limit: { valid: ["1", "1000"], invalid: ["0", "1001", "x"] },
};

/** Job ids of no job the caller may see: malformed, unknown, or longer than the path allows. */
const BULK_JOB_IDS: readonly string[] = [
  "not-a-uuid",
  "00000000-0000-4000-8000-000000000000",
  "%2e%2e",
  longString(65, "j"),
];

/** The replay body: `{}` (or empty) only; any field is unknown. */
const replayObject: fc.Arbitrary<Judged<Record<string, unknown>>> = fc.oneof(
  { weight: 1, arbitrary: fc.constant<Judged<Record<string, unknown>>>({ value: {}, bad: [] }) },
  {
    weight: 3,
    arbitrary: fc
      .record({
        key: fc.constantFrom(...UNKNOWN_KEYS, "graceful", "payload"),
        value: fc.constantFrom(1, "x", null, {}),
      })
      .map(({ key, value }) => ({ value: { [key]: value }, bad: [`unknown field ${excerpt(key)}`] })),
  },
);

/** The path's namespace segment, judged for the caller. */
function namespaceSegment(caller: Caller): fc.Arbitrary<Judged<string>> {
  return fc
    .oneof(
      { weight: 6, arbitrary: fc.constant(SCOPED_NAMESPACE) },
      { weight: 3, arbitrary: fc.constant(FOREIGN_NAMESPACE) },
      { weight: 1, arbitrary: fc.constant("default") },
      { weight: 3, arbitrary: fc.constantFrom(...BAD_SEGMENTS) },
    )
    .map((segment) => ({ value: segment, bad: judgeNamespace(segment, caller) }));
}

function judgeNamespace(segment: string, caller: Caller): string[] {
  const decoded = decodeSegment(segment);
  if (decoded === undefined || !NAMESPACE_PATTERN.test(decoded)) {
    return [`namespace segment ${excerpt(segment)}`];
  }
  return caller === "scoped" && decoded !== SCOPED_NAMESPACE ? [`namespace ${decoded} is not the key's`] : [];
}

/**
 * The path's function segment for a namespace: its fixture function, a missing one (malformed when
 * the route needs the function to exist), or a bad segment.
 */
function functionSegment(namespaceSegmentValue: string, mustExist: boolean): fc.Arbitrary<Judged<string>> {
  const fixture = FIXTURE_FUNCTION[namespaceSegmentValue];
  return fc
    .oneof(
      { weight: 6, arbitrary: fc.constant(fixture ?? MISSING_FUNCTION) },
      { weight: 1, arbitrary: fc.constant(MISSING_FUNCTION) },
      { weight: 3, arbitrary: fc.constantFrom(...BAD_SEGMENTS) },
    )
    .map((segment) => {
      const decoded = decodeSegment(segment);
      if (decoded === undefined || !FUNCTION_NAME_PATTERN.test(decoded)) {
        return { value: segment, bad: [`function segment ${excerpt(segment)}`] };
      }
      const exists = FIXTURE_FUNCTION[namespaceSegmentValue] === decoded;
      return { value: segment, bad: mustExist && !exists ? [`no function ${decoded}`] : [] };
    });
}

/** Request ids that name no event the caller may see. */
const BAD_REQUEST_IDS: readonly string[] = [
  "not-a-uuid",
  "..",
  "%2e%2e",
  "",
  longString(500, "f"),
  encodeURIComponent("名前"),
  "5eed0000-0000-4000-8000-00000000000g",
  OWN_ENDED_EVENT.toUpperCase(),
  `${OWN_ENDED_EVENT}%00`,
  `${OWN_ENDED_EVENT}%2F..`,
  "00000000-0000-0000-0000-000000000000",
  "__proto__",
  "constructor",
];

/** The path's event segment, judged for the caller (terminating an ended event is malformed too). */
function eventSegment(caller: Caller, terminating: boolean): fc.Arbitrary<Judged<string>> {
  return fc
    .oneof(
      { weight: 4, arbitrary: fc.constant(OWN_ENDED_EVENT) },
      { weight: 4, arbitrary: fc.constant(FOREIGN_QUEUED_EVENT) },
      { weight: 1, arbitrary: fc.uuid() },
      { weight: 3, arbitrary: fc.constantFrom(...BAD_REQUEST_IDS) },
    )
    .map((segment) => {
      const fixture = FIXTURE_EVENT[segment];
      if (!fixture) return { value: segment, bad: [`requestId ${excerpt(segment)}`] };
      if (caller === "scoped" && fixture.namespace !== SCOPED_NAMESPACE) {
        return { value: segment, bad: ["event of another namespace"] };
      }
      return { value: segment, bad: terminating && segment === OWN_ENDED_EVENT ? ["event already ended"] : [] };
    });
}

/** What the parts of one REST case produce. */
interface RestParts {
  path: Judged<string>;
  query?: Judged<string> | undefined;
  body?: Judged<BodySpec> | undefined;
  headers?: Judged<Record<string, string>> | undefined;
  /** What the caller itself gets wrong (not an administrator on an admin route). */
  callerBad?: string[];
}

/** The generators of a REST case's parts. */
interface RestComponents {
  path: fc.Arbitrary<Judged<string>>;
  query?: fc.Arbitrary<Judged<string>>;
  body?: fc.Arbitrary<Judged<BodySpec>>;
  headers?: fc.Arbitrary<Judged<Record<string, string>>>;
}

/** Assembles a case from its parts (kept only if something in it is malformed). */
function assemble(auth: Judged<AuthSpec>, route: { method: string; path: string }, parts: RestParts): FuzzCase {
  const malformations = [
    ...auth.bad,
    ...(parts.callerBad ?? []),
    ...parts.path.bad,
    ...(parts.query?.bad ?? []),
    ...(parts.body?.bad ?? []),
    ...(parts.headers?.bad ?? []),
  ];
  return {
    route: `${route.method} ${route.path}`,
    method: route.method,
    target: `${parts.path.value}${parts.query?.value ?? ""}`,
    auth: auth.value,
    body: parts.body?.value ?? { kind: "none" },
    headers: { "content-type": "application/json", ...(parts.headers?.value ?? {}) },
    tencent: false,
    malformations,
  };
}

/** Joins judged path segments under a prefix. */
function joinPath(segments: readonly (string | Judged<string>)[]): Judged<string> {
  const bad: string[] = [];
  const parts = segments.map((segment) => {
    if (typeof segment === "string") return segment;
    bad.push(...segment.bad);
    return segment.value;
  });
  return { value: parts.join("/"), bad };
}

/** A case for a route given the caller: the generators of its parts. */
type RouteCase = (caller: Caller) => RestComponents;

/** A route under /v1/namespaces/:namespace/functions[/:name][/suffix]. */
function functionPath(
  caller: Caller,
  withName: false | { mustExist: boolean; suffix?: string },
): fc.Arbitrary<Judged<string>> {
  return namespaceSegment(caller).chain((namespace) => {
    if (!withName) return fc.constant(joinPath(["/v1/namespaces", namespace, "functions"]));
    return functionSegment(namespace.value, withName.mustExist).map((name) =>
      joinPath(["/v1/namespaces", namespace, "functions", name, ...(withName.suffix ? [withName.suffix] : [])]),
    );
  });
}

const listFunctionsQuery: Record<string, QuerySpec> = {
  search: { valid: ["fn", "a-b_1"], invalid: ["", longString(61, "s")] },
  offset: { valid: ["0", "5"], invalid: ["-1", "abc", "1.5", "1e400", "NaN"] },
  limit: { valid: ["1", "20", "100"], invalid: ["0", "101", "-5", "abc", "2.5", ""] },
};

const timeQuery: QuerySpec = {
  valid: ["0", "1700000000000", "2024-01-01T00:00:00Z"],
  invalid: ["yesterday", "-1", "2024-13-01T00:00:00Z", "1.5", "2024-01-01 00:00:00"],
};

/** Well-formed list cursors: one of the default order, one of an end-time order at a running event. */
const LIST_CURSOR_START_DESC = encodeCursor({
  orderBy: "startTime",
  order: "DESC",
  key: 1_700_000_000_000,
  requestId: "00000000-0000-4000-8000-000000000000",
});
const LIST_CURSOR_END_ASC = encodeCursor({
  orderBy: "endTime",
  order: "ASC",
  key: null,
  requestId: "00000000-0000-4000-8000-000000000000",
});

/** `count` distinct tags as the query's text: `k0=v,k1=v,...`. */
function tagPairs(count: number): string {
  return Array.from({ length: count }, (_, index) => `k${index}=v`).join(",");
}

/** Tag texts (`k=v,k2=v2`) every tag rule breaks (events/event-tags.ts), beside valid ones. */
const BAD_TAG_TEXTS: readonly string[] = [
  "",
  "env",
  "=prod",
  "env=prod,",
  "env=prod,env=dev",
  "a b=c",
  "-lead=x",
  "k=v;w",
  "k=名前",
  `${longString(MAX_TAG_KEY_CHARS + 1, "k")}=v`,
  `k=${longString(MAX_TAG_VALUE_CHARS + 1, "v")}`,
];

const listEventsQuery: Record<string, QuerySpec> = {
  qualifier: { valid: ["$LATEST", "$DEFAULT", "1", "prod"], invalid: ["", "a b", "$OTHER", longString(65, "q")] },
  invokeTypes: {
    valid: ["OTHERS", "OTHERS,TRIGGER_TIMER", "APIGW, COS,CKAFKA_TRIGGER"],
    invalid: ["", ",,,", "OTHERS,TIMER", "others", longString(33, "t"), "a,b,c,d,e,f,g,h,i,j,k"],
  },
  statuses: {
    valid: ["RUNNING", "FINISHED,FAILED"],
    invalid: ["DONE", "running", "", "RUNNING,RUNNING,RUNNING,RUNNING,RUNNING"],
  },
  requestId: { valid: [OWN_ENDED_EVENT], invalid: ["", longString(65, "r")] },
  startTimeFrom: timeQuery,
  startTimeTo: timeQuery,
  endTimeFrom: timeQuery,
  endTimeTo: timeQuery,
  orderBy: { valid: ["startTime", "endTime"], invalid: ["start", "StartTime", ""] },
  order: { valid: ["ASC", "desc"], invalid: ["up", "", "ASCENDING"] },
  offset: { valid: ["0", "10"], invalid: ["-1", "1000001", "x", "1.5"] },
  limit: { valid: ["1", "100"], invalid: ["0", "101", "x", ""] },
  statusCodes: {
    valid: ["200", "430,433, 499", Array(MAX_STATUS_CODE_FILTERS).fill("500").join(",")],
    invalid: [
      "",
      ",,",
      "OK",
      "1000",
      "-200",
      "200.5",
      Array(MAX_STATUS_CODE_FILTERS + 1)
        .fill("200")
        .join(","),
    ],
  },
  minDurationMs: { valid: ["0", "1500"], invalid: ["-1", "1.5", "x", "", `${MAX_DURATION_FILTER_MS + 1}`] },
  maxDurationMs: { valid: ["1000", `${MAX_DURATION_FILTER_MS}`], invalid: ["-5", "1e400", "long", ""] },
  cursor: {
    valid: [LIST_CURSOR_START_DESC, LIST_CURSOR_END_ASC],
    invalid: ["", "not a cursor", "eyJ4IjoxfQ", LIST_CURSOR_START_DESC.slice(0, -4), "A".repeat(MAX_CURSOR_CHARS + 1)],
  },
  tags: {
    valid: ["env=prod", "env=prod,team=video", "empty=", tagPairs(MAX_TAG_FILTERS)],
    invalid: [...BAD_TAG_TEXTS, tagPairs(MAX_TAG_FILTERS + 1)],
  },
};

/**
 * The event list's rules across parameters, judged on a query its specs made: a duration range's
 * minimum over its maximum, a cursor beside an offset, a cursor read in another order than its own.
 */
function judgeListEventsQuery(query: Judged<string>): Judged<string> {
  const params = new URLSearchParams(query.value.slice(1));
  const bad = [...query.bad];
  const min = params.get("minDurationMs");
  const max = params.get("maxDurationMs");
  if (min !== null && max !== null && Number(min) > Number(max))
    bad.push(`minDurationMs ${min} > maxDurationMs ${max}`);
  const cursor = params.get("cursor");
  if (cursor === LIST_CURSOR_START_DESC || cursor === LIST_CURSOR_END_ASC) {
    if (params.has("offset")) bad.push("cursor beside offset");
    const orderBy = params.get("orderBy") ?? "startTime";
    const order = (params.get("order") ?? "DESC").toUpperCase();
    const made = cursor === LIST_CURSOR_START_DESC ? "startTime DESC" : "endTime ASC";
    if (`${orderBy} ${order}` !== made) bad.push(`cursor of ${made} read as ${orderBy} ${order}`);
  }
  return { value: query.value, bad };
}

const listTriggersQuery: Record<string, QuerySpec> = {
  offset: { valid: ["0", "5"], invalid: ["-1", "abc", "1.5", "1e400"] },
  limit: { valid: ["1", "20", "100"], invalid: ["0", "101", "-5", "abc", "2.5", ""] },
  orderBy: { valid: ["addTime", "modTime"], invalid: ["add_time", "", "AddTime"] },
  order: { valid: ["asc", "desc"], invalid: ["ASC", "up", ""] },
  type: {
    valid: ["timer", "timer,http"],
    invalid: ["", "apigw", "timer,,http", "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t,u"],
  },
  qualifier: { valid: ["$DEFAULT", "$LATEST,1"], invalid: ["", "a b", longString(70, "q")] },
  name: { valid: ["fzt", "a,b"], invalid: ["", "1a", "a b", longString(101, "n")] },
  description: { valid: ["fuzz"], invalid: ["", longString(1001, "d")] },
};

const functionLogsQuery: Record<string, QuerySpec> = {
  requestId: { valid: [OWN_ENDED_EVENT], invalid: ["", longString(65, "r")] },
  qualifier: { valid: ["$LATEST", "1", "$DEFAULT", "prod"], invalid: ["", "$latest", "a b", longString(65, "q")] },
  startTime: timeQuery,
  endTime: timeQuery,
  status: { valid: ["success", "error"], invalid: ["ok", "SUCCESS", ""] },
  order: { valid: ["asc", "DESC"], invalid: ["up", ""] },
  offset: { valid: ["0"], invalid: ["-1", "1000001", "x"] },
  limit: { valid: ["1", "100"], invalid: ["0", "101", "x"] },
};

const statisticsQuery: Record<string, QuerySpec> = {
  hours: { valid: ["1", "24", "72"], invalid: ["0", "73", "-1", "x", "1.5", ""] },
  tags: { valid: ["env=prod", "env=prod,team=video"], invalid: [...BAD_TAG_TEXTS, tagPairs(MAX_TAG_FILTERS + 1)] },
};

/** The filters of every log read. */
const logFilterQuery: Record<string, QuerySpec> = {
  contains: { valid: ["needle", "a b"], invalid: ["", "x".repeat(257)] },
  stream: { valid: ["stdout", "stderr,platform"], invalid: ["", "stdin", "stdout,", "STDOUT"] },
};

const eventLogsQuery: Record<string, QuerySpec> = {
  after: { valid: ["0", "10"], invalid: ["-1", "x", "1.5", "1e400"] },
  limit: { valid: ["1", "1000"], invalid: ["0", "1001", "x"] },
  ...logFilterQuery,
};

const followQuery: Record<string, QuerySpec> = {
  after: eventLogsQuery.after as QuerySpec,
  tail: { valid: ["0", "5000", "100000"], invalid: ["-1", "100001", "x", "1.5"] },
  ...logFilterQuery,
};

/** Values of Last-Event-ID that are not a sequence number. */
const BAD_LAST_EVENT_IDS: readonly string[] = ["x", "-1", "1.5", "1e400", "0x10 junk"];

/** An invocation payload: any JSON up to 128 KB is valid. */
const invocationBody: fc.Arbitrary<Judged<BodySpec>> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .constantFrom('{"file":"a.mp4"}', "[1,2]", '"text"', "42", "null")
      .map((text) => ({ value: { kind: "text" as const, text }, bad: [] })),
  },
  {
    weight: 3,
    arbitrary: fc
      .constantFrom(...INVALID_JSON_TEXTS)
      .map((text) => ({ value: { kind: "text" as const, text }, bad: [`invalid JSON ${excerpt(text)}`] })),
  },
  {
    weight: 1,
    arbitrary: fc.boolean().map((streamed) => ({
      value: { kind: "oversized" as const, prefix: "{}", bytes: MAX_ASYNC_PAYLOAD_BYTES + 1, streamed },
      bad: [`payload of ${MAX_ASYNC_PAYLOAD_BYTES + 1} bytes${streamed ? " (streamed)" : ""}`],
    })),
  },
);

const qualifierQuery: fc.Arbitrary<Judged<string>> = fc.oneof(
  { weight: 3, arbitrary: fc.constant<Judged<string>>({ value: "", bad: [] }) },
  { weight: 1, arbitrary: fc.constant<Judged<string>>({ value: "?qualifier=%24LATEST", bad: [] }) },
  { weight: 1, arbitrary: fc.constant<Judged<string>>({ value: "?qualifier=%24DEFAULT", bad: [] }) },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom("", "v1", "LATEST", "$latest", "7", "0", longString(500, "q"), "名前")
      .map((value) => ({ value: `?qualifier=${encodeURIComponent(value)}`, bad: [`qualifier ${excerpt(value)}`] })),
  },
);

/** The invoke routes' `tags`: none, valid tags, or tags breaking a rule (appended to the qualifier's query). */
const invocationTagsPart: fc.Arbitrary<Judged<string>> = fc.oneof(
  { weight: 4, arbitrary: fc.constant<Judged<string>>({ value: "", bad: [] }) },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom("env=prod", "env=prod,team=video", "empty=", "a.b:c/d@e+f-g=x y=z", tagPairs(MAX_TAGS_PER_EVENT))
      .map((value) => ({ value: `tags=${encodeURIComponent(value)}`, bad: [] })),
  },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom(...BAD_TAG_TEXTS, tagPairs(MAX_TAGS_PER_EVENT + 1))
      .map((value) => ({ value: `tags=${encodeURIComponent(value)}`, bad: [`tags ${excerpt(value)}`] })),
  },
);

/** The invoke routes' query: the qualifier's and the tags'. */
const invokeQuery: fc.Arbitrary<Judged<string>> = fc
  .tuple(qualifierQuery, invocationTagsPart)
  .map(([qualifier, tags]) => {
    if (tags.value === "") return qualifier;
    const value = qualifier.value === "" ? `?${tags.value}` : `${qualifier.value}&${tags.value}`;
    return { value, bad: [...qualifier.bad, ...tags.bad] };
  });

/** Idempotency-Key values that break the key's rule (events/idempotency.ts). */
const BAD_IDEMPOTENCY_KEYS: readonly string[] = ["", "has space", "a/b", "k,k", "a;b", 'q"k', longString(129, "k")];

/** The invoke route's Idempotency-Key header: none, a valid key, or a malformed one. */
const idempotencyKeyHeader: fc.Arbitrary<Judged<Record<string, string>>> = fc.oneof(
  { weight: 4, arbitrary: fc.constant<Judged<Record<string, string>>>({ value: {}, bad: [] }) },
  {
    weight: 2,
    arbitrary: fc
      .stringMatching(/^[A-Za-z0-9_.:-]{1,128}$/)
      .map((key) => ({ value: { "idempotency-key": key }, bad: [] })),
  },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom(...BAD_IDEMPOTENCY_KEYS)
      .map((key) => ({ value: { "idempotency-key": key }, bad: [`Idempotency-Key ${excerpt(key)}`] })),
  },
);

/** Credential ids for revocation: a real key's (the victim's or the caller's own), or none. */
const secretIdSegment = (caller: Caller): fc.Arbitrary<Judged<string>> =>
  fc
    .oneof(
      { weight: 2, arbitrary: fc.constant(VICTIM_ID_TOKEN) },
      { weight: 1, arbitrary: fc.constant(SCOPED_ID_TOKEN) },
      { weight: 4, arbitrary: fc.constantFrom(...BAD_SEGMENTS, "AKIDintegration", "AKIDnosuchkey") },
    )
    .map((segment) => ({
      value: segment,
      bad:
        segment === VICTIM_ID_TOKEN || (segment === SCOPED_ID_TOKEN && caller === "admin")
          ? []
          : [`secretId ${excerpt(segment)}`],
    }));

const notAdmin = (caller: Caller): string[] => (caller === "scoped" ? ["caller is not an administrator"] : []);

/** Trigger type segments that are no trigger type. */
const BAD_TRIGGER_TYPES: readonly string[] = ["", "Timer", "apigw", "%2e%2e", "__proto__", longString(300, "t")];

/**
 * The path of one trigger of a function (`.../triggers/{type}/{trigger}`): the fixtures have no
 * triggers, so even a well-formed one names no trigger (TRIGGER_NOT_FOUND) and is malformed.
 */
function triggerPath(caller: Caller): fc.Arbitrary<Judged<string>> {
  return fc
    .record({
      fn: functionPath(caller, { mustExist: true, suffix: "triggers" }),
      type: fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom("timer", "http", "ckafka", "cos") },
        { weight: 1, arbitrary: fc.constantFrom(...BAD_TRIGGER_TYPES) },
      ),
      trigger: fc.oneof(
        { weight: 4, arbitrary: fc.stringMatching(/^fz[a-z0-9]{1,8}$/) },
        { weight: 2, arbitrary: fc.constantFrom(...BAD_SEGMENTS) },
      ),
    })
    .map(({ fn, type, trigger }) => {
      const bad = [...fn.bad];
      if (!["timer", "http", "ckafka", "cos"].includes(type)) bad.push(`trigger type segment ${excerpt(type)}`);
      const decoded = decodeSegment(trigger);
      bad.push(
        decoded !== undefined && /^[A-Za-z][A-Za-z0-9_-]{0,99}$/.test(decoded)
          ? `no trigger ${decoded}`
          : `trigger segment ${excerpt(trigger)}`,
      );
      return { value: `${fn.value}/${type}/${trigger}`, bad };
    });
}

/** Body limit of the version and alias routes (api/routes/versions.ts MAX_VERSION_BODY_BYTES). */
export const VERSION_BODY_LIMIT_BYTES = 16 * 1024;

/** The publish body (functions/versions.ts publishVersionSchema, strict; empty is valid). */
const publishVersionSpecs: Record<string, FieldSpec> = {
  description: { valid: fc.constantFrom("", "fuzz"), wrongType: NOT_STRING, invalid: [longString(1001)] },
};

/** A routingConfig (functions/aliases.ts routingConfigSchema): the fixtures have only $LATEST. */
const routingConfigSpec: FieldSpec = {
  valid: fc.constantFrom({}, { additionalVersionWeights: [] }),
  wrongType: NOT_OBJECT,
  invalid: [
    { additionalVersionWeights: [{ version: "7", weight: 0.5 }] },
    { additionalVersionWeights: [{ version: "$LATEST", weight: 0.5 }] },
    { additionalVersionWeights: [{ version: "$LATEST", weight: 0 }] },
    { additionalVersionWeights: [{ version: "$LATEST", weight: 1 }] },
    { additionalVersionWeights: [{ version: "v1", weight: 0.5 }] },
    { additionalVersionWeights: [{ version: "$LATEST" }] },
    { additionalVersionWeights: "x" },
    { addtionVersionMatchs: [{ version: "$LATEST", key: "invoke.headers.User", method: "exact", expression: "a" }] },
  ],
};

/** The fields of an alias's routing (update body, strict); the fixtures have only $LATEST. */
const aliasRoutingSpecs: Record<string, FieldSpec> = {
  functionVersion: {
    valid: fc.constant("$LATEST"),
    wrongType: NOT_STRING,
    invalid: ["", "7", "0", "latest", "$DEFAULT", longString(17, "1")],
    required: true,
  },
  routingConfig: routingConfigSpec,
  description: { valid: fc.constantFrom("", "fuzz"), wrongType: NOT_STRING, invalid: [longString(1001)] },
};

/** The alias create body (functions/aliases.ts createAliasSchema, strict). */
const createAliasSpecs: Record<string, FieldSpec> = {
  name: {
    valid: fc.stringMatching(/^fz[a-z0-9]{1,8}$/),
    wrongType: NOT_STRING,
    invalid: ["", "1abc", "$DEFAULT", "a b", "a/b", longString(65, "a")],
    required: true,
  },
  ...aliasRoutingSpecs,
};

const listVersionsQuery: Record<string, QuerySpec> = {
  order: { valid: ["ASC", "desc"], invalid: ["up", ""] },
  offset: { valid: ["0", "3"], invalid: ["-1", "1000001", "x", "1.5"] },
  limit: { valid: ["1", "100"], invalid: ["0", "101", "x", ""] },
};

const listAliasesQuery: Record<string, QuerySpec> = {
  functionVersion: { valid: ["$LATEST", "1"], invalid: ["", "v1", "0", longString(17, "1")] },
  offset: { valid: ["0", "3"], invalid: ["-1", "1000001", "x"] },
  limit: { valid: ["1", "100"], invalid: ["0", "101", "x"] },
};

/** A function's path with one more judged segment (a version or an alias). */
function functionChildPath(
  caller: Caller,
  suffix: string,
  segment: fc.Arbitrary<Judged<string>>,
): fc.Arbitrary<Judged<string>> {
  return fc
    .record({ fn: functionPath(caller, { mustExist: true, suffix }), child: segment })
    .map(({ fn, child }) => ({ value: `${fn.value}/${child.value}`, bad: [...fn.bad, ...child.bad] }));
}

/** A version segment: the fixtures have only $LATEST (`deleting`: $LATEST cannot be deleted). */
function versionSegment(deleting: boolean): fc.Arbitrary<Judged<string>> {
  return fc.oneof(
    {
      weight: 3,
      arbitrary: fc.constant<Judged<string>>({ value: "%24LATEST", bad: deleting ? ["deleting $LATEST"] : [] }),
    },
    {
      weight: 3,
      arbitrary: fc
        .constantFrom("1", "7", "0", "01", "abc", "%24DEFAULT", longString(70, "9"))
        .map((value) => ({ value, bad: [`no version ${excerpt(value)}`] })),
    },
    {
      weight: 2,
      arbitrary: fc
        .constantFrom(...BAD_SEGMENTS)
        .map((value) => ({ value, bad: [`version segment ${excerpt(value)}`] })),
    },
  );
}

/** An alias segment: the fixtures have only $DEFAULT (`deleting`: $DEFAULT cannot be deleted). */
function aliasSegment(deleting: boolean): fc.Arbitrary<Judged<string>> {
  return fc.oneof(
    {
      weight: 3,
      arbitrary: fc.constant<Judged<string>>({ value: "%24DEFAULT", bad: deleting ? ["deleting $DEFAULT"] : [] }),
    },
    {
      weight: 3,
      arbitrary: fc
        .constantFrom("prod", "fz-none", "1abc", "%24LATEST", longString(65, "a"))
        .map((value) => ({ value, bad: [`no alias ${excerpt(value)}`] })),
    },
    {
      weight: 2,
      arbitrary: fc.constantFrom(...BAD_SEGMENTS).map((value) => ({ value, bad: [`alias segment ${excerpt(value)}`] })),
    },
  );
}

/** Every REST route of the app with its case generator. */
const REST_ROUTES: readonly {
  method: string;
  path: string;
  weight: number;
  /** Served to administrators only: a scoped caller is itself a malformation. */
  adminOnly?: boolean;
  components: RouteCase;
}[] = [
  {
    method: "POST",
    path: "/v1/namespaces/:namespace/functions",
    weight: 8,
    components: (caller) => ({
      path: functionPath(caller, false),
      body: jsonBody(objectWithMutations(createSpecs, { strict: true })),
    }),
  },
  {
    method: "GET",
    path: "/v1/namespaces/:namespace/functions",
    weight: 3,
    components: (caller) => ({
      path: functionPath(caller, false),
      query: queryString(listFunctionsQuery, { strict: false }),
    }),
  },
  {
    method: "GET",
    path: "/v1/namespaces/:namespace/functions/:name",
    weight: 3,
    components: (caller) => ({ path: functionPath(caller, { mustExist: true }) }),
  },
  {
    method: "PATCH",
    path: "/v1/namespaces/:namespace/functions/:name",
    weight: 8,
    components: (caller) => ({
      path: functionPath(caller, { mustExist: true }),
      body: jsonBody(objectWithMutations(patchSpecs, { strict: true }), { limitBytes: PATCH_BODY_LIMIT_BYTES }),
    }),
  },
  {
    method: "PUT",
    path: "/v1/namespaces/:namespace/functions/:name/code",
    weight: 5,
    components: (caller) => ({
      path: functionPath(caller, { mustExist: true, suffix: "code" }),
      body: jsonBody(objectWithMutations(codeSpecs, { strict: true })),
    }),
  },
  {
    method: "DELETE",
    path: "/v1/namespaces/:namespace/functions/:name",
    weight: 3,
    components: (caller) => ({ path: functionPath(caller, { mustExist: true }) }),
  },
  {
    method: "POST",
    path: "/v1/namespaces/:namespace/functions/:name/invocations",
    weight: 6,
    components: (caller) => ({
      path: functionPath(caller, { mustExist: true, suffix: "invocations" }),
      query: invokeQuery,
      body: invocationBody,
      headers: idempotencyKeyHeader,
    }),
  },
  {
    // The fixtures run with async execution on: the sync route answers at once (202), never waits.
    method: "POST",
    path: "/v1/namespaces/:namespace/functions/:name/invocations/sync",
    weight: 3,
    components: (caller) => ({
      path: functionPath(caller, { mustExist: true, suffix: "invocations/sync" }),
      query: invokeQuery,
      body: invocationBody,
      headers: idempotencyKeyHeader,
    }),
  },
  {
    method: "GET",
    path: "/v1/namespaces/:namespace/functions/:name/events",
    weight: 4,
    components: (caller) => ({
      path: functionPath(caller, { mustExist: false, suffix: "events" }),
      query: queryString(listEventsQuery, { strict: true }).map(judgeListEventsQuery),
    }),
  },
  {
    method: "GET",
    path: "/v1/namespaces/:namespace/functions/:name/logs",
    weight: 3,
    components: (caller) => ({
      path: functionPath(caller, { mustExist: false, suffix: "logs" }),
      query: queryString(functionLogsQuery, { strict: true }),
    }),
  },
  {
    method: "GET",
    path: "/v1/namespaces/:namespace/functions/:name/statistics",
    weight: 3,
    components: (caller) => ({
      path: functionPath(caller, { mustExist: true, suffix: "statistics" }),
      query: queryString(statisticsQuery, { strict: true }),
    }),
  },
  ...(["pause", "resume"] as const).map((action) => ({
    method: "POST",
    path: `/v1/namespaces/:namespace/functions/:name/dispatch/${action}`,
    weight: 3,
    components: (caller: Caller) => ({
      path: functionPath(caller, { mustExist: true, suffix: `dispatch/${action}` }),
      // The body of pause and resume is empty or `{}`, as replay's.
      body: jsonBody(replayObject, { limitBytes: MAX_DISPATCH_BODY_BYTES, emptyIsValid: true }),
    }),
  })),
  {
    method: "POST",
    path: "/v1/namespaces/:namespace/functions/:name/triggers",
    weight: 6,
    components: (caller) => ({
      path: functionPath(caller, { mustExist: true, suffix: "triggers" }),
      body: jsonBody(objectWithMutations(createTriggerSpecs, { strict: true }), {
        limitBytes: TRIGGER_BODY_LIMIT_BYTES,
      }),
    }),
  },
  {
    method: "GET",
    path: "/v1/namespaces/:namespace/functions/:name/triggers",
    weight: 3,
    components: (caller) => ({
      path: functionPath(caller, { mustExist: true, suffix: "triggers" }),
      query: queryString(listTriggersQuery, { strict: true }),
    }),
  },
  {
    method: "GET",
    path: "/v1/namespaces/:namespace/functions/:name/triggers/:type/:trigger",
    weight: 2,
    components: (caller) => ({ path: triggerPath(caller) }),
  },
  {
    method: "PATCH",
    path: "/v1/namespaces/:namespace/functions/:name/triggers/:type/:trigger",
    weight: 4,
    components: (caller) => ({
      path: triggerPath(caller),
      body: jsonBody(objectWithMutations(updateTriggerSpecs, { strict: true }), {
        limitBytes: TRIGGER_BODY_LIMIT_BYTES,
      }),
    }),
  },
  {
    method: "DELETE",
    path: "/v1/namespaces/:namespace/functions/:name/triggers/:type/:trigger",
    weight: 2,
    components: (caller) => ({ path: triggerPath(caller) }),
  },
  {
    method: "POST",
    path: "/v1/namespaces/:namespace/functions/:name/versions",
    weight: 3,
    components: (caller) => ({
      path: functionPath(caller, { mustExist: true, suffix: "versions" }),
      body: jsonBody(objectWithMutations(publishVersionSpecs, { strict: true }), {
        limitBytes: VERSION_BODY_LIMIT_BYTES,
        emptyIsValid: true,
      }),
    }),
  },
  {
    method: "GET",
    path: "/v1/namespaces/:namespace/functions/:name/versions",
    weight: 2,
    components: (caller) => ({
      path: functionPath(caller, { mustExist: true, suffix: "versions" }),
      query: queryString(listVersionsQuery, { strict: false }),
    }),
  },
  {
    method: "GET",
    path: "/v1/namespaces/:namespace/functions/:name/versions/:version",
    weight: 2,
    components: (caller) => ({ path: functionChildPath(caller, "versions", versionSegment(false)) }),
  },
  {
    method: "DELETE",
    path: "/v1/namespaces/:namespace/functions/:name/versions/:version",
    weight: 2,
    components: (caller) => ({ path: functionChildPath(caller, "versions", versionSegment(true)) }),
  },
  {
    method: "POST",
    path: "/v1/namespaces/:namespace/functions/:name/aliases",
    weight: 4,
    components: (caller) => ({
      path: functionPath(caller, { mustExist: true, suffix: "aliases" }),
      body: jsonBody(objectWithMutations(createAliasSpecs, { strict: true }), { limitBytes: VERSION_BODY_LIMIT_BYTES }),
    }),
  },
  {
    method: "GET",
    path: "/v1/namespaces/:namespace/functions/:name/aliases",
    weight: 2,
    components: (caller) => ({
      path: functionPath(caller, { mustExist: true, suffix: "aliases" }),
      query: queryString(listAliasesQuery, { strict: false }),
    }),
  },
  {
    method: "GET",
    path: "/v1/namespaces/:namespace/functions/:name/aliases/:alias",
    weight: 2,
    components: (caller) => ({ path: functionChildPath(caller, "aliases", aliasSegment(false)) }),
  },
  {
    method: "PUT",
    path: "/v1/namespaces/:namespace/functions/:name/aliases/:alias",
    weight: 4,
    components: (caller) => ({
      path: functionChildPath(caller, "aliases", aliasSegment(false)),
      body: jsonBody(objectWithMutations(aliasRoutingSpecs, { strict: true }), {
        limitBytes: VERSION_BODY_LIMIT_BYTES,
      }),
    }),
  },
  {
    method: "DELETE",
    path: "/v1/namespaces/:namespace/functions/:name/aliases/:alias",
    weight: 2,
    components: (caller) => ({ path: functionChildPath(caller, "aliases", aliasSegment(true)) }),
  },
  {
    method: "POST",
    path: "/v1/events/:requestId/terminate",
    weight: 5,
    components: (caller) => ({
      path: eventSegment(caller, true).map((id) => joinPath(["/v1/events", id, "terminate"])),
      body: jsonBody(terminateObject, {
        limitBytes: TERMINATE_BODY_LIMIT_BYTES,
        emptyIsValid: true,
      }),
    }),
  },
  {
    method: "POST",
    path: "/v1/namespaces/:namespace/bulk-terminations",
    weight: 4,
    components: (caller) => ({
      path: namespaceSegment(caller).map((namespace) => joinPath(["/v1/namespaces", namespace, "bulk-terminations"])),
      body: jsonBody(bulkTerminateObject, { limitBytes: MAX_BULK_TERMINATE_BODY_BYTES }),
    }),
  },
  ...(["GET", "DELETE"] as const).map((method) => ({
    method,
    path: "/v1/namespaces/:namespace/bulk-terminations/:jobId",
    weight: 2,
    components: (caller: Caller) => ({
      path: fc.tuple(namespaceSegment(caller), fc.constantFrom(...BULK_JOB_IDS)).map(([namespace, jobId]) => ({
        value: `/v1/namespaces/${namespace.value}/bulk-terminations/${jobId}`,
        bad: [...namespace.bad, `no job ${excerpt(jobId)}`],
      })),
    }),
  })),
  {
    method: "PUT",
    path: "/v1/namespaces/:namespace/settings",
    weight: 4,
    components: (caller) => ({
      path: namespaceSegment(caller).map((namespace) => joinPath(["/v1/namespaces", namespace, "settings"])),
      body: jsonBody(objectWithMutations(namespaceSettingsSpecs, { strict: true }), {
        limitBytes: MAX_SETTINGS_BODY_BYTES,
      }),
    }),
  },
  {
    method: "GET",
    path: "/v1/namespaces/:namespace/settings",
    weight: 1,
    components: (caller) => ({
      path: namespaceSegment(caller).map((namespace) => joinPath(["/v1/namespaces", namespace, "settings"])),
    }),
  },
  {
    method: "GET",
    path: "/v1/namespaces/:namespace/archive/events",
    weight: 2,
    components: (caller) => ({
      path: namespaceSegment(caller).map((namespace) => joinPath(["/v1/namespaces", namespace, "archive/events"])),
      query: queryString(archiveListQuery, { strict: true }),
    }),
  },
  ...(["", "/logs"] as const).map((suffix) => ({
    method: "GET",
    path: `/v1/namespaces/:namespace/archive/events/:requestId${suffix}`,
    weight: 2,
    components: (caller: Caller) => ({
      path: fc.tuple(namespaceSegment(caller), fc.constantFrom(...ARCHIVE_REQUEST_IDS)).map(([namespace, entry]) => ({
        value: `/v1/namespaces/${namespace.value}/archive/events/${entry.id}${suffix}`,
        bad: [...namespace.bad, entry.bad],
      })),
      ...(suffix === "/logs" ? { query: queryString(archiveLogQuery, { strict: true }) } : {}),
    }),
  })),
  {
    method: "DELETE",
    path: "/v1/namespaces/:namespace/archive/events/:requestId",
    weight: 1,
    components: (caller: Caller) => ({
      path: fc.tuple(namespaceSegment(caller), fc.constantFrom(...ARCHIVE_REQUEST_IDS)).map(([namespace, entry]) => ({
        value: `/v1/namespaces/${namespace.value}/archive/events/${entry.id}`,
        bad: [...namespace.bad, entry.bad],
      })),
    }),
  },
  {
    method: "GET",
    path: "/v1/events/:requestId",
    weight: 3,
    components: (caller) => ({ path: eventSegment(caller, false).map((id) => joinPath(["/v1/events", id])) }),
  },
  {
    method: "GET",
    path: "/v1/events/:requestId/logs",
    weight: 3,
    components: (caller) => ({
      path: eventSegment(caller, false).map((id) => joinPath(["/v1/events", id, "logs"])),
      query: queryString(eventLogsQuery, { strict: true }),
    }),
  },
  {
    method: "GET",
    path: "/v1/events/:requestId/logs.txt",
    weight: 2,
    components: (caller) => ({
      path: eventSegment(caller, false).map((id) => joinPath(["/v1/events", id, "logs.txt"])),
      query: queryString(logFilterQuery, { strict: true }),
    }),
  },
  {
    method: "GET",
    path: "/v1/events/:requestId/logs/stream",
    weight: 3,
    components: (caller) => ({
      path: eventSegment(caller, false).map((id) => joinPath(["/v1/events", id, "logs", "stream"])),
      query: queryString(followQuery, { strict: true }),
      headers: fc
        .option(fc.constantFrom(...BAD_LAST_EVENT_IDS), { freq: 3 })
        .map((value) =>
          value === null
            ? { value: {}, bad: [] }
            : { value: { "last-event-id": value }, bad: [`Last-Event-ID ${excerpt(value)}`] },
        ),
    }),
  },
  {
    method: "GET",
    path: "/v1/events/:requestId/payload",
    weight: 3,
    components: (caller) => ({
      path: eventSegment(caller, false).map((id) => joinPath(["/v1/events", id, "payload"])),
    }),
  },
  {
    method: "GET",
    path: "/v1/events/:requestId/deliveries",
    weight: 3,
    components: (caller) => ({
      path: eventSegment(caller, false).map((id) => joinPath(["/v1/events", id, "deliveries"])),
    }),
  },
  {
    method: "POST",
    path: "/v1/events/:requestId/replay",
    weight: 5,
    components: (caller) => ({
      path: eventSegment(caller, false).map((id) => joinPath(["/v1/events", id, "replay"])),
      body: jsonBody(replayObject, { limitBytes: REPLAY_BODY_LIMIT_BYTES, emptyIsValid: true }),
    }),
  },
  {
    method: "POST",
    path: "/v1/admin/credentials",
    weight: 4,
    adminOnly: true,
    components: () => ({
      path: fc.constant<Judged<string>>({ value: "/v1/admin/credentials", bad: [] }),
      body: jsonBody(objectWithMutations(credentialSpecs, { strict: true }), {
        limitBytes: CREDENTIALS_BODY_LIMIT_BYTES,
      }),
    }),
  },
  {
    method: "GET",
    path: "/v1/admin/credentials",
    weight: 1,
    adminOnly: true,
    components: () => ({ path: fc.constant<Judged<string>>({ value: "/v1/admin/credentials", bad: [] }) }),
  },
  {
    method: "POST",
    path: "/v1/admin/credentials/reencrypt",
    weight: 1,
    adminOnly: true,
    components: () => ({
      path: fc.constant<Judged<string>>({ value: "/v1/admin/credentials/reencrypt", bad: [] }),
    }),
  },
  {
    method: "DELETE",
    path: "/v1/admin/credentials/:secretId",
    weight: 2,
    adminOnly: true,
    components: (caller) => ({
      path: secretIdSegment(caller).map((id) => joinPath(["/v1/admin/credentials", id])),
    }),
  },
];

/** Diagnostics routes: mounted but refused unless DIAGNOSTICS_ENABLED (false in this pool). */
const DIAGNOSTICS_ROUTES: readonly { method: string; path: string; build: (segment: string) => string }[] = [
  { method: "POST", path: "/_diagnostics/container-self-check", build: () => "/_diagnostics/container-self-check" },
  { method: "GET", path: "/_diagnostics/instances/:name", build: (s) => `/_diagnostics/instances/${s}` },
  {
    method: "GET",
    path: "/_diagnostics/events/:requestId/log-stats",
    build: (s) => `/_diagnostics/events/${s}/log-stats`,
  },
  {
    method: "POST",
    path: "/_diagnostics/events/:requestId/expire",
    build: (s) => `/_diagnostics/events/${s}/expire`,
  },
  {
    method: "POST",
    path: "/_diagnostics/instances/:name/interrupt-relay",
    build: (s) => `/_diagnostics/instances/${s}/interrupt-relay`,
  },
  {
    method: "GET",
    path: "/_diagnostics/schedulers/:namespace/:function",
    build: (s) => `/_diagnostics/schedulers/${s}/${s}`,
  },
  { method: "POST", path: "/_diagnostics/seed-index", build: () => "/_diagnostics/seed-index" },
  { method: "GET", path: "/_diagnostics/costs", build: () => "/_diagnostics/costs" },
  { method: "POST", path: "/_diagnostics/costs/reset", build: () => "/_diagnostics/costs/reset" },
  { method: "POST", path: "/_diagnostics/redeliver", build: () => "/_diagnostics/redeliver" },
  {
    method: "POST",
    path: "/_diagnostics/instances/:name/holds",
    build: (s) => `/_diagnostics/instances/${s}/holds`,
  },
  {
    method: "GET",
    path: "/_diagnostics/instances/:name/holds/:requestId",
    build: (s) => `/_diagnostics/instances/${s}/holds/${s}`,
  },
  {
    method: "DELETE",
    path: "/_diagnostics/instances/:name/holds/:requestId",
    build: (s) => `/_diagnostics/instances/${s}/holds/${s}`,
  },
  { method: "GET", path: "/_diagnostics/dispatch-consumer", build: () => "/_diagnostics/dispatch-consumer" },
  {
    method: "POST",
    path: "/_diagnostics/dispatch-queue/malformed",
    build: () => "/_diagnostics/dispatch-queue/malformed",
  },
  {
    method: "POST",
    path: "/_diagnostics/trigger-queues/:queue/messages",
    build: (s) => `/_diagnostics/trigger-queues/${s}/messages`,
  },
  { method: "POST", path: "/_diagnostics/r2/objects", build: () => "/_diagnostics/r2/objects" },
  { method: "GET", path: "/_diagnostics/trigger-consumers", build: () => "/_diagnostics/trigger-consumers" },
];

/**
 * True for "." and ".." however encoded: the URL parser resolves them before the Worker sees the
 * path, so `/_diagnostics/schedulers/../..` would be a request for `/`.
 */
function isDotSegment(segment: string): boolean {
  const decoded = decodeSegment(segment.toLowerCase().replaceAll("%2e", "."));
  return decoded === "." || decoded === "..";
}

/** Bodies for diagnostics routes: what would write index rows or queue messages if they were open. */
const DIAGNOSTICS_BODIES: readonly string[] = [
  '{"rows":[{"requestId":"x"}]}',
  '{"rows":"x"}',
  '{"requestId":"5eed0000-0000-4000-8000-000000000002"}',
  "{",
  "[]",
];

const diagnosticsCase: fc.Arbitrary<FuzzCase> = fc
  .record({
    auth: authArb,
    route: fc.constantFrom(...DIAGNOSTICS_ROUTES),
    segment: fc.constantFrom("health-probe", ...BAD_SEGMENTS.filter((segment) => !isDotSegment(segment))),
    body: fc.constantFrom(...DIAGNOSTICS_BODIES),
  })
  .map(({ auth, route, segment, body }) => ({
    route: `${route.method} ${route.path}`,
    method: route.method,
    target: route.build(segment),
    auth: auth.value,
    body: route.method === "GET" ? { kind: "none" as const } : { kind: "text" as const, text: body },
    headers: { "content-type": "application/json" },
    tencent: false,
    malformations: [...auth.bad, "diagnostics are disabled"],
  }));

/** Methods a function URL serves (api/routes/function-urls.ts FUNCTION_URL_METHODS). */
const FUNCTION_URL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;
/** The function URL routes: the URL's root and any subpath. */
const FUNCTION_URL_ROUTES = ["/url/:urlId", "/url/:urlId/*"] as const;
/** Subpaths and queries after a function URL's id. */
const FUNCTION_URL_SUBPATHS: readonly string[] = ["/a", "/a/b/c?x=1&x=2", "/%00", "/..%2f..%2fv1", "/?q=%ZZ", "/名"];

/**
 * Requests to function URLs. The pass creates no http trigger, so every URL id is unknown (a
 * random 128-bit id, or a malformed one): each answer must be the same 404, whatever the method,
 * credentials, subpath or body (an oversized one included), and no event may be created.
 */
const functionUrlCase: fc.Arbitrary<FuzzCase> = fc
  .record({
    auth: authArb,
    method: fc.constantFrom(...FUNCTION_URL_METHODS),
    route: fc.constantFrom(...FUNCTION_URL_ROUTES),
    id: fc.oneof(
      fc.stringMatching(/^[0-9a-f]{32}$/),
      fc.constantFrom(...BAD_SEGMENTS.filter((segment) => segment !== "" && !isDotSegment(segment))),
    ),
    subpath: fc.constantFrom(...FUNCTION_URL_SUBPATHS),
    body: fc.oneof(
      fc.constantFrom<BodySpec>({ kind: "text", text: "{}" }, { kind: "text", text: "\u0000\uffff" }),
      fc.boolean().map<BodySpec>((streamed) => ({
        kind: "oversized",
        prefix: "",
        bytes: MAX_ASYNC_PAYLOAD_BYTES + 1,
        streamed,
      })),
    ),
    preflight: fc.boolean(),
  })
  .map(({ auth, method, route, id, subpath, body, preflight }) => ({
    route: `${method} ${route}`,
    method,
    target: route === "/url/:urlId" ? `/url/${id}` : `/url/${id}${subpath}`,
    auth: auth.value,
    body: method === "GET" || method === "OPTIONS" ? { kind: "none" as const } : body,
    headers: (method === "OPTIONS" && preflight
      ? { origin: "https://fuzz.test", "access-control-request-method": "POST" }
      : { "content-type": "application/octet-stream" }) as Record<string, string>,
    tencent: false,
    malformations: [...auth.bad, `no function URL ${excerpt(id)}`],
  }));

/** Paths with the methods they are not served with (Hono answers 404), and paths served by nothing. */
const WRONG_METHODS: readonly { path: string; methods: readonly string[] }[] = [
  { path: "/healthz", methods: ["POST", "PUT", "PATCH", "DELETE"] },
  { path: "/v1/admin/credentials", methods: ["PUT", "PATCH", "DELETE"] },
  { path: `/v1/admin/credentials/${VICTIM_ID_TOKEN}`, methods: ["GET", "POST", "PUT", "PATCH"] },
  { path: `/v1/namespaces/${SCOPED_NAMESPACE}/functions`, methods: ["PUT", "PATCH", "DELETE"] },
  { path: `/v1/namespaces/${SCOPED_NAMESPACE}/functions/fuzz-fn`, methods: ["POST", "PUT"] },
  { path: `/v1/namespaces/${SCOPED_NAMESPACE}/functions/fuzz-fn/code`, methods: ["GET", "POST", "PATCH", "DELETE"] },
  { path: `/v1/namespaces/${SCOPED_NAMESPACE}/functions/fuzz-fn/invocations`, methods: ["GET", "PUT", "DELETE"] },
  {
    path: `/v1/namespaces/${SCOPED_NAMESPACE}/functions/fuzz-fn/invocations/sync`,
    methods: ["GET", "PUT", "DELETE"],
  },
  { path: `/v1/namespaces/${SCOPED_NAMESPACE}/functions/fuzz-fn/events`, methods: ["POST", "DELETE"] },
  { path: `/v1/namespaces/${SCOPED_NAMESPACE}/functions/fuzz-fn/logs`, methods: ["POST", "DELETE"] },
  { path: `/v1/namespaces/${SCOPED_NAMESPACE}/functions/fuzz-fn/dispatch/pause`, methods: ["GET", "PUT", "DELETE"] },
  { path: `/v1/namespaces/${SCOPED_NAMESPACE}/functions/fuzz-fn/dispatch/resume`, methods: ["GET", "PUT", "DELETE"] },
  { path: `/v1/namespaces/${SCOPED_NAMESPACE}/functions/fuzz-fn/dispatch`, methods: ["GET", "POST"] },
  { path: `/v1/events/${FOREIGN_QUEUED_EVENT}`, methods: ["POST", "PUT", "PATCH", "DELETE"] },
  { path: `/v1/events/${FOREIGN_QUEUED_EVENT}/terminate`, methods: ["GET", "PUT", "DELETE"] },
  { path: `/v1/namespaces/${SCOPED_NAMESPACE}/bulk-terminations`, methods: ["GET", "PUT", "DELETE"] },
  { path: `/v1/namespaces/${SCOPED_NAMESPACE}/settings`, methods: ["POST", "PATCH", "DELETE"] },
  { path: `/v1/namespaces/${SCOPED_NAMESPACE}/archive/events`, methods: ["POST", "PUT", "DELETE"] },
  {
    path: `/v1/namespaces/${SCOPED_NAMESPACE}/bulk-terminations/00000000-0000-4000-8000-000000000000`,
    methods: ["POST", "PUT"],
  },
  { path: `/v1/events/${OWN_ENDED_EVENT}/logs`, methods: ["POST", "DELETE"] },
  { path: `/v1/events/${OWN_ENDED_EVENT}/logs/stream`, methods: ["POST"] },
  { path: `/v1/events/${OWN_ENDED_EVENT}/logs.txt`, methods: ["POST", "DELETE"] },
  { path: `/v1/events/${OWN_ENDED_EVENT}/payload`, methods: ["POST", "PUT", "DELETE"] },
  { path: `/v1/events/${OWN_ENDED_EVENT}/replay`, methods: ["GET", "PUT", "DELETE"] },
  { path: `/v1/events/${OWN_ENDED_EVENT}/deliveries`, methods: ["POST", "PUT", "DELETE"] },
  { path: "/v1", methods: ["GET", "POST"] },
  { path: "/v1/", methods: ["GET"] },
  { path: "/v1/namespaces", methods: ["GET"] },
  { path: "/v1/functions", methods: ["GET", "POST"] },
  { path: "/v2/namespaces/fuzz-scoped/functions", methods: ["GET"] },
  { path: "/v1/namespaces/fuzz-scoped/functions/fuzz-fn/code/extra", methods: ["PUT"] },
  { path: "/v1/admin", methods: ["GET"] },
  { path: "/index.html", methods: ["GET"] },
];

const wrongMethodCase: fc.Arbitrary<FuzzCase> = fc
  .record({ auth: authArb, entry: fc.constantFrom(...WRONG_METHODS), pick: fc.nat(), options: fc.boolean() })
  .map(({ auth, entry, pick, options }) => {
    const method = options ? "OPTIONS" : (entry.methods[pick % entry.methods.length] as string);
    return {
      route: `${method} ${entry.path} (no such route)`,
      method,
      target: entry.path,
      auth: auth.value,
      body:
        method === "GET" || method === "OPTIONS" ? { kind: "none" as const } : { kind: "text" as const, text: "{}" },
      headers: { "content-type": "application/json" },
      tencent: false,
      malformations: [...auth.bad, `no route ${method} ${entry.path}`],
    };
  });

/** Generates the component (or nothing when the route has none), malformed when it is the fault site. */
function optional<T>(arb: fc.Arbitrary<Judged<T>> | undefined, site: string, name: string) {
  return arb ? prefer(arb, site, name) : fc.constant(undefined);
}

/** A malformed request for one route, usually with exactly one fault. */
function restRouteCase(route: (typeof REST_ROUTES)[number]): fc.Arbitrary<FuzzCase> {
  const probe = route.components("admin");
  const sites = [
    "auth",
    "path",
    ...(probe.query ? ["query"] : []),
    ...(probe.body ? ["body"] : []),
    ...(probe.headers ? ["headers"] : []),
    ...(route.adminOnly ? ["caller"] : []),
  ];
  return faultSiteArb(sites).chain((site) =>
    prefer(authArb, site, "auth").chain((auth) => {
      const caller = judgedCaller(auth.value);
      const components = route.components(caller);
      return fc
        .record({
          path: prefer(components.path, site, "path"),
          query: optional(components.query, site, "query"),
          body: optional(components.body, site, "body"),
          headers: optional(components.headers, site, "headers"),
        })
        .map((parts) => assemble(auth, route, { ...parts, callerBad: route.adminOnly ? notAdmin(caller) : [] }));
    }),
  );
}

/** A malformed request for one REST route, chosen by weight. */
export const restCaseArb: fc.Arbitrary<FuzzCase> = fc.oneof(
  ...REST_ROUTES.map((route) => ({ weight: route.weight, arbitrary: restRouteCase(route) })),
  { weight: 6, arbitrary: diagnosticsCase },
  { weight: 3, arbitrary: wrongMethodCase },
  { weight: 1, arbitrary: functionUrlCase },
);

/** Routes every REST case label may name (for the coverage check). */
export const REST_ROUTE_LABELS: readonly string[] = [
  ...REST_ROUTES.map((route) => `${route.method} ${route.path}`),
  ...DIAGNOSTICS_ROUTES.map((route) => `${route.method} ${route.path}`),
  ...FUNCTION_URL_ROUTES.flatMap((path) => FUNCTION_URL_METHODS.map((method) => `${method} ${path}`)),
];

/** Paths of the API documentation (worker/api/docs.ts): GET only, no input, no credentials. */
export const DOCUMENTATION_PATHS: readonly string[] = ["/openapi.json", "/docs", "/docs/scalar.js"];

/** Paths of the web console (worker/api/console.ts): GET only, no credentials; the last takes a file name. */
export const CONSOLE_PATHS: readonly string[] = ["/console", "/console/", "/console/*"];

/** Routes without input but their path: health, the documentation and the console. */
export const INPUTLESS_PATHS: readonly string[] = ["/healthz", ...DOCUMENTATION_PATHS, ...CONSOLE_PATHS];

/** Console file names the console route refuses (traversal, other types, upper case): 404 each. */
const BAD_CONSOLE_FILES: readonly string[] = [
  "/console/..%2f..%2fwrangler.toml",
  "/console/%2e%2e/package.json",
  "/console/index.html",
  "/console/App.js",
  "/console/views/",
  "/console/x.js.map",
  `/console/${"a".repeat(300)}.json`,
];

/**
 * One request to each function URL route (every method, both paths, an unknown URL id) and to each
 * diagnostics route: sent once each, not generated, so these many small routes are covered whatever
 * the seed (the generated cases add variety).
 */
function everyPublicAndDiagnosticsRouteOnce(): FuzzCase[] {
  const urls = FUNCTION_URL_ROUTES.flatMap((route) =>
    FUNCTION_URL_METHODS.map(
      (method): FuzzCase => ({
        route: `${method} ${route}`,
        method,
        target: route === "/url/:urlId" ? `/url/${"0".repeat(32)}` : `/url/${"0".repeat(32)}/a/b?c=1`,
        auth: { kind: "header", header: undefined },
        body: method === "GET" || method === "OPTIONS" ? { kind: "none" } : { kind: "text", text: "{}" },
        headers: {},
        tencent: false,
        malformations: ["no function URL 000…"],
      }),
    ),
  );
  const diagnostics = DIAGNOSTICS_ROUTES.map(
    (route): FuzzCase => ({
      route: `${route.method} ${route.path}`,
      method: route.method,
      target: route.build("health-probe"),
      auth: { kind: "bearer", caller: "admin" },
      body: route.method === "GET" ? { kind: "none" } : { kind: "text", text: "{}" },
      headers: { "content-type": "application/json" },
      tencent: false,
      malformations: ["diagnostics are disabled"],
    }),
  );
  return [...urls, ...diagnostics];
}

/**
 * A request with a method each input-less path is not served with, and the console's refused file
 * names: sent once each, not generated (so each of these routes is covered whatever the seed); and
 * one request to each function URL and diagnostics route (everyPublicAndDiagnosticsRouteOnce).
 */
export function documentationWrongMethodCases(): FuzzCase[] {
  const badFiles: FuzzCase[] = BAD_CONSOLE_FILES.map((target) => ({
    route: "GET /console/*",
    method: "GET",
    target,
    auth: { kind: "header", header: undefined },
    body: { kind: "none" },
    headers: {},
    tencent: false,
    malformations: [`no console file ${target}`],
  }));
  return [
    ...badFiles,
    ...INPUTLESS_PATHS.map(
      (path): FuzzCase => ({
        route: `POST ${path} (no such route)`,
        method: "POST",
        target: path,
        auth: { kind: "header", header: undefined },
        body: { kind: "text", text: "{}" },
        headers: { "content-type": "application/json" },
        tencent: false,
        malformations: [`no route POST ${path}`],
      }),
    ),
    ...everyPublicAndDiagnosticsRouteOnce(),
  ];
}

/** Oversized bodies of the routes whose limit is the 32 MB JSON limit: sent once each, not generated. */
export function oversizedCodeCases(): FuzzCase[] {
  const createPrefix = JSON.stringify({ name: "fzoversized", runtime: "Nodejs22", code: { zipFile: OTHER_ZIP } });
  const bytes = CODE_BODY_LIMIT_BYTES + 1;
  return [
    {
      route: "POST /v1/namespaces/:namespace/functions",
      method: "POST",
      target: `/v1/namespaces/${SCOPED_NAMESPACE}/functions`,
      auth: { kind: "bearer", caller: "admin" },
      body: { kind: "oversized", prefix: createPrefix, bytes, streamed: true },
      headers: { "content-type": "application/json" },
      tencent: false,
      malformations: [`valid create body padded to ${bytes} bytes (streamed)`],
    },
    {
      route: "PUT /v1/namespaces/:namespace/functions/:name/code",
      method: "PUT",
      target: `/v1/namespaces/${SCOPED_NAMESPACE}/functions/fuzz-fn/code`,
      auth: { kind: "bearer", caller: "admin" },
      body: { kind: "oversized", prefix: JSON.stringify({ zipFile: OTHER_ZIP }), bytes, streamed: false },
      headers: { "content-type": "application/json" },
      tencent: false,
      malformations: [`valid code body padded to ${bytes} bytes`],
    },
  ];
}
