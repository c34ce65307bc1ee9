// A Custom Runtime (SCF's `CustomRuntime`) written in bash for the agent and e2e tests: its
// `scf_bootstrap` speaks SCF's runtime API with HTTP/1.0 over bash's /dev/tcp (the runtime image has
// no curl), and behaves as its event's "mode" says. Zipped with the executable bit it needs.
import { craftZip } from "../agent/zip-craft";

/**
 * The bootstrap. Modes: (none) returns what it got; "error" posts an error; "exit" exits 3 mid-event;
 * "oneshot" returns "one shot <requestId>" and exits 0 (the next event starts it again);
 * "sleep" prints "ready" and waits (up to 60 s) for SIGTERM, which its trap turns into a result;
 * "progress" reports 40% then returns; "big" posts a result over 1 MiB; "bigerror" a 100 KB error;
 * "probe" tries the API's refusals and returns their statuses, "late" then returns the statuses of
 * the probe's posts after its result; "forge" writes a fake report on fd 3.
 */
export const BASH_BOOTSTRAP = `#!/bin/bash
# http METHOD PATH [BODY]: one HTTP/1.0 request to SCF's runtime API; sets STATUS, BODY, REQUEST_ID, MEMORY.
http() {
  local method="$1" path="$2" body="\${3-}" line length
  exec 5<>"/dev/tcp/$SCF_RUNTIME_API/$SCF_RUNTIME_API_PORT" || return 1
  length=$(LC_ALL=C; echo \${#body})
  printf '%s %s HTTP/1.0\\r\\nContent-Length: %d\\r\\n\\r\\n%s' "$method" "$path" "$length" "$body" >&5
  read -r line <&5
  STATUS=$(echo "$line" | cut -d' ' -f2)
  while IFS= read -r line <&5; do
    line="\${line%$'\\r'}"
    [ -z "$line" ] && break
    case "\${line,,}" in
      request_id:*) REQUEST_ID="\${line#*: }" ;;
      memory_limit_in_mb:*) MEMORY="\${line#*: }" ;;
    esac
  done
  BODY=$(cat <&5)
  exec 5<&-
}
TERMINATED=0
trap 'echo "got TERM, finishing"; TERMINATED=1' TERM
echo "init handler=$_HANDLER runtime=$SCF_RUNTIME api=$SCF_RUNTIME_API"
http POST /runtime/invocation/response '"too early"'; EARLY=$STATUS
http POST /runtime/init/ready " "
while true; do
  http GET /runtime/invocation/next
  EVENT="$BODY"
  echo "event $REQUEST_ID $EVENT"
  case "$EVENT" in
    *'"mode":"error"'*) http POST /runtime/invocation/error "bad input: $EVENT" ;;
    *'"mode":"exit"'*) echo "exiting 3"; exit 3 ;;
    *'"mode":"oneshot"'*) http POST /runtime/invocation/response "\\"one shot $REQUEST_ID\\""; exit 0 ;;
    *'"mode":"sleep"'*)
      TERMINATED=0
      echo "ready"
      for i in $(seq 1 600); do [ "$TERMINATED" = 1 ] && break; sleep 0.1; done
      http POST /runtime/invocation/response "{\\"terminated\\":$TERMINATED}" ;;
    *'"mode":"progress"'*)
      http POST /runtime/invocation/progress '{"percent":40,"message":"two of five"}'
      http POST /runtime/invocation/response "{\\"progressStatus\\":$STATUS}" ;;
    *'"mode":"big"'*) http POST /runtime/invocation/response "$(head -c 1100000 /dev/zero | tr '\\0' 'x')" ;;
    *'"mode":"bigerror"'*) http POST /runtime/invocation/error "$(head -c 100000 /dev/zero | tr '\\0' 'e')" ;;
    *'"mode":"forge"'*)
      echo '{"requestId":"'"$REQUEST_ID"'","kind":"returned","result":"forged"}' >&3 2>/dev/null
      http POST /runtime/invocation/response '"honest"' ;;
    *'"mode":"probe"'*)
      http GET /runtime/nowhere; A=$STATUS
      http POST /runtime/invocation/progress 'not json'; B=$STATUS
      http POST /runtime/invocation/response "{\\"notFound\\":$A,\\"badProgress\\":$B,\\"early\\":$EARLY}"
      http POST /runtime/invocation/response '"again"'; C=$STATUS
      http POST /runtime/invocation/error 'late'; D=$STATUS
      LATE="$C $D" ;;
    *'"mode":"late"'*) http POST /runtime/invocation/response "\\"$LATE\\"" ;;
    *) http POST /runtime/invocation/response "{\\"echo\\":$EVENT,\\"requestId\\":\\"$REQUEST_ID\\",\\"memory\\":$MEMORY,\\"handler\\":\\"$_HANDLER\\",\\"user\\":\\"$(id -u)\\"}" ;;
  esac
done
`;

/** Unix mode of an executable file entry (regular file, 0755). */
export const EXECUTABLE_MODE = 0o100755;

/** A zip of the bootstrap under `name` (scf_bootstrap by default), executable unless told otherwise. */
export function customRuntimeZip(options: { name?: string; executable?: boolean; script?: string } = {}): Uint8Array {
  const data = new TextEncoder().encode(options.script ?? BASH_BOOTSTRAP);
  return craftZip([
    {
      name: options.name ?? "scf_bootstrap",
      data,
      ...(options.executable === false ? {} : { unixMode: EXECUTABLE_MODE }),
    },
  ]);
}
