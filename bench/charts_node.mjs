// The Node peer of `vigil bench charts`: renders the same `POST /render`
// bodies the way Chartcuterie does it in Node, with echarts' server-side
// SVG renderer, the SVG turned into PNG by @resvg/resvg-js, in `--procs`
// processes (one per core, as Node runs JavaScript on one thread).
//
//   node bench/charts_node.mjs --bodies FILE --procs N
//        [--seconds S | --count C] [--modules DIR] [--save DIR]
//
// FILE is written by vigil: {"styles": [{"style", "spec", "bodies"}]}, where
// spec is the style's resolved fields (chart_style_json) and bodies the
// request bodies as text. Styles run one after another (a phase each): every
// process renders that style's bodies for S seconds (or C renders), then
// all wait for the slowest before the next style. Prints one JSON object
// with the same figures as vigil's: per style and overall renders/s, p50,
// p99 (ms), CPU ms per render.

import { fork } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(import.meta.url);

function parseArgs(argv) {
  const a = { procs: 1, seconds: 2, count: 0, worker: false, save: '' };
  for (let i = 0; i < argv.length; ++i) {
    const k = argv[i];
    const v = () => argv[++i];
    if (k === '--bodies') a.bodies = v();
    else if (k === '--procs') a.procs = Number(v());
    else if (k === '--seconds') a.seconds = Number(v());
    else if (k === '--count') a.count = Number(v());
    else if (k === '--modules') a.modules = v();
    else if (k === '--save') a.save = v();
    else if (k === '--worker') a.worker = true;
    else throw new Error(`unknown argument ${k}`);
  }
  if (!a.bodies) throw new Error('--bodies FILE is required');
  if (!a.modules)
    a.modules = path.join(path.dirname(here), '..', 'tests', 'js', 'node_modules');
  return a;
}

// ---- the renderer (Chartcuterie's way) ------------------------------------

function loadRenderer(modules) {
  // The packages live in tests/js/node_modules, not beside this script.
  const require = createRequire(path.join(path.dirname(modules), 'package.json'));
  const echarts = require('echarts');
  const { Resvg } = require('@resvg/resvg-js');
  const pkg = (name) => require(`${name}/package.json`).version;
  return { echarts, Resvg, versions: { echarts: pkg('echarts'), resvg: pkg('@resvg/resvg-js') } };
}

// resvg parses the font for every render; a single font file is the
// cheapest configuration it offers (system font loading costs more).
const fontFile = '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf';
const resvgOptions = {
  font: { loadSystemFonts: false, fontFiles: [fontFile], defaultFontFamily: 'DejaVu Sans' },
};

const toMs = (ts) => (ts > 1e11 ? ts : ts * 1000);

function fromEventsStats(stats, name) {
  const points = [];
  for (const bucket of stats.data) {
    let v = 0;
    const counts = bucket[1];
    if (Array.isArray(counts)) for (const c of counts) v += typeof c === 'number' ? c : c.count || 0;
    else if (typeof counts === 'number') v = counts;
    points.push([toMs(bucket[0]), v]);
  }
  return { name, points };
}

const isEventsStats = (d) =>
  d && typeof d === 'object' && Array.isArray(d.data) && (d.data.length === 0 || Array.isArray(d.data[0]));

// The shapes vigil's `auto` transform recognises (messages/chart_series.cpp).
function recognise(data) {
  if (Array.isArray(data))
    return data.map((s) => ({
      name: s.seriesName || '',
      points: s.data.map((p) => [toMs(p.name), p.value]),
    }));
  if (isEventsStats(data)) return [fromEventsStats(data, 'count()')];
  if (data && data.stats) {
    if (isEventsStats(data.stats)) return [fromEventsStats(data.stats, data.seriesName || 'count()')];
    // Top events: ranked by `order`, as Chartcuterie does.
    return Object.entries(data.stats)
      .sort((a, b) => (a[1].order ?? 0) - (b[1].order ?? 0))
      .map(([k, v]) => fromEventsStats(v, k));
  }
  throw new Error('data of no known shape');
}

