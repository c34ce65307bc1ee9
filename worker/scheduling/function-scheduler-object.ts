import { DurableObject } from "cloudflare:workers";

/** Per-function scheduler: concurrency limit, warm pool, instance hand-out. */
export class FunctionSchedulerObject extends DurableObject<Env> {}
