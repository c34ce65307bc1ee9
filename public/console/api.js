// The console's only way to the platform: the REST API on this origin, every call with
// `Authorization: Bearer SecretId:SecretKey` from this tab's session storage (never localStorage).

const SESSION_KEY = "afp-console-session";

/** The signed-in session ({secretId, secretKey, namespace}) or null. */
export function session() {
  try {
    const value = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? "null");
    return value && typeof value.secretId === "string" && typeof value.secretKey === "string" ? value : null;
  } catch {
    return null;
  }
}

export function saveSession(value) {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(value));
}

export function clearSession() {
  sessionStorage.removeItem(SESSION_KEY);
}

/** An error answer of the API: its status, platform error code and message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function authorization(credentials = session()) {
  if (!credentials) throw new ApiError(401, "UNAUTHORIZED", "not signed in");
  return `Bearer ${credentials.secretId}:${credentials.secretKey}`;
}

/**
 * Downloads an event's whole log (GET /v1/events/{id}/logs.txt, which needs the Authorization
 * header, so it is fetched and handed to the browser as a file).
 */
export async function downloadLog(requestId) {
  const response = await fetch(path("v1", "events", requestId, "logs.txt"), {
    headers: { authorization: authorization() },
  });
  if (!response.ok) throw new ApiError(response.status, "DOWNLOAD", `HTTP ${response.status}`);
  const url = URL.createObjectURL(await response.blob());
  const anchor = document.createElement("a");
  anchor.href = url;
  anchor.download = `${requestId}.log`;
  anchor.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** A path with its query (undefined and empty values left out). */
export function withQuery(path, query = {}) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/**
 * Calls the API: `body` is sent as JSON (a string as it is), the answer parsed. An error answer
 * throws ApiError. `credentials` overrides the session's (the sign-in check).
 */
export async function api(method, path, { body, query, headers = {}, credentials, signal } = {}) {
  const init = { method, headers: { authorization: authorization(credentials), ...headers }, signal };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    init.headers["content-type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(withQuery(path, query), init);
  } catch (error) {
    if (error?.name === "AbortError") throw error;
    throw new ApiError(0, "NETWORK", `the platform did not answer (${error?.message ?? error})`);
  }
  const text = await response.text();
  let value = null;
  try {
    value = text ? JSON.parse(text) : null;
  } catch {
    value = text;
  }
  if (!response.ok) {
    const error = value?.error;
    throw new ApiError(response.status, error?.code ?? `HTTP_${response.status}`, error?.message ?? String(text));
  }
  return { status: response.status, body: value, headers: response.headers };
}

/** Path segments, encoded. */
export function path(...segments) {
  return `/${segments.map((segment) => encodeURIComponent(segment)).join("/")}`;
}

/** Shortest and longest wait before reconnecting a dropped log stream, in ms. */
const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 8000;

/**
 * Follows an event's log over the SSE route (GET /v1/events/{id}/logs/stream). EventSource cannot
 * send an Authorization header, so the stream is read with fetch and parsed here. After a
 * disconnect it reconnects with Last-Event-ID (the last seq seen): no line is lost or repeated.
 * Calls onRecord(record) per line, onState(text) on connection changes, onEnd(data) once at the end.
 * Returns a function that stops following.
 */
export function followLog(requestId, { onRecord, onState, onEnd, tail }) {
  const controller = new AbortController();
  let lastSeq = 0;
  let delay = RECONNECT_MIN_MS;
  let ended = false;

  const connect = async () => {
    const headers = { authorization: authorization(), accept: "text/event-stream" };
    if (lastSeq > 0) headers["last-event-id"] = String(lastSeq);
    // The first connection starts with the last `tail` lines (a long log is not replayed whole);
    // a reconnection resumes after the last line seen.
    const query = lastSeq === 0 && tail !== undefined ? `?tail=${tail}` : "";
    const response = await fetch(`${path("v1", "events", requestId, "logs", "stream")}${query}`, {
      headers,
      signal: controller.signal,
    });
    if (!response.ok || !response.body) {
      const text = await response.text().catch(() => "");
      let message = text;
      try {
        message = JSON.parse(text)?.error?.message ?? text;
      } catch {}
      throw new ApiError(response.status, "STREAM", message || `HTTP ${response.status}`);
    }
    onState?.(lastSeq > 0 ? `live (resumed after line ${lastSeq})` : "live");
    delay = RECONNECT_MIN_MS;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let boundary = buffer.indexOf("\n\n");
      while (boundary >= 0) {
        const block = buffer.slice(0, boundary);
        buffer = buffer.slice(boundary + 2);
        boundary = buffer.indexOf("\n\n");
        let type = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "event") type = text;
          else if (field === "data") data.push(text);
        }
        if (data.length === 0) continue;
        const payload = JSON.parse(data.join("\n"));
        if (type === "log") {
          if (payload.seq <= lastSeq) continue;
          lastSeq = payload.seq;
          onRecord(payload);
        } else if (type === "end") {
          ended = true;
          onEnd?.(payload);
          return;
        }
        // "overflow": the stream closes next; the loop below reconnects from lastSeq.
      }
    }
  };

  (async () => {
    while (!ended && !controller.signal.aborted) {
      try {
        await connect();
      } catch (error) {
        if (controller.signal.aborted) return;
        if (error instanceof ApiError && error.status >= 400 && error.status < 500 && error.status !== 429) {
          onState?.(`stopped: ${error.message}`);
          return;
        }
      }
      if (ended || controller.signal.aborted) return;
      onState?.(`reconnecting in ${Math.round(delay / 100) / 10} s (from line ${lastSeq})`);
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, RECONNECT_MAX_MS);
    }
  })();
  return () => controller.abort();
}