const total = (s) => s.points.reduce((a, p) => a + p[1], 0);

function transform(spec, data) {
  let series = recognise(data);
  for (const s of series) s.points.sort((a, b) => a[0] - b[0]);
  if (spec.transform === 'previousPeriod') {
    const all = series[0].points;
    const half = Math.floor(all.length / 2);
    const current = all.slice(half);
    const previous = all.slice(0, half).map((p, i) => [current[i][0], p[1]]);
    return [{ name: 'current', points: current }, { name: 'previous', points: previous }];
  }
  if (series.length > spec.maxSeries) {
    series = series.slice().sort((a, b) => total(b) - total(a)).slice(0, spec.maxSeries);
  }
  return series;
}

// 0, 950, 1.2k, 35k, 1.5M (messages/chart_format.cpp's format_count).
function formatCount(v) {
  const a = Math.abs(v);
  for (const [unit, suffix] of [[1e9, 'B'], [1e6, 'M'], [1e3, 'k']]) {
    if (a >= unit) {
      const x = v / unit;
      return (Math.abs(x) < 10 ? String(Math.round(x * 10) / 10) : String(Math.round(x))) + suffix;
    }
  }
  return String(Math.round(v * 100) / 100);
}

function optionFor(spec, series) {
  const px = Math.round((spec.fontSize * 96) / 72);
  const text = { color: spec.textColor, fontSize: px, fontFamily: 'DejaVu Sans' };
  const bars = spec.kind === 'bar' || spec.kind === 'stackedBar';
  return {
    animation: false,
    backgroundColor: spec.background,
    color: spec.colors,
    textStyle: { fontFamily: 'DejaVu Sans' },
    title: spec.title
      ? { text: spec.title, left: 8, top: 4, textStyle: { ...text, fontWeight: 'bold', fontSize: px + 1 } }
      : undefined,
    legend: spec.legend
      ? { bottom: 2, left: 8, icon: 'rect', itemWidth: 8, itemHeight: 8, itemGap: 12, textStyle: text }
      : undefined,
    grid: { left: 8, right: 10, top: spec.title ? 28 : 10, bottom: spec.legend ? 26 : 6, containLabel: true },
    xAxis: {
      type: 'time',
      show: spec.xAxis,
      axisLine: { lineStyle: { color: spec.axisColor } },
      axisTick: { show: false },
      axisLabel: { ...text, hideOverlap: true },
      splitLine: { show: false },
    },
    yAxis: {
      type: 'value',
      show: spec.yAxis.show,
      splitNumber: 3,
      axisLabel: { ...text, formatter: spec.yAxis.format === 'count' ? formatCount : undefined },
      splitLine: { show: spec.grid, lineStyle: { color: spec.gridColor } },
    },
    series: series.map((s) => {
      const out = { type: bars ? 'bar' : 'line', name: s.name, data: s.points };
      if (bars) {
        out.barCategoryGap = '20%';
        if (spec.kind === 'stackedBar') out.stack = 'all';
      } else {
        out.showSymbol = false;
        out.lineStyle = { width: spec.lineWidth };
        if (spec.kind === 'area') out.areaStyle = { opacity: spec.fillOpacity };
      }
      return out;
    }),
  };
}

function makeRender(r, styles) {
  return (bodyText) => {
    const req = JSON.parse(bodyText);
    const spec = styles[req.style];
    const series = transform(spec, req.data);
    const both = req.width && req.height;
    const chart = r.echarts.init(null, null, {
      renderer: 'svg',
      ssr: true,
      width: both ? req.width : spec.width,
      height: both ? req.height : spec.height,
    });
    chart.setOption(optionFor(spec, series));
    const svg = chart.renderToSVGString();
    chart.dispose();
    return new r.Resvg(svg, resvgOptions).render().asPng();
  };
}

// ---- a worker process ------------------------------------------------------

