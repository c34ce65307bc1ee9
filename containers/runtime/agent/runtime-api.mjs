// SCF's runtime API (scf-reference.md §7.3), served on 127.0.0.1 to a Custom Runtime's own program
// by its shim (bootstrap-custom.mjs): the program long-polls the next event, then posts its result
// or its error; init/ready marks its start-up done; progress is this platform's extension. Every
// body is read bounded; every answer is JSON. The shim owns the invocation's life (stdin commands,
// reports on fd 3): this module only turns HTTP into calls of its hooks. Imports limits.mjs only.
import { createServer } from "node:http";
import { boundedProgress, MAX_ERROR_MESSAGE_BYTES, MAX_RESULT_BYTES, truncateUtf8 } from "./limits.mjs";

/** Where the API listens: loopback only (the program's SCF_RUNTIME_API). */
export const RUNTIME_API_HOST = "127.0.0.1";
/**
 * Its port (SCF_RUNTIME_API_PORT), SCF's third-party default. When it is taken (another agent on
 * the same machine in tests) the API listens on a free port instead; the variable says which.
 */
export const RUNTIME_API_PORT = 9001;
/** Largest body of POST /runtime/invocation/error read; the error kept is MAX_ERROR_MESSAGE_BYTES of it. */
export const MAX_ERROR_BODY_BYTES = 64 * 1024;
/** Largest body of POST /runtime/init/ready and of the progress route (both small by nature). */
export const MAX_SMALL_BODY_BYTES = 4 * 1024;
/** Most connections open to the API at once (a program needs one or two). */
export const MAX_RUNTIME_API_CONNECTIONS = 32;

/** The answer to response/error/progress while no invocation is in progress. */
const NO_INVOCATION = "no invocation in progress";
/** The answer to a second response/error of one invocation (SCF: the result is locked). */
const ALREADY_ENDED = "the invocation already has its result";

/**
 * Reads a request's body up to limit bytes: `{ bytes, over }`; over is true when it is longer (its
 * first `limit` bytes are kept, the rest is read and dropped, never held).
 */
function readBody(request, limit) {
  return new Promise((resolve) => {
    const chunks = [];
    let size = 0;
    let settled = false;
    const finish = (over) => {
      if (settled) return;
      settled = true;
      request.off("data", onData);
      resolve({ bytes: Buffer.concat(chunks), over });
    };
    const onData = (chunk) => {
      if (size + chunk.length > limit) {
        chunks.push(chunk.subarray(0, limit - size));
        size = limit;
        finish(true);
        // The rest is read and dropped: a client still sending never meets a closed socket.
        request.resume();
        return;
      }
      chunks.push(chunk);
      size += chunk.length;
    };
    request.on("data", onData);
    request.once("end", () => finish(false));
    request.once("error", () => finish(false));
    request.once("close", () => finish(false));
  });
}

/** Answers JSON. */
function answer(response, status, body) {
  if (response.headersSent || response.destroyed) return;
  const text = JSON.stringify(body);
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  response.end(text);
}

/** A header value as Node sends it: printable ASCII as is, anything else percent-encoded. */
function headerValue(value) {
  const text = String(value ?? "");
  return /^[\x20-\x7e]*$/.test(text) ? text : encodeURIComponent(text);
}

/**
 * The result a response body stands for: its JSON value when it parses as JSON, else its text (an
 * empty body is ""). Undefined plus a message when the result's JSON is over MAX_RESULT_BYTES.
 */
export function resultOfBody(bytes) {
  const text = bytes.toString("utf8");
  let result = text;
  try {
    result = JSON.parse(text);
  } catch {
    // Not JSON: the text is the result.
  }
  const size = Buffer.byteLength(JSON.stringify(result), "utf8");
  if (size > MAX_RESULT_BYTES) {
    return {
      problem: `Result too large: the runtime's response is ${size} bytes of JSON, over the limit of ${MAX_RESULT_BYTES} bytes`,
    };
  }
  return { result };
}

/**
 * The runtime API of one program. `hooks`: `current()` the invocation in progress or undefined
 * (`{requestId, event, context, received, ended}`), `onNext(listener)` to be told when one is
 * offered, `received(invocation)` when the program took it, `ended(invocation, outcome)` with a
 * `returned` or `threw` outcome (called once), `progress(invocation, bounded)`, `initReady()`.
 */
export class RuntimeApi {
  constructor(hooks) {
    this.hooks = hooks;
    /** Requests being answered (the shim lets them finish before it mirrors the program's exit). */
    this.active = 0;
    /** next calls waiting for an invocation: each a function given the invocation. */
    this.waiting = new Set();
    this.server = createServer((request, response) => this.handle(request, response));
    this.server.maxConnections = MAX_RUNTIME_API_CONNECTIONS;
    // A long poll has no server-side timeout (SCF: do not set a client timeout either).
    this.server.requestTimeout = 0;
    this.server.timeout = 0;
  }

  /** Listens on RUNTIME_API_PORT, else on a free port; resolves the port. */
  listen() {
    const attempt = (port) =>
      new Promise((resolve, reject) => {
        const onError = (error) => reject(error);
        this.server.once("error", onError);
        this.server.listen(port, RUNTIME_API_HOST, () => {
          this.server.off("error", onError);
          resolve(this.server.address().port);
        });
      });
    return attempt(RUNTIME_API_PORT).catch((error) => {
      if (error.code !== "EADDRINUSE") throw error;
      return attempt(0);
    });
  }

