// Generators of malformed requests for the Tencent Cloud API endpoint (`POST /`, worker/tcapi):
// its 11 actions with parameters of wrong types and values, unknown and prototype-named actions,
// wrong versions, broken credentials and TC3 signatures, and bodies that are not JSON objects.
import fc from "fast-check";
import { MAX_ASYNC_PAYLOAD_BYTES } from "../../worker/events/invoke";
import { FUNCTION_NAME_PATTERN, NAMESPACE_PATTERN } from "../../worker/shared/names";
import { MAX_JSON_BODY_BYTES } from "../../worker/shared/validation";
import { TC_API_VERSION } from "../../worker/tcapi/envelope";
import {
  excerpt,
  type FieldSpec,
  faultSiteArb,
  INVALID_JSON_TEXTS,
  type Judged,
  longString,
  NON_OBJECT_JSON_TEXTS,
  NOT_BOOLEAN,
  NOT_NUMBER,
  NOT_OBJECT,
  NOT_SAFE_INTEGER,
  NOT_STRING,
  objectWithMutations,
  prefer,
  toJsonText,
} from "./fuzz-fields";
import {
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
  SCOPED_NAMESPACE,
} from "./fuzz-model";
import { OTHER_ZIP } from "./fuzz-rest";

/** The route label of the Tencent endpoint in the app's route table. */
export const TENCENT_ROUTE = "ALL /";

/** Names an attacker tries as actions: inherited properties of every object. */
export const PROTOTYPE_ACTIONS: readonly string[] = [
  "constructor",
  "__proto__",
  "toString",
  "hasOwnProperty",
  "valueOf",
  "isPrototypeOf",
  "propertyIsEnumerable",
  "toLocaleString",
  "__defineGetter__",
  "__lookupGetter__",
  "prototype",
];
/** Actions SCF may have but this endpoint does not: each must be InvalidAction. */
export const UNKNOWN_ACTIONS: readonly string[] = [
  "PutProvisionedConcurrencyConfig",
  "createfunction",
  "CREATEFUNCTION",
  "Invoke2",
  "ListNamespaces",
  "DescribeInstances",
  "GetFunctionAddress",
  longString(300, "A"),
];
/** X-TC-Version values that are not the SCF version this endpoint speaks. */
const BAD_VERSIONS: readonly string[] = [
  "",
  "2017-03-12",
  "2018-04-17",
  "2018-4-16",
  "latest",
  "2018-04-16,2017-03-12",
];

/** Namespace values that break the namespace rule (or are not strings). */
const BAD_NAMESPACES: readonly unknown[] = [
  "a/b",
  "..",
  "../default",
  "名前",
  longString(500, "n"),
  "-a",
  "a b",
  " ",
  "*",
  "__proto__",
  "default\u0000",
  ...NOT_STRING,
];
/** FunctionName values that break the function name rule (or are not strings). */
const BAD_FUNCTION_NAMES: readonly unknown[] = [
  "a/b",
  "..",
  "",
  "名前",
  longString(500, "f"),
  "-ab",
  "ab-",
  "a",
  "1abc",
  "__proto__",
  "fuzz-fn/../fuzz-other",
  ...NOT_STRING,
];

/** Namespace as the action sees it (absent or "" is "default"). */
function effectiveNamespace(value: unknown, present: boolean): unknown {
  return !present || value === "" ? "default" : value;
}

/** Judges a Namespace parameter for the caller. */
function judgeNamespace(value: unknown, present: boolean, caller: Caller): string[] {
  const namespace = effectiveNamespace(value, present);
  if (typeof namespace !== "string" || !NAMESPACE_PATTERN.test(namespace)) return [`Namespace=${excerpt(value)}`];
  return caller === "scoped" && namespace !== SCOPED_NAMESPACE ? [`Namespace ${namespace} is not the key's`] : [];
}

/**
 * What FunctionName an action needs to be well formed: a function that exists (most actions), one
 * that does not (CreateFunction), or any valid name (the list actions).
 */
type FunctionMode = "existing" | "new" | "any";

/** A parameter that is sent with a value, or left out. */
type Presence = { present: boolean; value?: unknown };

