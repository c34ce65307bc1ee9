// One event: its state (GET /v1/events/{id}, polled while it runs), its log followed live over
// the SSE route (resumed after a disconnect), payload, deliveries, replay, and terminate.
import { api, downloadLog, followLog, path } from "../api.js";
import { badge, confirmAction, duration, facts, h, link, notice, time } from "../dom.js";
import { errorNotice, STATUS_CODES } from "./common.js";

/** How often a running event's state is read again, in ms. */
const POLL_MS = 1500;
/** Most log lines kept on the page (older ones are dropped from view, not from the event). */
const MAX_SHOWN_LINES = 5000;

export async function render(container, params) {
  const requestId = params.get("id") ?? "";
  const eventPath = path("v1", "events", requestId);
  let event;
  try {
    event = (await api("GET", eventPath)).body;
  } catch (error) {
    container.append(h("h1", {}, "Event"), errorNotice(error));
    return;
  }

  const state = h("div", { id: "event-state" });
  const timeline = h("div", { id: "event-timeline" });
  const actions = h("div", { class: "actions", id: "event-actions" });
  const actionStatus = h("div", { id: "terminate-status" });
  const extras = h("div", { class: "columns" });
  const logSection = logPanel(requestId);

  const drawState = () => {
    const meaning = event.statusCode !== null ? STATUS_CODES[event.statusCode] : undefined;
    state.replaceChildren(
      h(
        "p",
        { class: "status-line" },
        badge(event.status),
        " ",
        h("span", { id: "event-phase" }, `phase ${event.phase}`),
        event.terminateRequestedAt
          ? h("span", { class: "muted" }, ` · terminate requested ${time(event.terminateRequestedAt)}`)
          : null,
        queuedText(event),
        event.terminationMode
          ? h(
              "span",
              { class: "muted", id: "event-termination" },
              ` · ${event.terminationMode} terminate`,
              event.signalDeliveredAt ? `, SIGTERM delivered ${time(event.signalDeliveredAt)}` : "",
              event.endedWithinGrace === true ? ", ended within the grace period" : "",
              event.endedWithinGrace === false ? ", stopped by the platform after SIGTERM" : "",
            )
          : null,
      ),
      facts(
        [
          [
            "StatusCode",
            event.statusCode === null
              ? "— (running)"
              : h("span", {}, h("strong", {}, String(event.statusCode)), meaning ? ` — ${meaning}` : ""),
          ],
          [
            "Function",
            link(`${event.functionName} (${event.namespace})`, "function", {
              ns: event.namespace,
              fn: event.functionName,
            }),
          ],
          ["Qualifier", event.qualifier],
          ["Invoke type", event.invokeType],
          ["Invoked", time(event.invokedAt)],
          ["Started", time(event.startedAt)],
          ["Ended", time(event.endedAt)],
          ["Duration", duration(event.durationMs)],
          ["Memory", event.memoryUsageKb === null ? "—" : `${Math.round(event.memoryUsageKb / 1024)} MB`],
          ["Instance", event.instanceId ?? "—"],
          ["Container", event.containerId ?? "—"],
          ["Start", event.coldStart === null ? "—" : event.coldStart ? "cold" : "warm"],
          ...(event.tags !== undefined ? [["Tags", tagList(event.tags, event)]] : []),
          ["Replay of", event.replayOf ? link(event.replayOf, "event", { id: event.replayOf }) : "—"],
          [
            "Replays",
            event.replays.length
              ? h(
                  "span",
                  {},
                  event.replays.map((id) => [link(id.slice(0, 8), "event", { id }), " "]),
                  event.replaysTruncated ? `(${event.replayCount} in all)` : "",
                )
              : "—",
          ],
        ],
        "facts pairs",
      ),
      ...(event.progress ? [progressView(event.progress)] : []),
      ...(event.status !== "RUNNING" ? [outcome(event)] : []),
    );
    timeline.replaceChildren(timelineView(event.timeline));
    const running = event.status === "RUNNING";
    // replaceChildren would write a null as the text "null": only the buttons that apply.
    const buttons = [
      running
        ? h(
            "button",
            {
              type: "button",
              id: "terminate-graceful",
              disabled: Boolean(event.terminateRequestedAt),
              onclick: () => terminate(true),
            },
            "Terminate gracefully (SIGTERM)",
          )
        : null,
      running
        ? h(
            "button",
            { type: "button", class: "danger", id: "terminate-forced", onclick: () => terminate(false) },
            "Terminate now (forced)",
          )
        : null,
      h("button", { type: "button", id: "replay", onclick: replay }, "Replay"),
      link(
        "All events of the function",
        "events",
        { ns: event.namespace, fn: event.functionName },
        { class: "button" },
      ),
    ];
    actions.replaceChildren(...buttons.filter(Boolean));
  };

  const terminate = async (graceful) => {
    const sure = await confirmAction(
      graceful ? "Terminate gracefully?" : "Terminate now?",
      graceful
        ? "SIGTERM goes to the handler, which may clean up and end within 30 seconds; the event ends ABORTED."
        : "The handler is stopped at once (its container destroyed); the event ends ABORTED with 499.",
      graceful ? "Send SIGTERM" : "Terminate now",
    );
    if (!sure) return;
    try {
      event = (await api("POST", `${eventPath}/terminate`, { body: { graceful } })).body;
      actionStatus.replaceChildren(
        notice("info", graceful ? "SIGTERM sent: the outcome appears here and in the log." : "Terminating…"),
      );
      drawState();
    } catch (error) {
      actionStatus.replaceChildren(errorNotice(error));
    }
  };

  const replay = async () => {
    try {
      const { body } = await api("POST", `${eventPath}/replay`, { body: {} });
      actionStatus.replaceChildren(notice("ok", "Replayed as ", link(body.requestId, "event", { id: body.requestId })));
    } catch (error) {
      actionStatus.replaceChildren(errorNotice(error));
    }
  };

  const loadExtras = async () => {
    const parts = [];
    try {
      const payload = await fetchPayload(requestId);
      parts.push(
        h(
          "section",
          { class: "card", "aria-labelledby": "payload-title" },
          h("h2", { id: "payload-title" }, "Payload"),
          h("pre", { class: "code" }, payload),
        ),
      );
    } catch (error) {
      parts.push(h("section", { class: "card" }, h("h2", {}, "Payload"), errorNotice(error)));
    }
    try {
      const { body } = await api("GET", `${eventPath}/deliveries`);
      parts.push(
        h(
          "section",
          { class: "card", "aria-labelledby": "deliveries-title" },
          h("h2", { id: "deliveries-title" }, "Deliveries"),
          body.deliveries.length === 0
            ? h("p", { class: "muted" }, "None: no destination configured for this ending, or the event still runs.")
            : h(
                "ul",
                {},
                body.deliveries.map((d) =>
                  h(
                    "li",
                    {},
                    `${d.kind} → ${d.destination}: ${d.state}, ${d.attemptCount} attempt(s)`,
                    d.nextAttemptAt ? `, next ${time(d.nextAttemptAt)}` : "",
                    d.attempts.at(-1)?.error ? ` (last error: ${d.attempts.at(-1).error})` : "",
                  ),
                ),
              ),
        ),
      );
    } catch (error) {
      parts.push(h("section", { class: "card" }, h("h2", {}, "Deliveries"), errorNotice(error)));
    }
    extras.replaceChildren(...parts);
  };

  drawState();
  container.append(
    h("div", { class: "title-row" }, h("h1", {}, "Event ", h("span", { class: "mono" }, requestId))),
    h(
      "section",
      { class: "card", "aria-labelledby": "state-title" },
      h("h2", { id: "state-title", class: "sr-only" }, "State"),
      state,
      actions,
      actionStatus,
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "timeline-title" },
      h("h2", { id: "timeline-title" }, "Timeline"),
      timeline,
    ),
    logSection,
    extras,
  );
  loadExtras();

  let stopped = false;
  const poll = async () => {
    while (!stopped && event.status === "RUNNING") {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      if (stopped) return;
      try {
        const next = (await api("GET", eventPath)).body;
        const changed = JSON.stringify(next) !== JSON.stringify(event);
        event = next;
        if (changed) drawState();
        if (event.status !== "RUNNING") {
          actionStatus.replaceChildren(
            notice(
              event.status === "FINISHED" ? "ok" : "info",
              `The event ended ${event.status} (${event.statusCode}).`,
            ),
          );
          loadExtras();
        }
      } catch {}
    }
  };
  poll();
  return () => {
    stopped = true;
    logSection.stop();
  };
}

