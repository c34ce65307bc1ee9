// Events of a function (GET .../events): every filter of ListAsyncEvents, kept in the URL query so
// a reload or a shared link restores the view; live refresh; the statistics chart.
import { api, path } from "../api.js";
import { badge, duration, h, link, navigate, time, viewUrl } from "../dom.js";
import { statisticsChart } from "./chart.js";
import { errorNotice } from "./common.js";
import { tagList } from "./event.js";
import { pager } from "./functions.js";

const STATUSES = ["RUNNING", "FINISHED", "FAILED", "ABORTED"];
const TIME_FILTERS = [
  ["startTimeFrom", "Started from"],
  ["startTimeTo", "Started before"],
  ["endTimeFrom", "Ended from"],
  ["endTimeTo", "Ended before"],
];
/** The filters read from and written to the URL, as the API names them. */
const FILTERS = [
  "statuses",
  "invokeTypes",
  "qualifier",
  "requestId",
  "statusCodes",
  "tags",
  ...TIME_FILTERS.map(([key]) => key),
  "orderBy",
  "order",
  "limit",
];
/** Longest tag filter the API takes: 5 key=value pairs (MAX_TAG_FILTERS × (64 + 128 + 2) characters). */
const MAX_TAG_FILTER_CHARS = 5 * (64 + 128 + 2);
/** Live refresh period, in ms. */
const REFRESH_MS = 3000;

/** An ISO time as a datetime-local input's value (local time, to the second). */
function localInput(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

export async function render(container, params, { namespace }) {
  const name = params.get("fn") ?? "";
  const filters = Object.fromEntries(FILTERS.map((key) => [key, params.get(key) ?? ""]));
  const offset = Math.max(0, Number.parseInt(params.get("offset") ?? "0", 10) || 0);
  const live = params.get("live") !== "0";
  const statuses = new Set(filters.statuses.split(",").filter(Boolean));

  const form = h(
    "form",
    { class: "filters card", id: "event-filters", "aria-label": "Event filters" },
    h(
      "fieldset",
      { class: "statuses" },
      h("legend", {}, "Status"),
      STATUSES.map((status) =>
        h(
          "label",
          { class: "check" },
          h("input", { type: "checkbox", name: "statuses", value: status, checked: statuses.has(status) }),
          status,
        ),
      ),
    ),
    h(
      "div",
      { class: "field" },
      h("label", { for: "filter-invoke-types" }, "Invoke types"),
      h("input", {
        id: "filter-invoke-types",
        name: "invokeTypes",
        value: filters.invokeTypes,
        placeholder: "OTHERS,TIMER",
        maxlength: 330,
      }),
    ),
    h(
      "div",
      { class: "field" },
      h("label", { for: "filter-qualifier" }, "Qualifier"),
      h("input", {
        id: "filter-qualifier",
        name: "qualifier",
        value: filters.qualifier,
        placeholder: "$LATEST",
        maxlength: 64,
      }),
    ),
    h(
      "div",
      { class: "field" },
      h("label", { for: "filter-request-id" }, "RequestId"),
      h("input", {
        id: "filter-request-id",
        name: "requestId",
        value: filters.requestId,
        maxlength: 64,
        spellcheck: "false",
      }),
    ),
    h(
      "div",
      { class: "field" },
      h("label", { for: "filter-status-codes" }, "StatusCodes"),
      h("input", {
        id: "filter-status-codes",
        name: "statusCodes",
        value: filters.statusCodes,
        placeholder: "430,499",
        maxlength: 40,
        pattern: "\\d{1,3}(,\\d{1,3})*",
        title: "StatusCodes separated by commas, such as 430,499",
        spellcheck: "false",
      }),
    ),
    h(
      "div",
      { class: "field" },
      h("label", { for: "filter-tags" }, "Tags"),
      h("input", {
        id: "filter-tags",
        name: "tags",
        value: filters.tags,
        placeholder: "env=prod,team=video",
        maxlength: MAX_TAG_FILTER_CHARS,
        title: "key=value pairs separated by commas: every one must match",
        spellcheck: "false",
        autocomplete: "off",
      }),
    ),
    TIME_FILTERS.map(([key, label]) =>
      h(
        "div",
        { class: "field" },
        h("label", { for: `filter-${key}` }, label),
        h("input", {
          id: `filter-${key}`,
          name: key,
          type: "datetime-local",
          step: 1,
          value: localInput(filters[key]),
        }),
      ),
    ),
    h(
      "div",
      { class: "field" },
      h("label", { for: "filter-order-by" }, "Order by"),
      h(
        "select",
        { id: "filter-order-by", name: "orderBy" },
        ["startTime", "endTime"].map((value) =>
          h(
            "option",
            { value, selected: filters.orderBy === value },
            value === "startTime" ? "start time" : "end time",
          ),
        ),
      ),
    ),
    h(
      "div",
      { class: "field" },
      h("label", { for: "filter-order" }, "Order"),
      h(
        "select",
        { id: "filter-order", name: "order" },
        [
          ["DESC", "newest first"],
          ["ASC", "oldest first"],
        ].map(([value, text]) => h("option", { value, selected: filters.order.toUpperCase() === value }, text)),
      ),
    ),
    h(
      "div",
      { class: "field" },
      h("label", { for: "filter-limit" }, "Per page"),
      h(
        "select",
        { id: "filter-limit", name: "limit" },
        ["20", "50", "100"].map((value) => h("option", { value, selected: (filters.limit || "20") === value }, value)),
      ),
    ),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit", class: "primary", id: "apply-filters" }, "Apply filters"),
      link("Clear", "events", { ns: namespace, fn: name }, { class: "button" }),
    ),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const next = { ns: namespace, fn: name, statuses: data.getAll("statuses").join(",") };
    if (!form.reportValidity()) return;
    for (const key of ["invokeTypes", "qualifier", "requestId", "statusCodes", "tags", "orderBy", "order", "limit"])
      next[key] = String(data.get(key) ?? "").trim();
    for (const [key] of TIME_FILTERS) {
      const value = String(data.get(key) ?? "");
      next[key] = value ? new Date(value).toISOString() : "";
    }
    if (next.orderBy === "startTime") next.orderBy = "";
    if (next.order === "DESC") next.order = "";
    if (next.limit === "20") next.limit = "";
    if (!live) next.live = "0";
    navigate(viewUrl("events", next));
  });

  const liveBox = h("input", { type: "checkbox", id: "live-refresh", checked: live });
  liveBox.addEventListener("change", () => {
    const next = new URLSearchParams(location.search);
    if (liveBox.checked) next.delete("live");
    else next.set("live", "0");
    navigate(`/console?${next}`, { replace: true });
  });
  const updated = h("span", { class: "muted", id: "events-updated" });
  const results = h("div", { class: "results", id: "events-results" }, h("p", { class: "muted" }, "Loading…"));
  const chart = statisticsChart(namespace, name);

  container.append(
    h(
      "div",
      { class: "title-row" },
      h(
        "h1",
        {},
        "Events of ",
        link(name, "function", { ns: namespace, fn: name }),
        " ",
        h("span", { class: "muted" }, `in ${namespace}`),
      ),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "events-stats-title" },
      h("h2", { id: "events-stats-title" }, "Events per hour (last 3 days)"),
      chart,
    ),
    form,
    h("div", { class: "toolbar" }, h("label", { class: "check" }, liveBox, "Live refresh"), updated),
    results,
  );

  const load = async () => {
    try {
      const query = { offset: offset || undefined };
      for (const key of FILTERS) if (filters[key]) query[key] = filters[key];
      const { body } = await api("GET", path("v1", "namespaces", namespace, "functions", name, "events"), { query });
      results.replaceChildren(table(body, name, offset, Number(filters.limit || 20)));
      updated.textContent = `updated ${new Date().toLocaleTimeString(undefined, { hour12: false })}`;
    } catch (error) {
      results.replaceChildren(errorNotice(error, { namespace }));
    }
  };
  await load();
  if (!live) return;
  const timer = setInterval(() => {
    if (document.hidden) return;
    load();
    chart.refresh();
  }, REFRESH_MS);
  return () => clearInterval(timer);
}

