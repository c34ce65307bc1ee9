// What the views share: errors told in words, the environment editor's text form, runtimes.
import { h, link, notice } from "../dom.js";

/** A readable notice for an API error; a namespace the key may not see is said plainly. */
export function errorNotice(error, { namespace } = {}) {
  if (error?.code === "NOT_FOUND" && namespace && /namespace/.test(error.message)) {
    return notice(
      "error",
      h("strong", {}, `Namespace “${namespace}” is not visible with these credentials.`),
      " It does not exist or the key is scoped to other namespaces: switch namespace above.",
    );
  }
  if (error?.code === "FUNCTION_NOT_FOUND") {
    return notice("error", "This function does not exist (any more). ", link("Back to the functions", "functions"));
  }
  if (error?.code === "EVENT_NOT_FOUND") {
    return notice("error", "No such event is visible with these credentials (events are kept 3 days after they end).");
  }
  if (error?.status === 401) return notice("error", "Your credentials were refused: sign out and sign in again.");
  if (error?.status === 429) return notice("error", `Too many requests: ${error.message}. Try again in a moment.`);
  const code = error?.code ? `${error.code}: ` : "";
  return notice("error", `${code}${error?.message ?? error}`);
}

/** The runtimes a function may use: RUNTIME_NAMES of worker/contract/execution-spec.ts (the console test checks). */
export const RUNTIMES = [
  "Nodejs22",
  "Nodejs20.15",
  "Nodejs18.15",
  "Nodejs16.13",
  "Nodejs14.18",
  "Nodejs12.16",
  "Nodejs10.15",
  "Python3.11",
  "Python3.10",
  "Python3.9",
  "Python3.7",
  "Python3.6",
  "CustomRuntime",
];

/** A small handler for the inline editor, per runtime family. */
export function templateFor(runtime) {
  if (runtime === "CustomRuntime") {
    // SCF's runtime API over bash's /dev/tcp (the runtime image has no curl); zipped executable.
    return {
      file: "scf_bootstrap",
      code: `#!/bin/bash
# One HTTP/1.0 request to SCF's runtime API: http METHOD PATH [BODY]; sets BODY and REQUEST_ID.
http() {
  local body="\${3-}" line
  exec 5<>"/dev/tcp/$SCF_RUNTIME_API/$SCF_RUNTIME_API_PORT"
  printf '%s %s HTTP/1.0\\r\\nContent-Length: %d\\r\\n\\r\\n%s' "$1" "$2" "$(LC_ALL=C; echo \${#body})" "$body" >&5
  while IFS= read -r line <&5; do
    line="\${line%$'\\r'}"; [ -z "$line" ] && break
    case "\${line,,}" in request_id:*) REQUEST_ID="\${line#*: }" ;; esac
  done
  BODY=$(cat <&5); exec 5<&-
}
http POST /runtime/init/ready " "
while true; do
  http GET /runtime/invocation/next
  echo "hello from $REQUEST_ID"
  http POST /runtime/invocation/response "{\\"echo\\":$BODY}"
done
`,
    };
  }
  if (runtime.startsWith("Python")) {
    return {
      file: "index.py",
      code: 'import time\n\n\ndef main_handler(event, context):\n    print("hello from " + context["request_id"])\n    return {"echo": event}\n',
    };
  }
  return {
    file: "index.js",
    code: 'exports.main_handler = async (event, context) => {\n  console.log("hello from " + context.request_id);\n  return { echo: event };\n};\n',
  };
}

/** Environment variables as KEY=VALUE lines. */
export function environmentText(environment = {}) {
  return Object.entries(environment)
    .map(([key, value]) => `${key}=${value}`)
    .join("\n");
}

/** KEY=VALUE lines as an object; throws with the line that is not one. */
export function parseEnvironment(text) {
  const environment = {};
  text.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    if (!line || line.startsWith("#")) return;
    const separator = line.indexOf("=");
    if (separator <= 0) throw new Error(`environment line ${index + 1}: expected KEY=VALUE`);
    environment[line.slice(0, separator).trim()] = line.slice(separator + 1);
  });
  return environment;
}

/** What each StatusCode means (README "Invoke asynchronously", "Terminate"). */
export const STATUS_CODES = {
  200: "the handler returned (after a graceful terminate: it returned)",
  430: "the handler threw an error",
  433: "past the function's timeout; the container was destroyed",
  434: "over the memory limit",
  439: "the user process exited while running (exit, a signal, or SIGTERM not handled)",
  499: "terminated by request (forced, queued or starting, or still running 30 s after SIGTERM)",
};