/** What a queued event waits for (queuedReason of its status), as words; nothing otherwise. */
const QUEUED_REASONS = {
  paused: "its function's dispatch is paused: it starts once dispatch is resumed",
  concurrency: "its function already runs as many events as its concurrency allows",
  "namespace-quota": "the namespace runs as many containers as its quota allows",
};

function queuedText(event) {
  if (!event.queuedReason) return null;
  return h(
    "span",
    { class: "queued-reason", id: "event-queued-reason", dataset: { reason: event.queuedReason } },
    ` · queued: ${QUEUED_REASONS[event.queuedReason] ?? event.queuedReason}`,
  );
}

/** Tags as key=value chips, each a link to the function's events with that tag. */
export function tagList(tags, event) {
  const entries = Object.entries(tags ?? {});
  if (entries.length === 0) return "—";
  return h(
    "span",
    { class: "tags" },
    entries.map(([key, value]) =>
      link(
        `${key}=${value}`,
        "events",
        { ns: event.namespace, fn: event.functionName, tags: `${key}=${value}` },
        { class: "tag", title: `Events of ${event.functionName} tagged ${key}=${value}` },
      ),
    ),
  );
}

/** The handler's last progress report: a bar, its percent and message, and when it came. */
function progressView(progress) {
  const percent = Math.max(0, Math.min(100, Number(progress.percent) || 0));
  return h(
    "div",
    { class: "progress-report", id: "event-progress" },
    h("h3", {}, "Progress"),
    h(
      "p",
      {},
      h("progress", { max: 100, value: percent, "aria-label": "Progress" }),
      " ",
      h("strong", { id: "event-progress-percent" }, `${percent}%`),
      progress.message ? [" — ", h("span", { id: "event-progress-message" }, progress.message)] : "",
      h("span", { class: "muted" }, ` (reported ${time(progress.at)})`),
    ),
  );
}