/** The target fields (Namespace, FunctionName) of an action, judged for the caller. */
function targetFields(caller: Caller, mode: FunctionMode): fc.Arbitrary<Judged<Record<string, unknown>>> {
  const namespace = fc.oneof(
    {
      weight: 6,
      arbitrary: fc.constant<Presence>({ present: true, value: SCOPED_NAMESPACE }),
    },
    {
      weight: 3,
      arbitrary: fc.constant<Presence>({ present: true, value: FOREIGN_NAMESPACE }),
    },
    { weight: 1, arbitrary: fc.constant<Presence>({ present: false }) },
    { weight: 1, arbitrary: fc.constant<Presence>({ present: true, value: "" }) },
    { weight: 3, arbitrary: fc.constantFrom(...BAD_NAMESPACES).map((value) => ({ present: true, value })) },
  );
  return namespace.chain((ns) => {
    const effective = effectiveNamespace(ns.value, ns.present);
    const fixture = typeof effective === "string" ? FIXTURE_FUNCTION[effective] : undefined;
    const name = fc.oneof(
      {
        weight: 6,
        arbitrary:
          mode === "new"
            ? fc.stringMatching(/^fz[a-z0-9]{2,8}$/).map((value) => ({ present: true, value }))
            : fc.constant<Presence>({ present: true, value: fixture ?? MISSING_FUNCTION }),
      },
      {
        weight: 1,
        arbitrary: fc.constant<Presence>({
          present: true,
          value: mode === "new" ? (fixture ?? "fuzz-fn") : MISSING_FUNCTION,
        }),
      },
      { weight: 1, arbitrary: fc.constant<Presence>({ present: false }) },
      { weight: 3, arbitrary: fc.constantFrom(...BAD_FUNCTION_NAMES).map((value) => ({ present: true, value })) },
    );
    return name.map((fn) => {
      const value: Record<string, unknown> = {};
      if (ns.present) value.Namespace = ns.value;
      if (fn.present) value.FunctionName = fn.value;
      const bad = judgeNamespace(ns.value, ns.present, caller);
      if (!fn.present) bad.push("FunctionName missing");
      else if (typeof fn.value !== "string" || !FUNCTION_NAME_PATTERN.test(fn.value)) {
        bad.push(`FunctionName=${excerpt(fn.value)}`);
      } else if (mode === "existing" && fn.value !== fixture) bad.push(`no function ${fn.value}`);
      else if (mode === "new" && fn.value === fixture) bad.push(`function ${fn.value} exists`);
      return { value, bad };
    });
  });
}

const TC_TIME_VALID = fc.constantFrom("2024-01-01 00:00:00", "2030-12-31 23:59:59");
const TC_TIME_INVALID: readonly unknown[] = ["yesterday", "2024-13-01 00:00:00", "2024-01-01T00:00:00Z"];

const offsetSpec: FieldSpec = {
  valid: fc.constantFrom(0, 5),
  wrongType: NOT_NUMBER,
  invalid: [...NOT_SAFE_INTEGER, -1],
};
const limitSpec: FieldSpec = {
  valid: fc.constantFrom(1, 20, 100),
  wrongType: NOT_NUMBER,
  invalid: [...NOT_SAFE_INTEGER, 0, 101, -1],
};

const environmentSpec: FieldSpec = {
  valid: fc.constantFrom({ Variables: [] }, { Variables: [{ Key: "STAGE", Value: "dev" }] }),
  wrongType: NOT_OBJECT,
  invalid: [
    { Variables: "x" },
    { Variables: [{ Key: 1, Value: "x" }] },
    { Variables: [{ Key: "1A", Value: "x" }] },
    { Variables: [{ Key: "A" }] },
    { Variables: [{ Key: "A", Value: 5 }] },
    { Variables: Array.from({ length: 101 }, (_, index) => ({ Key: `V${index}`, Value: "x" })) },
  ],
};

const configurationSpecs: Record<string, FieldSpec> = {
  Description: { valid: fc.constantFrom("", "fuzz"), wrongType: NOT_STRING, invalid: [longString(1001)] },
  MemorySize: { valid: fc.constantFrom(128, 256), wrongType: NOT_NUMBER, invalid: [...NOT_SAFE_INTEGER, 0, 63, 3073] },
  Timeout: { valid: fc.constantFrom(3, 600), wrongType: NOT_NUMBER, invalid: [...NOT_SAFE_INTEGER, 0, -1, 86_401] },
  Environment: environmentSpec,
  // This platform's extension: the function's idempotency window, seconds.
  IdempotencyWindow: { valid: fc.constantFrom(1, 86_400), wrongType: NOT_NUMBER, invalid: [0, -1, 1.5, 259_201] },
  // This platform's extension: the deadline warning, seconds before the timeout (valid ones are
  // under the smallest valid Timeout, 3).
  DeadlineWarningSeconds: { valid: fc.constantFrom(0, 2), wrongType: NOT_NUMBER, invalid: [-1, 1.5, 86_400] },
};

const zipFileInvalid: readonly unknown[] = ["!!not base64!!", btoa("not a zip"), "UEsDBA"];

/** A version parameter: the fixtures have only $LATEST. */
const versionRefInvalid: readonly unknown[] = ["", "0", "01", "v1", "$DEFAULT", longString(17, "1")];

