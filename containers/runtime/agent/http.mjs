// The agent's HTTP helpers: JSON answers, refusals with a status, bounded request bodies.

/** Answers a JSON body with a status. */
export function json(response, status, body) {
  response.writeHead(status, { "content-type": "application/json" });
  response.end(JSON.stringify(body));
}

/** A request error answered with its status and `{ error: message }` (the contract's agentErrorSchema). */
export function httpError(status, message) {
  return Object.assign(new Error(message), { status });
}

/** Reads a request body of at most limitBytes (413 past it, whatever content-length says). */
export async function readBody(request, limitBytes) {
  const declared = Number(request.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limitBytes) throw httpError(413, `body over ${limitBytes} bytes`);
  const chunks = [];
  let size = 0;
  for await (const chunk of request) {
    size += chunk.length;
    if (size > limitBytes) throw httpError(413, `body over ${limitBytes} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * Reads a JSON request body of at most limitBytes; 400 when it is not JSON. An empty body is
 * `emptyValue` when one is given (a body the caller may leave out), else refused as not JSON.
 */
export async function readJson(request, limitBytes, emptyValue) {
  const body = await readBody(request, limitBytes);
  if (body.length === 0 && emptyValue !== undefined) return emptyValue;
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    throw httpError(400, "body is not valid JSON");
  }
}