/** The event's transitions: each one's time, its offset from acceptance, what happened and detail. */
function timelineView(entries) {
  if (!Array.isArray(entries) || entries.length === 0)
    return h("p", { class: "muted" }, "No transitions recorded for this event.");
  const first = Date.parse(entries[0].at);
  return h(
    "ol",
    { class: "timeline" },
    entries.map((entry) => {
      const at = Date.parse(entry.at);
      const offset = Number.isNaN(at) || Number.isNaN(first) ? "" : `+${duration(at - first)}`;
      return h(
        "li",
        { class: `timeline-entry kind-${entry.kind}`, dataset: { kind: entry.kind } },
        h("time", { datetime: entry.at, title: entry.at }, time(entry.at)),
        h("span", { class: "offset muted" }, offset),
        h("span", { class: "kind" }, entry.kind),
        h("span", { class: "detail" }, entry.detail ?? ""),
      );
    }),
  );
}

/** The payload's exact text (pretty-printed when it parses). */
async function fetchPayload(requestId) {
  const { body } = await api("GET", path("v1", "events", requestId, "payload"));
  return JSON.stringify(body, null, 2);
}

/** The result, or the error with its stack. */
function outcome(event) {
  if (event.errorMessage || event.errorStack) {
    return h(
      "div",
      { class: "outcome" },
      h("h3", {}, "Error"),
      h("p", { class: "error-text" }, event.errorMessage ?? ""),
      event.errorStack ? h("pre", { class: "code" }, event.errorStack) : null,
    );
  }
  return h(
    "div",
    { class: "outcome" },
    h("h3", {}, "Result"),
    h("pre", { class: "code", id: "event-result" }, JSON.stringify(event.result, null, 2)),
  );
}