/** An alias RoutingConfig: the fixtures have only $LATEST, so any additional version is refused. */
const routingConfigSpec: FieldSpec = {
  valid: fc.constantFrom({}, { AdditionalVersionWeights: [] }),
  wrongType: NOT_OBJECT,
  invalid: [
    { AdditionalVersionWeights: [{ Version: "$LATEST", Weight: 0.5 }] },
    { AdditionalVersionWeights: [{ Version: "7", Weight: 0.5 }] },
    { AdditionalVersionWeights: [{ Version: "$LATEST", Weight: 0 }] },
    { AdditionalVersionWeights: [{ Version: "$LATEST", Weight: 1.5 }] },
    { AdditionalVersionWeights: [{ Version: 1, Weight: 0.5 }] },
    { AdditionalVersionWeights: "x" },
    { AddtionVersionMatchs: [{ Version: "$LATEST", Key: "invoke.headers.User", Method: "exact", Expression: "a" }] },
  ],
};

const aliasDescriptionSpec: FieldSpec = {
  valid: fc.constantFrom("", "fuzz"),
  wrongType: NOT_STRING,
  invalid: [longString(1001)],
};

/** Version and alias actions (tcapi/version-actions.ts): the fixtures have $LATEST and $DEFAULT only. */
const VERSION_ACTION_SPECS: Readonly<Record<string, { mode: FunctionMode; specs: Record<string, FieldSpec> }>> = {
  PublishVersion: { mode: "existing", specs: { Description: aliasDescriptionSpec } },
  ListVersionByFunction: {
    mode: "existing",
    specs: {
      Offset: offsetSpec,
      Limit: limitSpec,
      Order: { valid: fc.constantFrom("ASC", "DESC"), wrongType: NOT_STRING, invalid: ["asc", "up", ""] },
      OrderBy: { valid: fc.constantFrom("AddTime", "ModTime"), wrongType: NOT_STRING, invalid: ["addTime", ""] },
    },
  },
  DeleteFunctionVersion: {
    mode: "existing",
    specs: {
      // No version exists in the fixtures: every Qualifier is refused ($LATEST cannot be deleted).
      Qualifier: { wrongType: NOT_STRING, invalid: ["$LATEST", "1", ...versionRefInvalid], required: true },
      ForceDelete: {
        valid: fc.constantFrom("true", "false", true),
        wrongType: [null, 1, [], {}],
        invalid: ["yes", "TRUE"],
      },
    },
  },
  CreateAlias: {
    mode: "existing",
    specs: {
      Name: {
        valid: fc.stringMatching(/^fz[a-z0-9]{1,8}$/),
        wrongType: NOT_STRING,
        invalid: ["", "1abc", "$DEFAULT", "a b", longString(65, "a")],
        required: true,
      },
      FunctionVersion: {
        valid: fc.constant("$LATEST"),
        wrongType: NOT_STRING,
        invalid: ["7", ...versionRefInvalid],
        required: true,
      },
      RoutingConfig: routingConfigSpec,
      Description: aliasDescriptionSpec,
    },
  },
  UpdateAlias: {
    mode: "existing",
    specs: {
      Name: {
        valid: fc.constant("$DEFAULT"),
        wrongType: NOT_STRING,
        invalid: ["", "1abc", "prod", "$LATEST", longString(65, "a")],
        required: true,
      },
      FunctionVersion: {
        valid: fc.constant("$LATEST"),
        wrongType: NOT_STRING,
        invalid: ["7", ...versionRefInvalid],
        required: true,
      },
      RoutingConfig: routingConfigSpec,
      Description: aliasDescriptionSpec,
    },
  },
  GetAlias: {
    mode: "existing",
    specs: {
      Name: {
        valid: fc.constant("$DEFAULT"),
        wrongType: NOT_STRING,
        invalid: ["", "prod", "1abc", longString(65, "a")],
        required: true,
      },
    },
  },
  ListAliases: {
    mode: "existing",
    specs: {
      FunctionVersion: { valid: fc.constantFrom("$LATEST", "1"), wrongType: NOT_STRING, invalid: versionRefInvalid },
      // Strings in SCF's SDK; numbers are accepted too.
      Offset: { valid: fc.constantFrom("0", "5", 0), wrongType: [null, true, [], {}], invalid: ["-1", "x", "1.5", -1] },
      Limit: {
        valid: fc.constantFrom("20", "100", 1),
        wrongType: [null, true, [], {}],
        invalid: ["0", "101", "x", 0, 101],
      },
    },
  },
  DeleteAlias: {
    mode: "existing",
    specs: {
      // No alias but $DEFAULT exists in the fixtures, and $DEFAULT cannot be deleted.
      Name: { wrongType: NOT_STRING, invalid: ["$DEFAULT", "prod", "", "1abc", longString(65, "a")], required: true },
    },
  },
};

/** Parameters of each action apart from its target, and how its target is judged. */
const ACTION_SPECS: Readonly<
  Record<string, { mode: FunctionMode | "event" | "none"; specs: Record<string, FieldSpec> }>
