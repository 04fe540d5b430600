// Drives vigil's web console in Debian's chromium (headless, through
// playwright-core) for tests/interop/test_console.py, talking with it over
// stdin/stdout, one JSON line each way:
//
//   node console_run.mjs BASE_URL TOKEN SCREENSHOT.png
//
// 1. A page given a wrong token (in its session storage) must fall back to
//    the sign-in form with the server's detail.
// 2. The console is opened and signed into through its form; once the
//    table lists actors it prints {"event": "ready", "processed": N, ...}
//    (N: the processed count shown for the "tasks" actors) and waits for a
//    line on stdin (the test sends tasks meanwhile).
// 3. It waits (bounded) until the count shown grows past N without a
//    reload, opens an actor's drill-down and the dead-letters list, takes
//    a full-page screenshot, and prints {"event": "done", ...} with the
//    browser console's errors, page errors, failed requests and every
//    request that went to another host than BASE_URL's.
//
// With --fixture FILE first, it draws that cluster JSON instead (see
// `sections`), takes the screenshot and prints {"event": "done", ...} with
// what it found drawn; no stdin.
//
// CHROMIUM: the browser (default /usr/bin/chromium). Exits 1 on a failure
// of the browser or a step's timeout, with {"event": "error", ...}.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import readline from 'node:readline';

const argv = process.argv.slice(2);
// --fixture FILE: the cluster JSON the page gets instead of the node's
// (intercepted in the browser; the page and its files still come from
// vigil), to see every section drawn: a node that runs them all and one
// that is not reachable. Each answer moves "time" to now and adds the
// answer's number to every "processed", so that rates appear.
const fixture = argv[0] === '--fixture' ? argv.splice(0, 2)[1] : null;
const [base, token, screenshot] = argv;
const host = new URL(base).host;
const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
// Lines are queued from the start: one may come before anyone waits.
const lines = readline.createInterface({ input: process.stdin });
const queued = [];
const waiting = [];
lines.on('line', (l) => (waiting.length ? waiting.shift()(l) : queued.push(l)));
lines.on('close', () => { while (waiting.length) waiting.shift()(null); });
const nextLine = () => (queued.length ? Promise.resolve(queued.shift())
  : new Promise((resolve) => waiting.push(resolve)));

const seen = { console_errors: [], page_errors: [], failed_requests: [],
               external_requests: [], requests: 0 };
// The page given the wrong token: its console errors are kept apart (the
// browser logs the 401 it asked for).
const refused = { console_errors: [], page_errors: [], failed_requests: [] };

function watch(page, into = seen) {
  page.on('console', (m) => {
    if (m.type() === 'error')
      into.console_errors.push(m.text());
  });
  page.on('pageerror', (e) => into.page_errors.push(String(e)));
  page.on('request', (r) => {
    seen.requests += 1;
    const url = new URL(r.url());
    if (url.protocol !== 'data:' && url.protocol !== 'blob:' && url.host !== host)
      seen.external_requests.push(r.url());
  });
  // The refused page is closed while its icon may still load: its failed
  // requests are kept apart too.
  page.on('requestfailed', (r) => into.failed_requests.push(
    { url: r.url(), failure: r.failure() && r.failure().errorText }));
}

