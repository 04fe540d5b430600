// Opens pages in Debian's chromium (headless, through playwright-core) and
// prints, as one JSON line, what each page reported (window.__result) with
// the browser console's messages, page errors and failed requests.
//
// Usage: node browser_run.mjs URL... (CHROMIUM: the browser, default
// /usr/bin/chromium). Exits 1 when the browser cannot be started.
import { chromium } from 'playwright-core';

const urls = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // Root has no user namespaces for chromium's sandbox here.
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const pages = [];
try {
  for (const url of urls) {
    const page = await browser.newPage();
    const seen = { url, console: [], page_errors: [], failed_requests: [],
                   responses: [] };
    page.on('console', (m) => seen.console.push({ type: m.type(), text: m.text() }));
    page.on('pageerror', (e) => seen.page_errors.push(String(e)));
    page.on('requestfailed', (r) => seen.failed_requests.push(
      { url: r.url(), method: r.method(), failure: r.failure() && r.failure().errorText }));
    page.on('response', (r) => {
      if (new URL(r.url()).pathname.startsWith('/api/'))
        seen.responses.push({ url: r.url(), status: r.status(),
                              method: r.request().method(), headers: r.headers() });
    });
    await page.goto(url);
    await page.waitForFunction(() => window.__done === true, null, { timeout: 60000 });
    seen.result = await page.evaluate(() => window.__result);
    pages.push(seen);
    await page.close();
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(pages) + '\n');