> = {
  CreateFunction: {
    mode: "new",
    specs: {
      Code: {
        valid: fc.constant({ ZipFile: OTHER_ZIP }),
        wrongType: NOT_OBJECT,
        invalid: [
          {},
          { ZipFile: 5 },
          { ZipFile: "" },
          ...zipFileInvalid.map((ZipFile) => ({ ZipFile })),
          { CosBucketName: "b" },
          { CosBucketName: "afp-uploads" },
          { CosObjectName: "fuzz/a.zip" },
          { ZipFile: OTHER_ZIP, CosBucketName: "afp-uploads", CosObjectName: "fuzz/a.zip" },
          { CosBucketName: "afp-code", CosObjectName: "fuzz/a.zip" },
          { CosBucketName: "afp-uploads", CosObjectName: "fuzz/never-uploaded.zip" },
          { CosBucketName: "afp-uploads", CosObjectName: 5 },
          // Image deployment (Code.ImageConfig): beside a package, malformed, unknown, another
          // namespace's (team-image: team-a only), or with a Runtime other than CustomImage.
          { ZipFile: OTHER_ZIP, ImageConfig: { ImageType: "personal", ImageUri: "flask-sample" } },
          { ImageConfig: { ImageType: "personal", ImageUri: "x/nope" } },
          { ImageConfig: { ImageType: "personal", ImageUri: "x/team-image" } },
          { ImageConfig: { ImageType: "public", ImageUri: "flask-sample" } },
          { ImageConfig: { ImageType: "personal", ImageUri: "flask-sample", ImagePort: -1 } },
          { ImageConfig: { ImageType: "personal", ImageUri: "flask-sample", Command: "p".repeat(257) } },
          { ImageConfig: { ImageType: "personal", ImageUri: "flask-sample", Args: "a".repeat(1025) } },
          { ImageConfig: { ImageType: "personal", ImageUri: "a".repeat(513) } },
          { ImageConfig: 5 },
        ],
        required: true,
      },
      Runtime: {
        valid: fc.constantFrom("Nodejs22", "Python3.11", "Nodejs18.15", "Python3.9", "CustomRuntime"),
        wrongType: NOT_STRING,
        invalid: ["", "Go1", "nodejs22", "Php7", "customruntime"],
        required: true,
      },
      Handler: {
        valid: fc.constant("index.main_handler"),
        wrongType: NOT_STRING,
        invalid: ["", "index", "a.1", "index.main handler"],
      },
      AsyncRunEnable: { valid: fc.constant("TRUE"), wrongType: NOT_STRING, invalid: [true, "yes", "true"] },
      ...configurationSpecs,
    },
  },
  GetFunction: {
    mode: "existing",
    specs: {
      // A version or alias: the fixtures have $LATEST and $DEFAULT only.
      Qualifier: {
        valid: fc.constantFrom("$LATEST", "$DEFAULT"),
        wrongType: NOT_STRING,
        invalid: ["7", "0", "prod", "$latest", longString(65, "q")],
      },
    },
  },
  ListFunctions: { mode: "none", specs: { Offset: offsetSpec, Limit: limitSpec } },
  UpdateFunctionConfiguration: {
    mode: "existing",
    specs: {
      ...configurationSpecs,
      Runtime: {
        valid: fc.constantFrom("Nodejs22", "Python3.11", "Nodejs16.13", "Python3.10"),
        wrongType: NOT_STRING,
        invalid: ["", "Go1", "Php7"],
      },
      // Present at all, it is refused: AsyncRunEnable is fixed at creation.
      AsyncRunEnable: { invalid: ["TRUE", "FALSE", true] },
    },
  },
  UpdateFunctionCode: {
    mode: "existing",
    specs: {
      Handler: {
        valid: fc.constant("index.main_handler"),
        wrongType: NOT_STRING,
        invalid: ["", "index", "a.1", ".index.main"],
      },
      ZipFile: { valid: fc.constant(OTHER_ZIP), wrongType: NOT_STRING, invalid: zipFileInvalid, required: true },
      // Code from an R2 object: beside ZipFile, or without its partner, always refused.
      CosBucketName: { wrongType: NOT_STRING, invalid: ["afp-uploads", "afp-code"] },
      CosObjectName: { wrongType: NOT_STRING, invalid: ["fuzz/a.zip"] },
      // An image beside ZipFile is refused; so is a runtime that is no code runtime.
      ImageConfig: { invalid: [{ ImageType: "personal", ImageUri: "flask-sample" }, 5, "x"] },
      Runtime: { wrongType: NOT_STRING, invalid: ["CustomImage", "Go1", ""] },
    },
  },
  DeleteFunction: { mode: "existing", specs: {} },
  Invoke: {
    mode: "existing",
    specs: {
      // Left out, it is RequestResponse: the fixtures run with async execution on, so it answers at once.
      InvocationType: {
        valid: fc.constantFrom("Event", "RequestResponse"),
        wrongType: NOT_STRING,
        invalid: ["event", "requestresponse", "", "DryRun"],
      },
      LogType: { valid: fc.constantFrom("Tail", "None", ""), wrongType: NOT_STRING, invalid: ["tail", "Full"] },
      Qualifier: { valid: fc.constant("$LATEST"), wrongType: NOT_STRING, invalid: ["", "v1", "1"] },
      ClientContext: {
        valid: fc.constantFrom('{"file":"a.mp4"}', "[]", ""),
        wrongType: NOT_STRING,
        invalid: ["{not json", JSON.stringify({ pad: "x".repeat(MAX_ASYNC_PAYLOAD_BYTES) })],
      },
      // This platform's extension (events/idempotency.ts): 1-128 letters, digits, -, _, . or :.
      IdempotencyKey: {
        valid: fc.stringMatching(/^[A-Za-z0-9_.:-]{1,128}$/),
        wrongType: NOT_STRING,
        invalid: ["", "a b", "a/b", longString(129, "k")],
      },
    },
  },
  ListAsyncEvents: {
    mode: "any",
    specs: {
      Qualifier: {
        valid: fc.constantFrom("$LATEST", "$DEFAULT", "1", "prod"),
        wrongType: NOT_STRING,
        invalid: ["", "a b", "$OTHER", longString(65, "q")],
      },
      InvokeType: {
        valid: fc.constantFrom(["OTHERS"], ["TRIGGER_TIMER", "APIGW"], ["CKAFKA_TRIGGER", "COS", "CMQ"]),
        invalid: ["OTHERS", [1], ["TIMER"], ["others"], [""], Array.from({ length: 11 }, () => "OTHERS"), {}],
      },
      Status: {
        valid: fc.constant(["RUNNING"]),
        invalid: ["RUNNING", ["DONE"], ["running"], Array.from({ length: 5 }, () => "FAILED")],
      },
      StartTimeInterval: {
        valid: TC_TIME_VALID.map((Start) => ({ Start })),
        wrongType: NOT_OBJECT,
        invalid: [{ Start: "yesterday" }, { End: 5 }],
      },
      EndTimeInterval: {
        valid: TC_TIME_VALID.map((End) => ({ End })),
        wrongType: NOT_OBJECT,
        invalid: [{ Start: "2024-13-01 00:00:00" }],
      },
      Order: { valid: fc.constantFrom("ASC", "DESC"), wrongType: NOT_STRING, invalid: ["asc", "up"] },
      Orderby: {
        valid: fc.constantFrom("StartTime", "EndTime"),
        wrongType: NOT_STRING,
        invalid: ["Start", "startTime"],
      },
      Offset: offsetSpec,
      Limit: limitSpec,
      InvokeRequestId: { valid: fc.constant(OWN_ENDED_EVENT), wrongType: NOT_STRING, invalid: [] },
    },
  },
  GetAsyncEventStatus: { mode: "event", specs: {} },
  TerminateAsyncEvent: {
    mode: "event",
    specs: { GraceShutdown: { valid: fc.boolean(), wrongType: NOT_BOOLEAN, invalid: [] } },
  },
  GetFunctionLogs: {
    mode: "any",
    specs: {
      Offset: offsetSpec,
      Limit: limitSpec,
      Order: { valid: fc.constantFrom("asc", "DESC"), wrongType: NOT_STRING, invalid: ["up", "Asc"] },
      Filter: {
        valid: fc.constantFrom({}, { RetCode: "is0" }, { RetCode: "not0" }),
        wrongType: NOT_OBJECT,
        invalid: [{ RetCode: "x" }, { RetCode: 5 }],
      },
      FunctionRequestId: { valid: fc.constant(OWN_ENDED_EVENT), wrongType: NOT_STRING, invalid: [] },
      Qualifier: {
        valid: fc.constantFrom("$LATEST", "$DEFAULT", "1", "prod"),
        wrongType: NOT_STRING,
        invalid: ["$latest", "a b", "0", longString(65, "q")],
      },
      StartTime: { valid: TC_TIME_VALID, wrongType: NOT_STRING, invalid: TC_TIME_INVALID },
      EndTime: { valid: TC_TIME_VALID, wrongType: NOT_STRING, invalid: TC_TIME_INVALID },
    },
  },
  ...VERSION_ACTION_SPECS,
};

