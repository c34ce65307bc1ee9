// The log action (GetFunctionLogs): Tencent parameters translated to the function log service,
// and each event's log translated to Tencent's function log model.
import { z } from "zod";
import { functionLogs } from "../logs/function-logs";
import { admitRead } from "../ratelimit/read-limit";
import { parseTcTime, tcTime } from "./envelope";
import { type Action, functionNameParam, namespaceOf, namespaceParam, parseParams, TcApiError } from "./params";

/**
 * GetFunctionLogs: a filtered, ordered page of a function's invocations with their logs
 * (read-limited); Filter.RetCode "is0" keeps successes, "not0" failures.
 */
export const getFunctionLogs: Action = async ({ env, principal, params }) => {
  const p = parseParams(
    z.object({
      FunctionName: functionNameParam,
      Namespace: namespaceParam.optional(),
      Offset: z.number().int().min(0).default(0),
      Limit: z.number().int().min(1).max(100).default(10),
      Order: z.enum(["asc", "desc", "ASC", "DESC"]).default("desc"),
      Filter: z.object({ RetCode: z.string().optional() }).optional(),
      FunctionRequestId: z.string().optional(),
      // A version or an alias (logs/function-logs.ts FunctionLogQuery.qualifier).
      Qualifier: z.string().max(64).optional(),
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
    order: p.Order === "asc" || p.Order === "ASC" ? "ASC" : "DESC",
    offset: p.Offset,
    limit: p.Limit,
    ...(retCode === "is0" ? { outcome: "success" as const } : retCode === "not0" ? { outcome: "error" as const } : {}),
    ...(p.FunctionRequestId ? { requestId: p.FunctionRequestId } : {}),
    ...(p.Qualifier ? { qualifier: p.Qualifier } : {}),
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
