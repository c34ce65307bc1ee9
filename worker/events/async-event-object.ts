import { DurableObject } from "cloudflare:workers";

/** One event's state machine: the source of truth for one RequestId. */
export class AsyncEventObject extends DurableObject<Env> {}