/** A trigger's identifying parameters (TriggerName, Type, Qualifier); the fixtures have no triggers. */
const triggerTargetSpecs: Record<string, FieldSpec> = {
  TriggerName: {
    valid: fc.stringMatching(/^fz[a-z0-9_-]{1,10}$/),
    wrongType: NOT_STRING,
    invalid: ["", "1abc", "-ab", "a b", "a/b", "名前", "__proto__", longString(101, "t")],
    required: true,
  },
  Type: {
    valid: fc.constant("timer"),
    wrongType: NOT_STRING,
    invalid: ["", "Timer", "apigw", "cls", "cmq"],
    required: true,
  },
  Qualifier: {
    valid: fc.constantFrom("$DEFAULT", "$LATEST"),
    wrongType: NOT_STRING,
    invalid: ["", "0", "$OTHER", "a b", longString(70, "q")],
  },
};
/** A timer's TriggerDesc: SCF's cron, raw or wrapped; never valid for any type when invalid. */
const timerDescSpec: FieldSpec = {
  valid: fc.constantFrom("*/5 * * * * * *", '{"cron":"0 */5 * * * * *"}', "0 0 2 1 * * *"),
  wrongType: NOT_STRING,
  invalid: ["", "not a cron", "* * *", "61 * * * * * *", "0 0 0 30 2 * *", '{"cron":5}', longString(4097, "*")],
};
const enableSpec: FieldSpec = {
  valid: fc.constantFrom("OPEN", "CLOSE"),
  wrongType: NOT_STRING,
  invalid: ["open", "ON", "1", ""],
};
const triggerTextSpecs: Record<string, FieldSpec> = {
  Description: { valid: fc.constantFrom("", "fuzz"), wrongType: NOT_STRING, invalid: [longString(1001)] },
  CustomArgument: { valid: fc.constantFrom("", "hello"), wrongType: NOT_STRING, invalid: [longString(4097, "m")] },
};

