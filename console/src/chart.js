/* global ResizeObserver */
// A rule's metric over time with uPlot: the value, the threshold as a dashed line, and the
// points where the rule is in alert shaded behind them.
import { html } from 'htm/preact';
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { formatValue, isLatency } from './format.js';

const VALUE_COLOR = '#1d4ed8';
const THRESHOLD_COLOR = '#b02a37';
const ALERT_FILL = 'rgba(176, 42, 55, 0.16)';
const AXIS_COLOR = '#374151';
const GRID_COLOR = '#e5e7eb';
const MIN_SHADE_PX = 6;
/** Tick spacings for counts: whole numbers only. */
const COUNT_INCRS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000];

/** From zero (counts and latencies are never negative) to a little above the highest line. */
const yRange = (_u, _min, max) => {
  const top = Math.max(1, max ?? 1);
  return [0, Math.ceil(top * 1.1)];
};

/** Shades each run of alert points, from its first point to the point after its last. */
function alertShading(xs, states) {
  return {
    hooks: {
      drawClear: [
        (u) => {
          const { ctx, bbox } = u;
          const step = xs.length > 1 ? xs[1] - xs[0] : 0;
          ctx.save();
          ctx.fillStyle = ALERT_FILL;
          for (let i = 0; i < xs.length; i += 1) {
            if (states[i] !== 'alert') continue;
            let j = i;
            while (j + 1 < xs.length && states[j + 1] === 'alert') j += 1;
            const end = j + 1 < xs.length ? xs[j + 1] : xs[j] + step;
            let left = Math.max(bbox.left, u.valToPos(xs[i], 'x', true));
            const right = Math.min(bbox.left + bbox.width, u.valToPos(end, 'x', true));
            // At least a few pixels, so that one point in alert (the newest, often) shows.
            left = Math.min(left, right - MIN_SHADE_PX);
            ctx.fillRect(left, bbox.top, right - left, bbox.height);
            i = j;
          }
          ctx.restore();
        },
      ],
    },
  };
}

/** Values with no value on either side: a line cannot show them, so they get a dot. */
function isolatedPoints(u, seriesIdx, show) {
  if (show) return null;
  const ys = u.data[seriesIdx];
  const lone = [];
  for (let i = 0; i < ys.length; i += 1) {
    if (ys[i] !== null && ys[i] !== undefined && (ys[i - 1] ?? null) === null && (ys[i + 1] ?? null) === null) lone.push(i);
  }
  return lone.length > 0 ? lone : null;
}

/** Words for what the picture shows, for screen readers and as a caption. */
function summary(points, threshold, operator, metric) {
  const alerts = points.filter((p) => p.state === 'alert').length;
  const last = [...points].reverse().find((p) => p.value !== null);
  return (
    `${points.length} points; ${alerts} in alert (shaded); threshold ${operator} ${formatValue(threshold, metric)} (dashed line); ` +
    `latest value ${last ? formatValue(last.value, metric) : 'none (no data)'}.`
  );
}

/**
 * @param {{points: {at: string, value: number|null, state: string}[], threshold: number,
 *   operator: string, metric: string, title: string, height?: number}} props
 */
export function SeriesChart({ points, threshold, operator, metric, title, height = 240 }) {
  const ref = useRef(null);
  useEffect(() => {
    const el = ref.current;
    if (!el || !points || points.length === 0) return undefined;
    const xs = points.map((p) => Date.parse(p.at) / 1000);
    const ys = points.map((p) => p.value);
    const limit = points.map(() => threshold);
    const width = () => Math.max(280, el.clientWidth);
    const valueText = (_u, v) => (v === null || v === undefined ? '—' : formatValue(v, metric));
    const chart = new uPlot(
      {
        width: width(),
        height,
        scales: { x: { time: true }, y: { range: yRange } },
        series: [
          {},
          { label: metric, stroke: VALUE_COLOR, width: 2, value: valueText, points: { show: false, filter: isolatedPoints, size: 6, fill: VALUE_COLOR } },
          { label: `threshold (${operator} ${threshold})`, stroke: THRESHOLD_COLOR, width: 1.5, dash: [6, 4], value: valueText, points: { show: false } },
        ],
        axes: [
          { stroke: AXIS_COLOR, grid: { stroke: GRID_COLOR, width: 1 }, ticks: { stroke: GRID_COLOR } },
          {
            stroke: AXIS_COLOR,
            grid: { stroke: GRID_COLOR, width: 1 },
            ticks: { stroke: GRID_COLOR },
            size: 64,
            ...(isLatency(metric) ? {} : { incrs: COUNT_INCRS }),
          },
        ],
        plugins: [alertShading(xs, points.map((p) => p.state))],
      },
      [xs, ys, limit],
      el,
    );
    const observer = new ResizeObserver(() => {
      if (width() !== chart.width) chart.setSize({ width: width(), height });
    });
    observer.observe(el);
    return () => {
      observer.disconnect();
      chart.destroy();
    };
  }, [points, threshold, operator, metric, height]);

  if (!points || points.length === 0) return html`<p class="muted">No points in this range.</p>`;
  return html`<figure class="chart">
    <div class="chart-plot" ref=${ref} role="img" aria-label=${`${title}: ${summary(points, threshold, operator, metric)}`}></div>
    <figcaption>${summary(points, threshold, operator, metric)}</figcaption>
  </figure>`;
}
