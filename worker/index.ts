import { createApp } from "./api/app";

export { AsyncEventObject } from "./events/async-event-object";
export { InstanceContainer } from "./instances/instance-container";
export { FunctionSchedulerObject } from "./scheduling/function-scheduler-object";

const app = createApp();

export default {
  fetch: app.fetch,
  async queue(batch: MessageBatch<unknown>): Promise<void> {
    for (const message of batch.messages) message.ack();
  },
  async scheduled(): Promise<void> {},
} satisfies ExportedHandler<Env>;