/** The trigger actions: none finds a trigger (the fixtures have none), so each case is refused. */
const TRIGGER_ACTION_SPECS: Readonly<Record<string, { mode: FunctionMode; specs: Record<string, FieldSpec> }>> = {
  CreateTrigger: {
    mode: "existing",
    specs: {
      ...triggerTargetSpecs,
      // Unknown in the fixture function: a version or alias it does not have.
      Qualifier: { ...(triggerTargetSpecs.Qualifier as FieldSpec), invalid: ["", "0", "7", "no-such-alias", "a b"] },
      TriggerDesc: timerDescSpec,
      Enable: enableSpec,
      ...triggerTextSpecs,
    },
  },
  DeleteTrigger: {
    mode: "existing",
    specs: { ...triggerTargetSpecs, TriggerDesc: { valid: fc.constant("x"), invalid: [longString(4097)] } },
  },
  UpdateTrigger: {
    mode: "existing",
    specs: { ...triggerTargetSpecs, TriggerDesc: timerDescSpec, Enable: enableSpec, ...triggerTextSpecs },
  },
  UpdateTriggerStatus: {
    mode: "existing",
    specs: { ...triggerTargetSpecs, Enable: { ...enableSpec, required: true } },
  },
  ListTriggers: {
    mode: "existing",
    specs: {
      Offset: offsetSpec,
      Limit: limitSpec,
      OrderBy: { valid: fc.constantFrom("add_time", "mod_time"), wrongType: NOT_STRING, invalid: ["addTime", ""] },
      Order: { valid: fc.constantFrom("ASC", "DESC"), wrongType: NOT_STRING, invalid: ["up", "", "Asc"] },
      Filters: {
        valid: fc.constantFrom(
          [],
          [{ Name: "Qualifier", Values: ["$DEFAULT"] }],
          [{ Name: "Description", Values: ["x"] }],
        ),
        wrongType: NOT_OBJECT,
        invalid: [
          [{ Name: "Type", Values: ["timer"] }],
          [{ Name: "Qualifier", Values: [] }],
          [{ Name: "Qualifier" }],
          [{ Name: "TriggerName", Values: [5] }],
          [{ Name: "TriggerName", Values: Array.from({ length: 21 }, () => "a") }],
          Array.from({ length: 11 }, () => ({ Name: "Qualifier", Values: ["$DEFAULT"] })),
          {},
        ],
      },
    },
  },
};

/** Event ids that name no event the caller may see (or are not strings). */
const BAD_EVENT_IDS: readonly unknown[] = [
  "not-a-uuid",
  "",
  "..",
  longString(500, "e"),
  "__proto__",
  OWN_ENDED_EVENT.toUpperCase(),
  ...NOT_STRING,
];

