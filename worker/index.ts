import { createApp } from "./api/app";
import { consumeDeadLetters, consumeDispatchBatch } from "./scheduling/dispatch-consumer";

export { AsyncEventObject } from "./events/async-event-object";
export { InstanceContainer } from "./instances/instance-container";
export { FunctionSchedulerObject } from "./scheduling/function-scheduler-object";

const app = createApp();

/** Queue names, as in wrangler.toml. */
const DISPATCH_QUEUE = "afp-dispatch";

export default {
  fetch: app.fetch,
  async queue(batch, env): Promise<void> {
    if (batch.queue === DISPATCH_QUEUE) return consumeDispatchBatch(batch, env);
    return consumeDeadLetters(batch);
  },
  async scheduled(): Promise<void> {},
} satisfies ExportedHandler<Env>;