/** A list row's progress: a small bar, the percent, and the message (its full text as the title). */
function progressCell(progress) {
  if (!progress) return "—";
  const percent = Math.max(0, Math.min(100, Number(progress.percent) || 0));
  return h(
    "span",
    { class: "progress-small", title: progress.message ? `${percent}% — ${progress.message}` : `${percent}%` },
    h("progress", { max: 100, value: percent, "aria-label": `${percent}%` }),
    ` ${percent}%`,
    progress.message ? h("span", { class: "progress-message" }, ` ${progress.message}`) : "",
  );
}

function table(body, name, offset, size) {
  if (body.total === 0) return h("p", { class: "empty" }, "No events match (the index keeps 3 days).");
  const last = Math.min(offset + body.events.length, body.total);
  // Tags and progress get a column when a row carries some (older platforms send neither field).
  const withTags = body.events.some((event) => event.tags && Object.keys(event.tags).length > 0);
  const withProgress = body.events.some((event) => event.progress);
  const labels = ["RequestId", "Status", "StatusCode", "Invoke type", "Qualifier", "Started", "Ended", "Duration"];
  if (withTags) labels.push("Tags");
  if (withProgress) labels.push("Progress");
  return h(
    "div",
    {},
    h(
      "table",
      { class: "grid", id: "events-table" },
      h("caption", { class: "sr-only" }, `Events of ${name}`),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          labels.map((label) => h("th", { scope: "col" }, label)),
        ),
      ),
      h(
        "tbody",
        {},
        body.events.map((event) =>
          h(
            "tr",
            { dataset: { requestId: event.requestId } },
            h("td", { class: "mono" }, link(event.requestId, "event", { id: event.requestId })),
            h("td", {}, badge(event.status)),
            h("td", { class: "num" }, event.statusCode ?? "—"),
            h("td", {}, event.invokeType),
            h("td", {}, event.qualifier),
            h("td", {}, time(event.startTime)),
            h("td", {}, time(event.endTime)),
            h("td", { class: "num" }, duration(event.durationMs)),
            withTags ? h("td", { class: "tags-cell" }, tagList(event.tags, { ...event, functionName: name })) : null,
            withProgress ? h("td", { class: "progress-cell" }, progressCell(event.progress)) : null,
          ),
        ),
      ),
    ),
    pager(offset, last, body.total, size, (next) => {
      const params = new URLSearchParams(location.search);
      params.set("offset", String(next));
      return `/console?${params}`;
    }),
  );
}
