/**
 * Line charts as standalone SVG documents, for the soak's plot: one panel per series, stacked,
 * sharing the time axis, each with its own zero-based scale so a 10% drift looks like 10%.
 */

/** One panel: a named line of `[x, y]` points. */
export interface Series {
  /** The panel's title, with its unit, e.g. "server RSS (MiB)". */
  label: string;
  points: Array<[number, number]>;
  /** An SVG colour. */
  color: string;
}

/** What the panels share. */
export interface ChartOptions {
  title: string;
  /** The x axis' name, with its unit. */
  xLabel: string;
  /** A vertical line across every panel, e.g. the end of the warm-up. */
  marker?: { x: number; label: string };
}

const WIDTH = 800;
const PANEL = 170;
const LEFT = 80;
const RIGHT = 20;
const TOP = 40;
const BOTTOM = 40;
/** Vertical space of a panel taken by its title above the plot area. */
const TITLE = 24;

/** The series as stacked line charts over the same x range, as an SVG document. */
export function stackedLineChart(series: Series[], options: ChartOptions): string {
  const xs = series.flatMap((s) => s.points.map(([x]) => x));
  const xMin = Math.min(0, ...xs);
  const xMax = Math.max(xMin + 1e-9, ...xs);
  const plotWidth = WIDTH - LEFT - RIGHT;
  const plotHeight = PANEL - TITLE - 16;
  const x = (v: number): number => LEFT + ((v - xMin) / (xMax - xMin)) * plotWidth;
  const height = TOP + series.length * PANEL + BOTTOM;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" ` +
    `viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${height}" fill="white"/>`,
    text(WIDTH / 2, 22, options.title, 'text-anchor="middle" font-size="15"'),
  ];
  series.forEach((s, i) => {
    const top = TOP + i * PANEL + TITLE;
    parts.push(...panel(s, top, plotHeight, x));
  });
  const bottom = TOP + series.length * PANEL - 16;
  for (const v of ticks(xMin, xMax)) {
    parts.push(text(x(v), bottom + 16, round(v), 'text-anchor="middle"'));
  }
  parts.push(text(LEFT + plotWidth / 2, bottom + 32, options.xLabel, 'text-anchor="middle"'));
  if (options.marker) {
    const mx = x(options.marker.x).toFixed(1);
    parts.push(
      `<line x1="${mx}" y1="${TOP}" x2="${mx}" y2="${bottom}" stroke="#888" ` +
        `stroke-dasharray="4 3"/>`,
      text(Number(mx) + 4, TOP + 12, options.marker.label, 'fill="#555"'),
    );
  }
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}

/** One panel's title, axis, grid and line; y runs from 0 to a round number above the maximum. */
function panel(s: Series, top: number, plotHeight: number, x: (v: number) => number): string[] {
  const yMax = niceCeiling(Math.max(0, ...s.points.map(([, y]) => y)));
  const y = (v: number): number => top + plotHeight - (v / yMax) * plotHeight;
  const out = [text(LEFT, top - 12, s.label, 'font-weight="bold"')];
  for (const v of ticks(0, yMax)) {
    const gy = y(v).toFixed(1);
    out.push(
      `<line x1="${LEFT}" y1="${gy}" x2="${WIDTH - RIGHT}" y2="${gy}" stroke="#e4e4e4"/>`,
      text(LEFT - 6, Number(gy) + 4, round(v), 'text-anchor="end"'),
    );
  }
  const points = s.points.map(([px, py]) => `${x(px).toFixed(1)},${y(py).toFixed(1)}`).join(" ");
  out.push(
    `<polyline fill="none" stroke="${escape(s.color)}" stroke-width="1.5" points="${points}"/>`,
  );
  return out;
}

/** 0 to `max` in four or five steps of 1, 2 or 5 times a power of ten. */
function ticks(min: number, max: number): number[] {
  const span = max - min;
  if (!(span > 0)) return [min];
  const step = niceStep(span / 4);
  const out: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9 && out.length < 12; v += step) {
    out.push(v);
  }
  return out;
}

function niceStep(raw: number): number {
  const power = 10 ** Math.floor(Math.log10(raw));
  const scaled = raw / power;
  return (scaled <= 1 ? 1 : scaled <= 2 ? 2 : scaled <= 5 ? 5 : 10) * power;
}

/** The smallest multiple of a nice step at or above `v`: the top of a panel's scale. */
function niceCeiling(v: number): number {
  if (!(v > 0)) return 1;
  const step = niceStep(v / 4);
  return Math.ceil((v * 1.05) / step) * step;
}

function round(v: number): string {
  return String(Math.round(v * 1000) / 1000);
}

function text(x: number, y: number, content: string, attributes = ""): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attributes}>${escape(content)}</text>`;
}

function escape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(
    /"/g,
    "&quot;",
  );
}
