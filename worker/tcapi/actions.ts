// The Tencent Cloud API action table: every implemented action by its Tencent name.
//
// To add an action:
// 1. Write it as an `Action` in the file of its responsibility: function-actions.ts (function
//    management), event-actions.ts (invocation and async events), log-actions.ts (logs), or a new
//    `<area>-actions.ts`. Declare its parameter schema inline and parse it with `parseParams`
//    (params.ts: MissingParameter / InvalidParameterValue.<Parameter>); take FunctionName and
//    Namespace with `functionNameParam` / `namespaceParam` and resolve the namespace with
//    `namespaceOf`. Call domain services only (functions/, events/, logs/, ratelimit/), never a route.
// 2. Add its name to ACTION_NAMES and its entry to HANDLERS below.
// 3. Name it Get*/List* only if it changes nothing (auth/signature-ledger.ts isReadOnlyAction lets
//    those signatures be replayed); add it to CODE_ACTIONS in routes.ts if it carries a code package.
// 4. Add its parameters to ACTION_SPECS in test/integration/fuzz-tencent.ts (the fuzz then sends it
//    malformed requests), and a behaviour test: test/e2e/scf-sdk.e2e.test.ts through the official
//    SDK, or test/integration/ when it needs no container.

import { getAsyncEventStatus, invoke, listAsyncEvents, terminateAsyncEvent } from "./event-actions";
import {
  createFunction,
  deleteFunction,
  getFunction,
  listFunctions,
  updateFunctionCode,
  updateFunctionConfiguration,
} from "./function-actions";
import { getFunctionLogs } from "./log-actions";
import type { Action } from "./params";
import { createTrigger, deleteTrigger, listTriggers, updateTrigger, updateTriggerStatus } from "./trigger-actions";
import {
  createAlias,
  deleteAlias,
  deleteFunctionVersion,
  getAlias,
  listAliases,
  listVersionByFunction,
  publishVersion,
  updateAlias,
} from "./version-actions";

export type { Action, ActionContext } from "./params";
export { TcApiError } from "./params";

/** The names of the implemented actions, as Tencent spells them (the OpenAPI document lists these). */
export const ACTION_NAMES = [
  "CreateFunction",
  "GetFunction",
  "ListFunctions",
  "UpdateFunctionConfiguration",
  "UpdateFunctionCode",
  "DeleteFunction",
  "Invoke",
  "ListAsyncEvents",
  "GetAsyncEventStatus",
  "TerminateAsyncEvent",
  "GetFunctionLogs",
  "PublishVersion",
  "ListVersionByFunction",
  "DeleteFunctionVersion",
  "CreateAlias",
  "UpdateAlias",
  "GetAlias",
  "ListAliases",
  "DeleteAlias",
  "CreateTrigger",
  "DeleteTrigger",
  "UpdateTrigger",
  "UpdateTriggerStatus",
  "ListTriggers",
] as const;

/** One action per name: the type makes a name without its action (or the reverse) a compile error. */
const HANDLERS: Record<(typeof ACTION_NAMES)[number], Action> = {
  CreateFunction: createFunction,
  GetFunction: getFunction,
  ListFunctions: listFunctions,
  UpdateFunctionConfiguration: updateFunctionConfiguration,
  UpdateFunctionCode: updateFunctionCode,
  DeleteFunction: deleteFunction,
  Invoke: invoke,
  ListAsyncEvents: listAsyncEvents,
  GetAsyncEventStatus: getAsyncEventStatus,
  TerminateAsyncEvent: terminateAsyncEvent,
  GetFunctionLogs: getFunctionLogs,
  PublishVersion: publishVersion,
  ListVersionByFunction: listVersionByFunction,
  DeleteFunctionVersion: deleteFunctionVersion,
  CreateAlias: createAlias,
  UpdateAlias: updateAlias,
  GetAlias: getAlias,
  ListAliases: listAliases,
  DeleteAlias: deleteAlias,
  CreateTrigger: createTrigger,
  DeleteTrigger: deleteTrigger,
  UpdateTrigger: updateTrigger,
  UpdateTriggerStatus: updateTriggerStatus,
  ListTriggers: listTriggers,
};

/**
 * Every implemented action, by its Tencent name. A Map, not an object: a lookup sees only these
 * own entries, never an inherited property (`constructor`, `toString`, `__proto__`, ...).
 */
const ACTIONS: ReadonlyMap<string, Action> = new Map<string, Action>(
  ACTION_NAMES.map((name) => [name, HANDLERS[name]]),
);

/** The implemented action of a name, or undefined for any other name (Tencent's InvalidAction). */
export function findAction(name: string): Action | undefined {
  return ACTIONS.get(name);
}