/** Target of an event action: InvokeRequestId, and (terminate) the event's FunctionName and Namespace. */
function eventTarget(caller: Caller, terminate: boolean): fc.Arbitrary<Judged<Record<string, unknown>>> {
  return fc
    .record({
      id: fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom<unknown>(OWN_ENDED_EVENT, FOREIGN_QUEUED_EVENT) },
        { weight: 1, arbitrary: fc.uuid() },
        { weight: 2, arbitrary: fc.constantFrom(...BAD_EVENT_IDS) },
      ),
      functionChoice: fc.constantFrom("event's", "event's", "event's", "other", "missing", "bad"),
      namespaceChoice: fc.constantFrom("event's", "event's", "event's", "other", "missing", "bad"),
    })
    .map(({ id, functionChoice, namespaceChoice }) => {
      const fixture = typeof id === "string" ? FIXTURE_EVENT[id] : undefined;
      const value: Record<string, unknown> = { InvokeRequestId: id };
      const bad: string[] = [];
      if (!fixture) bad.push(`InvokeRequestId=${excerpt(id)}`);
      else if (caller === "scoped" && fixture.namespace !== SCOPED_NAMESPACE) bad.push("event of another namespace");
      if (!terminate) return { value, bad };
      if (id === OWN_ENDED_EVENT) bad.push("event already ended");
      const ownFunction = fixture?.functionName ?? "fuzz-fn";
      const ownNamespace = fixture?.namespace ?? SCOPED_NAMESPACE;
      if (functionChoice === "event's") value.FunctionName = ownFunction;
      else if (functionChoice === "other") value.FunctionName = ownFunction === "fuzz-fn" ? "fuzz-other" : "fuzz-fn";
      else if (functionChoice === "bad") value.FunctionName = 5;
      if (functionChoice !== "event's") bad.push(`FunctionName ${functionChoice}`);
      if (namespaceChoice === "event's") value.Namespace = ownNamespace;
      else if (namespaceChoice === "other")
        value.Namespace = ownNamespace === SCOPED_NAMESPACE ? FOREIGN_NAMESPACE : SCOPED_NAMESPACE;
      else if (namespaceChoice === "bad") value.Namespace = "a/b";
      if (namespaceChoice !== "event's") bad.push(`Namespace ${namespaceChoice}`);
      return { value, bad };
    });
}

/** The generators of an action's parameters: its target (Namespace, FunctionName or event) and the rest. */
interface ActionComponents {
  target: fc.Arbitrary<Judged<Record<string, unknown>>>;
  params: fc.Arbitrary<Judged<Record<string, unknown>>>;
}

/** The parameters of one action for the caller, judged. */
function actionComponents(action: string, caller: Caller): ActionComponents {
  const spec = ACTION_SPECS[action] ?? TRIGGER_ACTION_SPECS[action];
  if (!spec) throw new Error(`no fuzz spec for action ${action}`);
  const target: fc.Arbitrary<Judged<Record<string, unknown>>> =
    spec.mode === "event"
      ? eventTarget(caller, action === "TerminateAsyncEvent")
      : spec.mode === "none"
        ? targetFields(caller, "any").map(({ value, bad }) => {
            const { FunctionName: _ignored, ...rest } = value;
            return { value: rest, bad: bad.filter((label) => label.startsWith("Namespace")) };
          })
        : targetFields(caller, spec.mode);
  return { target, params: objectWithMutations(spec.specs, { strict: false }) };
}

/** The implemented actions (worker/tcapi/actions.ts ACTIONS). */
export const TENCENT_ACTIONS: readonly string[] = [...Object.keys(ACTION_SPECS), ...Object.keys(TRIGGER_ACTION_SPECS)];

/** The X-TC-Action header: an implemented action, one that must be InvalidAction, or none. */
type ActionName = Judged<{ name: string | undefined; implemented: boolean }>;
const actionNameArb: fc.Arbitrary<ActionName> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.constantFrom(...TENCENT_ACTIONS).map((name) => ({ value: { name, implemented: true }, bad: [] })),
  },
  {
    weight: 3,
    arbitrary: fc
      .constantFrom(...PROTOTYPE_ACTIONS, ...UNKNOWN_ACTIONS)
      .map((name) => ({ value: { name, implemented: false }, bad: [`action ${excerpt(name)}`] })),
  },
  {
    weight: 1,
    arbitrary: fc.constant<ActionName>({
      value: { name: undefined, implemented: false },
      bad: ["X-TC-Action missing"],
    }),
  },
);

/** Parameters sent with an action that is not implemented: unique, so no two share a signature. */
const nonceParams: ActionComponents = {
  target: fc.uuid().map((nonce) => ({
    value: { FunctionName: "fuzz-fn", Namespace: SCOPED_NAMESPACE, Nonce: nonce },
    bad: [],
  })),
  params: fc.constant<Judged<Record<string, unknown>>>({ value: {}, bad: [] }),
};

/** How the body is written: the parameters as JSON, or something that is not a JSON object. */
const bodyShape: fc.Arbitrary<Judged<string | undefined>> = fc.oneof(
  { weight: 14, arbitrary: fc.constant<Judged<string | undefined>>({ value: undefined, bad: [] }) },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom(...INVALID_JSON_TEXTS)
      .map((text) => ({ value: text, bad: [`invalid JSON ${excerpt(text)}`] })),
  },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom(...NON_OBJECT_JSON_TEXTS)
      .map((text) => ({ value: text, bad: [`JSON not an object: ${text}`] })),
  },
);