/// The processed count shown for the "tasks" actors (all actors if the
/// table has none of that service), and the actors listed.
function shown() {
  const rows = [...document.querySelectorAll('tr.actor')];
  const tasks = rows.filter((r) => r.dataset.service === 'tasks');
  const counted = tasks.length ? tasks : rows;
  return {
    processed: counted.reduce((s, r) => s + (Number(r.dataset.processed) || 0), 0),
    tasks_rows: tasks.length,
    actors: rows.map((r) => r.dataset.service + ':' + r.dataset.name),
    updates: Number(document.body.dataset.updates || 0),
  };
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // Root has no user namespaces for chromium's sandbox here.
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
let step = 'start';

async function signIn(context) {
  const page = await context.newPage();
  watch(page);
  await page.goto(base);
  await page.waitForSelector('#token', { state: 'visible', timeout: 30000 });
  await page.fill('#token', token);
  await page.click('#login-submit');
  return page;
}

/// The fixture run: every section drawn, then the screenshot.
async function sections(context) {
  const doc = JSON.parse(fs.readFileSync(fixture, 'utf8'));
  let answers = 0;
  await context.route(/\/console\/api\/cluster$/, (route) => {
    answers += 1;
    const now = Date.now() / 1000;
    const nodes = doc.nodes.map((n) => ({
      ...n,
      time: n.reachable === false ? undefined : now,
      actors: (n.actors || []).map((a) => (typeof a.processed === 'number'
        ? { ...a, processed: a.processed + answers * 10 } : a)),
    }));
    route.fulfill({ status: 200, contentType: 'application/json',
                    body: JSON.stringify({ nodes }) });
  });
  step = 'fixture drawn';
  const page = await signIn(context);
  await page.waitForFunction(() => Number(document.body.dataset.updates || 0) >= 2,
    null, { timeout: 30000, polling: 250 });
  const drawn = await page.evaluate(() => {
    const text = (sel) => [...document.querySelectorAll(sel)].map((e) => e.textContent.trim());
    return {
      nodes: document.querySelectorAll('article.node').length,
      unreachable: text('article.node[data-reachable="false"]'),
      panels: text('article.node .panel h3'),
      not_answering: document.querySelectorAll('tr.actor.not-answering').length,
      rates: [...document.querySelectorAll('tr.actor')].map((r) => r.children[7].textContent),
      queues: text('tr[data-queue]'),
      lock_holder: text('.lock-holder'),
      usage: text('.usage span'),
      cron: text('.panel.wide tbody tr'),
      buffer_digests: text('dl.figures dd.figure'),
    };
  });
  step = 'screenshot';
  await page.screenshot({ path: screenshot, fullPage: true });
  say({ event: 'done', ...drawn, ...seen });
}

/// The live run against the node (steps 1 to 3 above).
async function live(context) {
  step = 'wrong token';
  const bad = await context.newPage();
  watch(bad, refused);
  await bad.goto(base);
  await bad.evaluate(() => sessionStorage.setItem('vigil.console.token', 'not-the-token'));
  await bad.reload();
  await bad.waitForFunction(() => !document.getElementById('login').hidden
    && document.getElementById('login-error').textContent.length > 0, null, { timeout: 30000 });
  const loginError = await bad.textContent('#login-error');
  const stored = await bad.evaluate(() => sessionStorage.getItem('vigil.console.token'));
  await bad.close();

  step = 'sign in';
  const page = await signIn(context);

  step = 'actors listed';
  await page.waitForSelector('tr.actor', { timeout: 30000 });
  const before = await page.evaluate(shown);
  say({ event: 'ready', stored_after_refusal: stored, login_error: loginError, refused, ...before });

  await nextLine();
  step = 'processed count grows';
  await page.waitForFunction((n) => {
    const rows = [...document.querySelectorAll('tr.actor')];
    const tasks = rows.filter((r) => r.dataset.service === 'tasks');
    const counted = tasks.length ? tasks : rows;
    return counted.reduce((s, r) => s + (Number(r.dataset.processed) || 0), 0) > n;
  }, before.processed, { timeout: 60000, polling: 250 });
  const after = await page.evaluate(shown);
  // One more update so that the rates have two snapshots with work between.
  await page.waitForFunction((u) => Number(document.body.dataset.updates || 0) > u,
    after.updates, { timeout: 30000, polling: 250 });

  step = 'drill-down';
  const row = page.locator('tr.actor[data-service="tasks"]').first();
  await (await row.count() ? row : page.locator('tr.actor').first()).click();
  await page.waitForSelector('tr.detail', { timeout: 10000 });
  const detail = await page.textContent('tr.detail');

  step = 'dead letters';
  await page.click('#dead-letters-link');
  await page.waitForFunction(() => {
    const body = document.getElementById('dead-letters-body');
    return body && !document.getElementById('dead-letters').hidden
      && !/loading/.test(body.textContent);
  }, null, { timeout: 20000 });
  const deadLetters = await page.textContent('#dead-letters-body');
  const nodeCount = await page.locator('article.node').count();
  const summary = await page.textContent('#summary');

  step = 'screenshot';
  await page.screenshot({ path: screenshot, fullPage: true });
  say({ event: 'done', before, after: await page.evaluate(shown), detail,
        dead_letters: deadLetters, nodes: nodeCount, summary, ...seen });
}

try {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  await (fixture ? sections(context) : live(context));
} catch (e) {
  say({ event: 'error', step, error: String(e && e.stack || e), ...seen });
  process.exitCode = 1;
} finally {
  lines.close();
  await browser.close();
}
