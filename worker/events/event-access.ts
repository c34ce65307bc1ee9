import { z } from "zod";
import { canAccessNamespace, type Principal } from "../auth/principal";
import { PlatformError, unwrap } from "../shared/errors";
import { eventStub } from "../shared/objects";
import type { PublicEvent } from "./event-machine";

const requestIdSchema = z.uuid("requestId must be a UUID");

function parsedEventStub(env: Env, rawRequestId: string | undefined) {
  const parsed = requestIdSchema.safeParse(rawRequestId);
  if (!parsed.success) throw new PlatformError("EVENT_NOT_FOUND", `no event ${String(rawRequestId)}`);
  return { requestId: parsed.data, stub: eventStub(env, parsed.data) };
}

/** Looks up an event the caller may see; not-found otherwise (other namespaces included). */
export async function visibleEvent(env: Env, principal: Principal, rawRequestId: string | undefined) {
  const { requestId, stub } = parsedEventStub(env, rawRequestId);
  const namespace = await stub.namespaceOf();
  if (namespace === undefined || !canAccessNamespace(principal, namespace)) {
    throw new PlatformError("EVENT_NOT_FOUND", `no event ${requestId}`);
  }
  return stub;
}

/** As visibleEvent, with the event's public view read in the same call. */
export async function visibleEventView(env: Env, principal: Principal, rawRequestId: string | undefined) {
  const { requestId, stub } = parsedEventStub(env, rawRequestId);
  const view = await stub.view();
  if (view.ok === false) throw new PlatformError("EVENT_NOT_FOUND", `no event ${requestId}`);
  const event = unwrap<PublicEvent>(view);
  if (!canAccessNamespace(principal, event.namespace)) {
    throw new PlatformError("EVENT_NOT_FOUND", `no event ${requestId}`);
  }
  return { stub, event };
}