const versionPart: fc.Arbitrary<Judged<string | undefined>> = fc.oneof(
  { weight: 14, arbitrary: fc.constant<Judged<string | undefined>>({ value: TC_API_VERSION, bad: [] }) },
  {
    weight: 1,
    arbitrary: fc.constant<Judged<string | undefined>>({ value: undefined, bad: ["X-TC-Version missing"] }),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(...BAD_VERSIONS).map((value) => ({ value, bad: [`X-TC-Version ${excerpt(value)}`] })),
  },
);

/** The parts of a Tencent case that can be malformed (see faultSiteArb). */
const TENCENT_FAULT_SITES = ["auth", "version", "action", "target", "params", "shape"] as const;

/** A malformed request to the Tencent Cloud API endpoint, usually with exactly one fault. */
export const tencentCaseArb: fc.Arbitrary<FuzzCase> = faultSiteArb(TENCENT_FAULT_SITES).chain((site) =>
  prefer(authArb, site, "auth").chain((auth) =>
    prefer(actionNameArb, site, "action").chain((action) => {
      const components = action.value.implemented
        ? actionComponents(action.value.name as string, judgedCaller(auth.value))
        : nonceParams;
      return fc
        .record({
          target: prefer(components.target, site, "target"),
          params: prefer(components.params, site, "params"),
          version: prefer(versionPart, site, "version"),
          shape: prefer(bodyShape, site, "shape"),
        })
        .map(({ target, params, version, shape }) => {
          const headers: Record<string, string> = { "content-type": "application/json", "x-tc-region": "ap-guangzhou" };
          if (action.value.name !== undefined) headers["x-tc-action"] = action.value.name;
          if (version.value !== undefined) headers["x-tc-version"] = version.value;
          // Unknown and inherited action names are refused by name, whatever the body says.
          const onlyTheActionName =
            !action.value.implemented &&
            action.value.name !== undefined &&
            auth.bad.length === 0 &&
            version.bad.length === 0;
          return {
            route: TENCENT_ROUTE,
            method: "POST",
            target: "/",
            auth: auth.value,
            body: { kind: "text" as const, text: shape.value ?? toJsonText({ ...params.value, ...target.value }) },
            headers,
            tencent: true,
            malformations: [...auth.bad, ...version.bad, ...action.bad, ...target.bad, ...params.bad, ...shape.bad],
            ...(onlyTheActionName ? { expectedCode: "InvalidAction" } : {}),
          };
        });
    }),
  ),
);

/** Methods other than POST on the endpoint: UnsupportedOperation in the Tencent envelope. */
export const tencentWrongMethodArb: fc.Arbitrary<FuzzCase> = fc
  .record({ auth: authArb, method: fc.constantFrom("GET", "PUT", "PATCH", "DELETE", "OPTIONS") })
  .map(({ auth, method }) => ({
    route: TENCENT_ROUTE,
    method,
    target: "/",
    auth: auth.value,
    body: method === "GET" || method === "OPTIONS" ? { kind: "none" as const } : { kind: "text" as const, text: "{}" },
    headers: { "content-type": "application/json", "x-tc-action": "ListFunctions", "x-tc-version": TC_API_VERSION },
    tencent: true,
    malformations: [...auth.bad, `method ${method}`],
  }));

/** Oversized Tencent requests (over the 32 MB JSON limit): sent once each, not generated. */
export function oversizedTencentCases(): FuzzCase[] {
  const bytes = MAX_JSON_BODY_BYTES + 1;
  const create = JSON.stringify({
    FunctionName: "fzoversized",
    Runtime: "Nodejs22",
    Code: { ZipFile: OTHER_ZIP },
    Namespace: SCOPED_NAMESPACE,
    AsyncRunEnable: "TRUE",
  });
  const headers = {
    "content-type": "application/json",
    "x-tc-action": "CreateFunction",
    "x-tc-version": TC_API_VERSION,
  };
  return [
    {
      route: TENCENT_ROUTE,
      method: "POST",
      target: "/",
      auth: { kind: "tc3", caller: "admin" },
      body: { kind: "oversized", prefix: create, bytes, streamed: true },
      headers,
      tencent: true,
      malformations: [`signed CreateFunction padded to ${bytes} bytes (streamed)`],
    },
    {
      route: TENCENT_ROUTE,
      method: "POST",
      target: "/",
      auth: { kind: "bearer", caller: "admin" },
      body: { kind: "oversized", prefix: create, bytes, streamed: false },
      headers,
      tencent: true,
      malformations: [`CreateFunction padded to ${bytes} bytes`],
    },
  ];
}