/** The log, followed live: stdout, stderr and platform lines told apart, searchable. */
function logPanel(requestId) {
  const lines = h("ol", { class: "log", id: "event-log", "aria-live": "off" });
  const connection = h("span", { class: "muted", id: "log-state" }, "connecting…");
  const search = h("input", { type: "search", id: "log-search", placeholder: "filter lines", autocomplete: "off" });
  const counts = { stdout: 0, stderr: 0, platform: 0 };
  const countText = h("span", { class: "muted", id: "log-counts" });
  const streamBoxes = Object.fromEntries(
    ["stdout", "stderr", "platform"].map((stream) => [
      stream,
      h("input", { type: "checkbox", checked: true, id: `log-show-${stream}` }),
    ]),
  );
  const visible = (item) => {
    const term = search.value.trim().toLowerCase();
    return streamBoxes[item.dataset.stream].checked && (!term || item.dataset.text.includes(term));
  };
  const applyFilter = () => {
    for (const item of lines.children) item.hidden = !visible(item);
  };
  search.addEventListener("input", applyFilter);
  for (const box of Object.values(streamBoxes)) box.addEventListener("change", applyFilter);
  const updateCounts = () => {
    countText.textContent = `${counts.stdout} stdout · ${counts.stderr} stderr · ${counts.platform} platform`;
  };
  updateCounts();
  const stop = followLog(requestId, {
    // The last lines the view keeps, then live: a long log is not replayed whole (download it instead).
    tail: MAX_SHOWN_LINES,
    onRecord: (record) => {
      counts[record.stream] = (counts[record.stream] ?? 0) + 1;
      const stamp = new Date(record.ts).toLocaleTimeString(undefined, { hour12: false });
      const item = h(
        "li",
        {
          class: `line ${record.stream}`,
          dataset: { stream: record.stream, seq: record.seq, text: record.line.toLowerCase() },
        },
        h("span", { class: "seq" }, String(record.seq)),
        h("time", {}, stamp),
        h("span", { class: "stream" }, record.stream),
        h("span", { class: "text" }, record.line),
      );
      item.hidden = !visible(item);
      const atBottom = lines.scrollTop + lines.clientHeight >= lines.scrollHeight - 8;
      lines.append(item);
      if (lines.children.length > MAX_SHOWN_LINES) lines.firstElementChild.remove();
      if (atBottom) lines.scrollTop = lines.scrollHeight;
      updateCounts();
    },
    onState: (text) => {
      connection.textContent = text;
    },
    onEnd: () => {
      connection.textContent = "complete (the event ended)";
    },
  });
  const section = h(
    "section",
    { class: "card", "aria-labelledby": "log-title" },
    h("div", { class: "title-row" }, h("h2", { id: "log-title" }, "Log"), connection),
    h(
      "div",
      { class: "toolbar" },
      h("label", { for: "log-search" }, "Search"),
      search,
      Object.entries(streamBoxes).map(([stream, box]) => h("label", { class: `check stream-${stream}` }, box, stream)),
      countText,
      h(
        "button",
        {
          type: "button",
          id: "log-download",
          onclick: () =>
            downloadLog(requestId).catch((error) => (connection.textContent = `download failed: ${error.message}`)),
        },
        "Download the whole log",
      ),
    ),
    h("p", { class: "muted" }, `The last ${MAX_SHOWN_LINES} lines are shown; the download has every line.`),
    lines,
  );
  section.stop = stop;
  return section;
}
