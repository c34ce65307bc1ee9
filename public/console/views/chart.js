// The statistics chart: a function's events per status and hour over the last 3 days, stacked
// bars drawn as SVG (GET .../statistics), with the totals as text for screen readers and at a glance.
import { api, path } from "../api.js";
import { h, svg } from "../dom.js";
import { errorNotice } from "./common.js";

const STATUSES = ["FINISHED", "FAILED", "ABORTED", "RUNNING"];
const WIDTH = 720;
const HEIGHT = 160;
const AXIS = 28;

/** A chart element; `.refresh()` reloads it (the events view's live refresh calls it). */
export function statisticsChart(namespace, name) {
  const figure = h("figure", { class: "chart", id: "statistics-chart" }, h("p", { class: "muted" }, "Loading…"));
  const refresh = async () => {
    try {
      const { body } = await api("GET", path("v1", "namespaces", namespace, "functions", name, "statistics"));
      draw(figure, body);
    } catch (error) {
      figure.replaceChildren(errorNotice(error, { namespace }));
    }
  };
  figure.refresh = refresh;
  refresh();
  return figure;
}

function draw(figure, stats) {
  const peak = Math.max(1, ...stats.buckets.map((bucket) => STATUSES.reduce((sum, status) => sum + bucket[status], 0)));
  const slot = (WIDTH - AXIS) / stats.buckets.length;
  const bars = [];
  stats.buckets.forEach((bucket, index) => {
    let y = HEIGHT - 16;
    for (const status of STATUSES) {
      const count = bucket[status];
      if (!count) continue;
      const height = ((HEIGHT - 24) * count) / peak;
      y -= height;
      bars.push(
        svg(
          "rect",
          {
            x: AXIS + index * slot + 1,
            y,
            width: Math.max(1, slot - 2),
            height,
            class: `bar status-${status.toLowerCase()}`,
          },
          svg(
            "title",
            {},
            `${new Date(bucket.start).toLocaleString(undefined, { hour12: false })}: ${count} ${status}`,
          ),
        ),
      );
    }
  });
  const lastIndex = stats.buckets.length - 1;
  const labels = [0, 24, 48, lastIndex].map((index) => {
    const bucket = stats.buckets[index];
    if (!bucket) return null;
    const date = new Date(bucket.start);
    const text = `${date.toLocaleDateString(undefined, { month: "short", day: "numeric" })} ${String(date.getHours()).padStart(2, "0")}:00`;
    // The last label ends at the right edge rather than running past it.
    const anchor = index === lastIndex && index > 0 ? { "text-anchor": "end", x: WIDTH } : { x: AXIS + index * slot };
    return svg("text", { y: HEIGHT - 2, class: "axis", ...anchor }, text);
  });
  const chart = svg(
    "svg",
    { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-labelledby": "chart-caption", preserveAspectRatio: "none" },
    svg("line", { x1: AXIS, y1: HEIGHT - 16, x2: WIDTH, y2: HEIGHT - 16, class: "baseline" }),
    svg("text", { x: 0, y: 12, class: "axis" }, String(peak)),
    svg("text", { x: 0, y: HEIGHT - 18, class: "axis" }, "0"),
    ...bars,
    ...labels,
  );
  const total = STATUSES.reduce((sum, status) => sum + stats.totals[status], 0);
  figure.replaceChildren(
    chart,
    h(
      "figcaption",
      { id: "chart-caption" },
      `${total} events in the last ${stats.buckets.length} hours: `,
      STATUSES.map((status) =>
        h(
          "span",
          { class: "legend" },
          h("span", { class: `swatch status-${status.toLowerCase()}` }),
          `${status} ${stats.totals[status]}`,
        ),
      ),
    ),
  );
}