  /** An invocation is offered: every waiting next call gets it. */
  offer(invocation) {
    const waiting = [...this.waiting];
    this.waiting.clear();
    for (const give of waiting) give(invocation);
  }

  async handle(request, response) {
    this.active += 1;
    response.once("close", () => {
      this.active -= 1;
    });
    const path = (request.url ?? "").split("?")[0];
    const route = `${request.method} ${path}`;
    try {
      switch (route) {
        case "POST /runtime/init/ready":
          return await this.initReady(request, response);
        case "GET /runtime/invocation/next":
          return this.next(request, response);
        case "POST /runtime/invocation/response":
          return await this.result(request, response, "response");
        case "POST /runtime/invocation/error":
          return await this.result(request, response, "error");
        case "POST /runtime/invocation/progress":
          return await this.progress(request, response);
        default:
          request.resume();
          return answer(response, 404, { error: "not found" });
      }
    } catch (error) {
      answer(response, 500, { error: String(error?.message ?? error).slice(0, 500) });
    }
  }

  async initReady(request, response) {
    const { over } = await readBody(request, MAX_SMALL_BODY_BYTES);
    if (over) return answer(response, 413, { error: `body over ${MAX_SMALL_BODY_BYTES} bytes` });
    this.hooks.initReady();
    answer(response, 200, {});
  }

  /**
   * Long poll: answers the invocation in progress (again, when the program asks twice), else waits
   * for the next one however long it takes. The first answer of an invocation is its hand-over.
   */
  next(request, response) {
    request.resume();
    const give = (invocation) => {
      if (response.destroyed || response.writableEnded) return false;
      const body = JSON.stringify(invocation.event ?? {});
      const context = invocation.context ?? {};
      response.writeHead(200, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(body),
        request_id: headerValue(invocation.requestId),
        memory_limit_in_mb: headerValue(context.memory_limit_in_mb ?? 0),
        time_limit_in_ms: headerValue(context.time_limit_in_ms ?? 0),
        function_name: headerValue(context.function_name),
        namespace: headerValue(context.namespace),
        function_version: headerValue(context.function_version),
      });
      response.end(body);
      this.hooks.received(invocation);
      return true;
    };
    const current = this.hooks.current();
    if (current && !current.ended) return give(current);
    const waiter = (invocation) => {
      if (!give(invocation)) this.hooks.onUntaken?.(invocation);
    };
    this.waiting.add(waiter);
    response.once("close", () => this.waiting.delete(waiter));
  }

  /** POST response or error: ends the invocation in progress (the first post only). */
  async result(request, response, kind) {
    const limit = kind === "response" ? MAX_RESULT_BYTES + 1 : MAX_ERROR_BODY_BYTES;
    const current = this.hooks.current();
    if (!current?.received) {
      request.resume();
      return answer(response, 400, { error: NO_INVOCATION });
    }
    if (current.ended) {
      request.resume();
      return answer(response, 409, { error: ALREADY_ENDED });
    }
    const { bytes, over } = await readBody(request, limit);
    // The body arrived: the invocation may have ended meanwhile (a second post raced this one).
    if (this.hooks.current() !== current || current.ended) {
      return answer(response, 409, { error: ALREADY_ENDED });
    }
    if (kind === "error") {
      let message = bytes.toString("utf8");
      if (over) message = `${message}…[cut at ${MAX_ERROR_BODY_BYTES} bytes]`;
      if (message.trim() === "") message = "the runtime reported an error (empty body)";
      this.hooks.ended(current, { kind: "threw", message: truncateUtf8(message, MAX_ERROR_MESSAGE_BYTES), stack: "" });
      if (over) return answer(response, 413, { error: `body over ${MAX_ERROR_BODY_BYTES} bytes; kept as the error` });
      return answer(response, 200, {});
    }
    if (over) {
      const message = `Result too large: the runtime's response is over the limit of ${MAX_RESULT_BYTES} bytes`;
      this.hooks.ended(current, { kind: "threw", message, stack: "" });
      return answer(response, 413, { error: `${message}; the invocation failed` });
    }
    const { result, problem } = resultOfBody(bytes);
    this.hooks.ended(current, problem ? { kind: "threw", message: problem, stack: "" } : { kind: "returned", result });
    answer(response, problem ? 413 : 200, problem ? { error: `${problem}; the invocation failed` } : {});
  }

  /** POST progress (this platform's extension): `{percent, message?}`, bounded as context.progress. */
  async progress(request, response) {
    const { bytes, over } = await readBody(request, MAX_SMALL_BODY_BYTES);
    if (over) return answer(response, 413, { error: `body over ${MAX_SMALL_BODY_BYTES} bytes` });
    let body;
    try {
      body = JSON.parse(bytes.toString("utf8"));
    } catch {
      return answer(response, 400, { error: "the body must be JSON: {percent, message}" });
    }
    const bounded =
      body !== null && typeof body === "object" && !Array.isArray(body)
        ? boundedProgress(body.percent, body.message)
        : undefined;
    if (!bounded) {
      return answer(response, 400, { error: "percent must be a finite number (0 to 100) and message a string" });
    }
    const current = this.hooks.current();
    if (!current?.received || current.ended) return answer(response, 400, { error: NO_INVOCATION });
    this.hooks.progress(current, bounded);
    answer(response, 200, {});
  }
}
