import { z } from "zod";
import { canAccessNamespace, type Principal } from "../auth/principal";
import type { FunctionRow } from "../db/schema";
import { visibleEventView } from "../events/event-access";
import { listEvents } from "../events/event-list";
import { invokeAsync } from "../events/invoke";
import { createFunctionSchema, DEFAULT_NAMESPACE, updateConfigurationSchema } from "../functions/model";
import { FunctionRegistry } from "../functions/registry";
import { functionLogs } from "../logs/function-logs";
import { admitRead } from "../ratelimit/read-limit";
import { unwrap } from "../shared/errors";
import { functionNameSchemaFor, NAMESPACE_PATTERN, NAMESPACE_RULE } from "../shared/names";
import { describeIssues } from "../shared/validation";
import { parseTcTime, tcTime } from "./envelope";

/** An error with a Tencent Cloud API code of its own (more precise than the platform's). */
export class TcApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A `FunctionName` parameter: checked against the function name rule on every action, so a
 * malformed name is InvalidParameterValue.FunctionName wherever it is given.
 */
const functionNameParam = functionNameSchemaFor("FunctionName");

/**
 * A `Namespace` parameter: checked against the namespace rule on every action
 * (InvalidParameterValue.Namespace); an empty one means the default namespace.
 */
const namespaceParam = z
  .string()
  .refine((value) => value === "" || NAMESPACE_PATTERN.test(value), `Namespace: ${NAMESPACE_RULE}`);

/** What every action receives. */
export interface ActionContext {
  env: Env;
  principal: Principal;
  params: Record<string, unknown>;
}

export type Action = (context: ActionContext) => Promise<Record<string, unknown>>;

/** Tencent field name of each domain field, for InvalidParameterValue.<Field> codes. */
const TENCENT_FIELD: Record<string, string> = {
  name: "FunctionName",
  runtime: "Runtime",
  handler: "Handler",
  code: "Code",
  timeout: "Timeout",
  memorySize: "MemorySize",
  environment: "Environment",
  description: "Description",
};

function parseParams<Schema extends z.ZodType>(schema: Schema, value: unknown): z.infer<Schema> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issue?.path[0];
  if (issue?.code === "invalid_type" && issue.input === undefined && typeof field === "string") {
    throw new TcApiError("MissingParameter", `${field} is required`);
  }
  throw new TcApiError(
    `InvalidParameterValue${typeof field === "string" ? `.${field}` : ""}`,
    describeIssues(parsed.error),
  );
}

/** Validates a domain input built from Tencent fields, naming the Tencent field on error. */
function parseDomain<Schema extends z.ZodType>(schema: Schema, value: unknown): z.infer<Schema> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const field = parsed.error.issues[0]?.path[0];
  const tencent = typeof field === "string" ? TENCENT_FIELD[field] : undefined;
  throw new TcApiError(`InvalidParameterValue${tencent ? `.${tencent}` : ""}`, describeIssues(parsed.error));
}

function namespaceOf(principal: Principal, value: unknown): string {
  const namespace = typeof value === "string" && value.length > 0 ? value : DEFAULT_NAMESPACE;
  if (!canAccessNamespace(principal, namespace)) {
    throw new TcApiError("ResourceNotFound.Namespace", `namespace ${namespace} not found`);
  }
  return namespace;
}

const environmentParam = z.object({
  Variables: z.array(z.object({ Key: z.string(), Value: z.string() })).optional(),
});

function environmentOf(value: z.infer<typeof environmentParam> | undefined): Record<string, string> | undefined {
  if (!value?.Variables) return undefined;
  return Object.fromEntries(value.Variables.map((variable) => [variable.Key, variable.Value]));
}

const booleanString = z.enum(["TRUE", "FALSE"]).transform((value) => value === "TRUE");

function functionFields(row: FunctionRow) {
  const environment = JSON.parse(row.environment) as Record<string, string>;
  return {
    FunctionName: row.name,
    Namespace: row.namespace,
    Runtime: row.runtime,
    Handler: row.handler,
    CodeSize: row.codeSize,
    Description: row.description,
    MemorySize: row.memoryMb,
    Timeout: row.timeoutSeconds,
    Environment: { Variables: Object.entries(environment).map(([Key, Value]) => ({ Key, Value })) },
    AsyncRunEnable: row.asyncRunEnable ? "TRUE" : "FALSE",
    Status: "Active",
    FunctionVersion: "$LATEST",
    Qualifier: "$LATEST",
    Type: "Event",
    AddTime: tcTime(row.createdAt),
    ModTime: tcTime(row.updatedAt),
  };
}