function worker(args) {
  const r = loadRenderer(args.modules);
  const file = JSON.parse(fs.readFileSync(args.bodies, 'utf8'));
  const styles = {};
  for (const s of file.styles) styles[s.style] = s.spec;
  const render = makeRender(r, styles);
  // Warm-up: every body once (the JIT and echarts' caches), not measured.
  for (const s of file.styles) for (const b of s.bodies) render(b);
  process.send({ ready: true, versions: r.versions });
  process.on('message', (m) => {
    if (m.quit) process.exit(0);
    const s = file.styles[m.phase];
    const lat = [];
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const end = t0 + args.seconds * 1000;
    let i = m.offset;
    for (;;) {
      const a = performance.now();
      if (args.count ? lat.length >= args.count : a >= end) break;
      render(s.bodies[i++ % s.bodies.length]);
      lat.push(performance.now() - a);
    }
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    process.send({ phase: m.phase, lat, elapsed, cpu_us: cpu.user + cpu.system });
  });
}

// ---- the parent: phases, then the figures ----------------------------------

function percentile(sorted, q) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function figures(lat, renders, seconds, cpuUs) {
  lat.sort((a, b) => a - b);
  return {
    renders,
    seconds,
    renders_per_s: seconds > 0 ? renders / seconds : 0,
    p50_ms: percentile(lat, 0.5),
    p99_ms: percentile(lat, 0.99),
    cpu_ms_per_render: renders > 0 ? cpuUs / 1000 / renders : 0,
  };
}

async function parent(args) {
  const file = JSON.parse(fs.readFileSync(args.bodies, 'utf8'));
  if (args.save) {
    // One PNG per style (its first body), to look at beside vigil's.
    const r = loadRenderer(args.modules);
    const styles = {};
    for (const s of file.styles) styles[s.style] = s.spec;
    const render = makeRender(r, styles);
    fs.mkdirSync(args.save, { recursive: true });
    for (const s of file.styles)
      fs.writeFileSync(path.join(args.save, `node-${s.style.split(/[:.]/).pop()}.png`), render(s.bodies[s.showcase || 0]));
  }
  const childArgs = ['--worker', '--bodies', args.bodies, '--modules', args.modules,
    '--seconds', String(args.seconds), '--count', String(args.count)];
  const kids = [];
  let versions = {};
  await Promise.all(Array.from({ length: args.procs }, () => new Promise((resolve, reject) => {
    const k = fork(here, childArgs, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    k.once('message', (m) => { versions = m.versions; resolve(); });
    k.once('exit', (code) => reject(new Error(`a worker exited with ${code} before it was ready`)));
    kids.push(k);
  })));
  for (const k of kids) k.removeAllListeners('exit');
  const styles = [];
  const all = [];
  let renders = 0, seconds = 0, cpuUs = 0;
  for (let phase = 0; phase < file.styles.length; ++phase) {
    const results = await Promise.all(kids.map((k, i) => new Promise((resolve) => {
      k.once('message', resolve);
      k.send({ phase, offset: i });
    })));
    const lat = results.flatMap((x) => x.lat);
    const n = lat.length;
    const wall = Math.max(...results.map((x) => x.elapsed));
    const cpu = results.reduce((a, x) => a + x.cpu_us, 0);
    all.push(...lat);
    renders += n;
    seconds += wall;
    cpuUs += cpu;
    styles.push({ style: file.styles[phase].style, ...figures(lat, n, wall, cpu) });
  }
  for (const k of kids) k.send({ quit: true });
  const out = {
    renderer: 'node echarts (svg, ssr) + @resvg/resvg-js',
    node: process.version,
    echarts: versions.echarts,
    resvg: versions.resvg,
    procs: args.procs,
    overall: figures(all, renders, seconds, cpuUs),
    styles,
  };
  process.stdout.write(JSON.stringify(out) + '\n');
}

const args = parseArgs(process.argv.slice(2));
if (args.worker) worker(args);
else parent(args).catch((e) => { process.stderr.write(`charts_node: ${e.message}\n`); process.exit(1); });