const createFunction: Action = async ({ env, principal, params }) => {
  const p = parseParams(
    z.object({
      FunctionName: functionNameParam,
      Code: z.object({ ZipFile: z.string().optional() }),
      Handler: z.string().optional(),
      Description: z.string().optional(),
      MemorySize: z.number().optional(),
      Timeout: z.number().optional(),
      Environment: environmentParam.optional(),
      Runtime: z.string(),
      Namespace: namespaceParam.optional(),
      AsyncRunEnable: booleanString.optional(),
    }),
    params,
  );
  const namespace = namespaceOf(principal, p.Namespace);
  if (!p.Code.ZipFile)
    throw new TcApiError("InvalidParameterValue.Code", "only Code.ZipFile (base64 zip) is supported");
  const environment = environmentOf(p.Environment);
  const input = parseDomain(createFunctionSchema, {
    name: p.FunctionName,
    runtime: p.Runtime,
    code: { zipFile: p.Code.ZipFile },
    ...(p.Handler !== undefined ? { handler: p.Handler } : {}),
    ...(p.Description !== undefined ? { description: p.Description } : {}),
    ...(p.MemorySize !== undefined ? { memorySize: p.MemorySize } : {}),
    ...(p.Timeout !== undefined ? { timeout: p.Timeout } : {}),
    ...(environment !== undefined ? { environment } : {}),
    ...(p.AsyncRunEnable !== undefined ? { asyncRunEnable: p.AsyncRunEnable } : {}),
  });
  await new FunctionRegistry(env).create(namespace, input);
  return {};
};

const getFunction: Action = async ({ env, principal, params }) => {
  const p = parseParams(z.object({ FunctionName: functionNameParam, Namespace: namespaceParam.optional() }), params);
  const row = await new FunctionRegistry(env).get(namespaceOf(principal, p.Namespace), p.FunctionName);
  return functionFields(row);
};

const listFunctions: Action = async ({ env, principal, params }) => {
  const p = parseParams(
    z.object({
      Namespace: namespaceParam.optional(),
      Offset: z.number().int().min(0).default(0),
      Limit: z.number().int().min(1).max(100).default(20),
    }),
    params,
  );
  const page = await new FunctionRegistry(env).list(namespaceOf(principal, p.Namespace), p.Offset, p.Limit);
  return { Functions: page.functions.map(functionFields), TotalCount: page.total };
};

const updateFunctionConfiguration: Action = async ({ env, principal, params }) => {
  if ("AsyncRunEnable" in params) {
    throw new TcApiError(
      "InvalidParameterValue.AsyncRunEnable",
      "AsyncRunEnable is chosen when the function is created and cannot be changed",
    );
  }
  const p = parseParams(
    z.object({
      FunctionName: functionNameParam,
      Namespace: namespaceParam.optional(),
      Description: z.string().optional(),
      MemorySize: z.number().optional(),
      Timeout: z.number().optional(),
      Runtime: z.string().optional(),
      Environment: environmentParam.optional(),
    }),
    params,
  );
  const environment = environmentOf(p.Environment);
  const input = parseDomain(updateConfigurationSchema, {
    ...(p.Description !== undefined ? { description: p.Description } : {}),
    ...(p.MemorySize !== undefined ? { memorySize: p.MemorySize } : {}),
    ...(p.Timeout !== undefined ? { timeout: p.Timeout } : {}),
    ...(p.Runtime !== undefined ? { runtime: p.Runtime } : {}),
    ...(environment !== undefined ? { environment } : {}),
  });
  await new FunctionRegistry(env).updateConfiguration(namespaceOf(principal, p.Namespace), p.FunctionName, input);
  return {};
};

const updateFunctionCode: Action = async ({ env, principal, params }) => {
  const p = parseParams(
    z.object({
      FunctionName: functionNameParam,
      Namespace: namespaceParam.optional(),
      Handler: z.string().optional(),
      ZipFile: z.string().optional(),
      Code: z.object({ ZipFile: z.string().optional() }).optional(),
    }),
    params,
  );
  const zipFile = p.ZipFile ?? p.Code?.ZipFile;
  if (!zipFile) throw new TcApiError("MissingParameter", "ZipFile (or Code.ZipFile) is required");
  const namespace = namespaceOf(principal, p.Namespace);
  // Every input is validated before anything is stored: a bad Handler must not leave new code behind.
  const code = parseDomain(z.base64(), zipFile);
  const configuration =
    p.Handler !== undefined ? parseDomain(updateConfigurationSchema, { handler: p.Handler }) : undefined;
  const registry = new FunctionRegistry(env);
  await registry.updateCode(namespace, p.FunctionName, code);
  if (configuration) await registry.updateConfiguration(namespace, p.FunctionName, configuration);
  return {};
};

const deleteFunction: Action = async ({ env, principal, params }) => {
  const p = parseParams(z.object({ FunctionName: functionNameParam, Namespace: namespaceParam.optional() }), params);
  await new FunctionRegistry(env).delete(namespaceOf(principal, p.Namespace), p.FunctionName);
  return {};
};

const invoke: Action = async ({ env, principal, params }) => {
  const p = parseParams(
    z.object({
      FunctionName: functionNameParam,
      InvocationType: z.string().default("RequestResponse"),
      Qualifier: z.string().optional(),
      ClientContext: z.string().optional(),
      Namespace: namespaceParam.optional(),
    }),
    params,
  );
  if (p.InvocationType !== "Event") {
    throw new TcApiError(
      "UnsupportedOperation.InvocationType",
      'only InvocationType "Event" (asynchronous) is supported; poll GetAsyncEventStatus for the result',
    );
  }
  const namespace = namespaceOf(principal, p.Namespace);
  const { requestId } = await invokeAsync(env, {
    namespace,
    functionName: p.FunctionName,
    payloadText: p.ClientContext && p.ClientContext.length > 0 ? p.ClientContext : "{}",
    ...(p.Qualifier !== undefined ? { qualifier: p.Qualifier } : {}),
  });
  return {
    Result: {
      FunctionRequestId: requestId,
      Log: "",
      RetMsg: "",
      ErrMsg: "",
      MemUsage: 0,
      Duration: 0,
      BillDuration: 0,
      InvokeResult: 0,
    },
  };
};

const timeInterval = z
  .object({ Start: z.string().optional(), End: z.string().optional() })
  .transform((value, context) => {
    const start = value.Start ? parseTcTime(value.Start) : undefined;
    const end = value.End ? parseTcTime(value.End) : undefined;
    if ((value.Start && start === undefined) || (value.End && end === undefined)) {
      context.addIssue({ code: "custom", message: "times are %Y-%m-%d %H:%M:%S (UTC)" });
    }
    return { start, end };
  });

const listAsyncEvents: Action = async ({ env, principal, params }) => {
  const p = parseParams(
    z.object({
      FunctionName: functionNameParam,
      Namespace: namespaceParam.optional(),
      Qualifier: z.string().optional(),
      InvokeType: z.array(z.string()).max(10).optional(),
      Status: z
        .array(z.enum(["RUNNING", "FINISHED", "FAILED", "ABORTED"]))
        .max(4)
        .optional(),
      StartTimeInterval: timeInterval.optional(),
      EndTimeInterval: timeInterval.optional(),
      Order: z.enum(["ASC", "DESC"]).default("DESC"),
      Orderby: z.enum(["StartTime", "EndTime"]).default("StartTime"),
      Offset: z.number().int().min(0).default(0),
      Limit: z.number().int().min(1).max(100).default(20),
      InvokeRequestId: z.string().optional(),
    }),
    params,
  );
  const namespace = namespaceOf(principal, p.Namespace);
  admitRead(principal.secretId);
  const page = await listEvents(env.DB, namespace, p.FunctionName, {
    order: p.Order,
    orderBy: p.Orderby === "EndTime" ? "endTime" : "startTime",
    offset: p.Offset,
    limit: p.Limit,
    ...(p.Qualifier !== undefined ? { qualifier: p.Qualifier } : {}),
    ...(p.InvokeType && p.InvokeType.length > 0 ? { invokeTypes: p.InvokeType } : {}),
    ...(p.Status && p.Status.length > 0 ? { statuses: p.Status } : {}),
    ...(p.InvokeRequestId !== undefined ? { requestId: p.InvokeRequestId } : {}),
    ...(p.StartTimeInterval?.start !== undefined ? { startTimeFrom: p.StartTimeInterval.start } : {}),
    ...(p.StartTimeInterval?.end !== undefined ? { startTimeTo: p.StartTimeInterval.end } : {}),
    ...(p.EndTimeInterval?.start !== undefined ? { endTimeFrom: p.EndTimeInterval.start } : {}),
    ...(p.EndTimeInterval?.end !== undefined ? { endTimeTo: p.EndTimeInterval.end } : {}),
  });
  return {
    EventList: page.events.map((row) => ({
      InvokeRequestId: row.requestId,
      InvokeType: row.invokeType,
      Qualifier: row.qualifier,
      Status: row.status,
      StartTime: tcTime(row.startTime),
      EndTime: tcTime(row.endTime),
    })),
    TotalCount: page.total,
  };
};

/** The event object of an id the caller may see, optionally also checking its function. */
async function visibleAsyncEvent(env: Env, principal: Principal, requestId: string, functionName?: string) {
  const found = await visibleEventView(env, principal, requestId);
  if (functionName && found.event.functionName !== functionName) {
    throw new TcApiError("ResourceNotFound.AsyncEvent", `no async event ${requestId}`);
  }
  return found;
}

const getAsyncEventStatus: Action = async ({ env, principal, params }) => {
  const p = parseParams(z.object({ InvokeRequestId: z.string() }), params);
  const { event } = await visibleAsyncEvent(env, principal, p.InvokeRequestId);
  return {
    Result: {
      Status: event.status,
      // While the event runs there is no final code yet: 202, as HTTP says for accepted work.
      StatusCode: event.statusCode ?? 202,
      InvokeRequestId: event.requestId,
    },
  };
};

const terminateAsyncEvent: Action = async ({ env, principal, params }) => {
  const p = parseParams(
    z.object({
      FunctionName: functionNameParam,
      InvokeRequestId: z.string(),
      Namespace: namespaceParam.optional(),
      GraceShutdown: z.boolean().default(false),
    }),
    params,
  );
  const namespace = namespaceOf(principal, p.Namespace);
  const { stub, event } = await visibleAsyncEvent(env, principal, p.InvokeRequestId, p.FunctionName);
  if (event.namespace !== namespace)
    throw new TcApiError("ResourceNotFound.AsyncEvent", `no async event ${p.InvokeRequestId}`);
  unwrap(await stub.terminate(p.GraceShutdown));
  return {};
};

const getFunctionLogs: Action = async ({ env, principal, params }) => {
  const p = parseParams(
    z.object({
      FunctionName: functionNameParam,
      Namespace: namespaceParam.optional(),
      Offset: z.number().int().min(0).default(0),
      Limit: z.number().int().min(1).max(100).default(10),
      Order: z.enum(["asc", "desc", "ASC", "DESC"]).default("desc"),
      Filter: z.object({ RetCode: z.string().optional() }).optional(),
      FunctionRequestId: z.string().optional(),
      StartTime: z.string().optional(),
      EndTime: z.string().optional(),
    }),
    params,
  );
  const namespace = namespaceOf(principal, p.Namespace);
  const startTime = p.StartTime ? parseTcTime(p.StartTime) : undefined;
  const endTime = p.EndTime ? parseTcTime(p.EndTime) : undefined;
  if ((p.StartTime && startTime === undefined) || (p.EndTime && endTime === undefined)) {
    throw new TcApiError("InvalidParameterValue.StartTime", "times are %Y-%m-%d %H:%M:%S (UTC)");
  }
  const retCode = p.Filter?.RetCode;
  if (retCode && retCode !== "is0" && retCode !== "not0") {
    throw new TcApiError("InvalidParameterValue.Filter", 'Filter.RetCode: "is0" or "not0"');
  }
  admitRead(principal.secretId);
  const page = await functionLogs(env, namespace, p.FunctionName, {
    order: p.Order.toUpperCase() as "ASC" | "DESC",
    offset: p.Offset,
    limit: p.Limit,
    ...(retCode === "is0" ? { outcome: "success" as const } : retCode === "not0" ? { outcome: "error" as const } : {}),
    ...(p.FunctionRequestId ? { requestId: p.FunctionRequestId } : {}),
    ...(startTime !== undefined ? { startTimeFrom: startTime } : {}),
    ...(endTime !== undefined ? { startTimeTo: endTime } : {}),
  });
  const data = page.events.map((event) => ({
    FunctionName: event.functionName,
    RequestId: event.requestId,
    StartTime: tcTime(Date.parse(event.invokedAt)),
    RetCode: event.status === "FINISHED" ? 0 : event.status === "RUNNING" ? -1 : 1,
    RetMsg: event.status === "FINISHED" ? (event.resultPreview ?? "null") : (event.errorMessage ?? ""),
    InvokeFinished: event.status === "RUNNING" ? 0 : 1,
    Duration: event.durationMs ?? 0,
    BillDuration: event.durationMs ?? 0,
    MemUsage: (event.memoryUsageKb ?? 0) * 1024,
    Log: event.log,
    Level: event.status === "FINISHED" ? "INFO" : "ERROR",
    Source: "",
    RetryNum: 0,
  }));
  return { Data: data, TotalCount: page.total };
};

/**
 * Every implemented action, by its Tencent name. A Map, not an object: a lookup sees only these
 * own entries, never an inherited property (`constructor`, `toString`, `__proto__`, ...).
 */
const ACTIONS: ReadonlyMap<string, Action> = new Map<string, Action>([
  ["CreateFunction", createFunction],
  ["GetFunction", getFunction],
  ["ListFunctions", listFunctions],
  ["UpdateFunctionConfiguration", updateFunctionConfiguration],
  ["UpdateFunctionCode", updateFunctionCode],
  ["DeleteFunction", deleteFunction],
  ["Invoke", invoke],
  ["ListAsyncEvents", listAsyncEvents],
  ["GetAsyncEventStatus", getAsyncEventStatus],
  ["TerminateAsyncEvent", terminateAsyncEvent],
  ["GetFunctionLogs", getFunctionLogs],
]);

/** The implemented action of a name, or undefined for any other name (Tencent's InvalidAction). */
export function findAction(name: string): Action | undefined {
  return ACTIONS.get(name);
}
