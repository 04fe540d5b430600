// @sentry/node against a vigil node: one scenario per run, so that each
// starts with a fresh SDK. Prints one JSON line: the ids the SDK returned
// and, for every envelope its transport sent, the item types, the status
// and the rate-limit headers it got back ("not sent" when the SDK held it
// back because of an earlier rate limit).
//
// Usage: node node_sdk.mjs SCENARIO DSN
//   message      captureMessage with tags, extra, user and breadcrumbs
//   exception    captureException of an Error thrown two calls deep
//   fingerprint  three events with one fingerprint, one with another
//   transaction  a transaction event with a child span (traceLifecycle
//                'static', tracesSampleRate 1)
//   spans        the same spans as SDK 11 sends them by default (streamed
//                span items)
//   session      a release-health session, started and ended
//   attachment   an error event with a 1 KiB attachment
//   ratelimit    COUNT (argv[4]) events, flushed one by one
import * as Sentry from '@sentry/node';

const [scenario, dsn, countArg] = process.argv.slice(2);
const out = { scenario, sends: [] };

const recording = (options) => {
  const inner = Sentry.makeNodeTransport(options);
  return {
    ...inner,
    send: (envelope) => inner.send(envelope).then((r) => {
      out.sends.push({
        type: envelope[1].map((item) => item[0].type).join(','),
        status: r && r.statusCode ? r.statusCode : 'not sent',
        rate_limits: r && r.headers ? r.headers['x-sentry-rate-limits'] || null : null,
      });
      return r;
    }),
  };
};

const options = {
  dsn,
  release: 'vigil-node-check@1.0.0',
  environment: 'test',
  transport: recording,
  tracesSampleRate: ['transaction', 'spans'].includes(scenario) ? 1.0 : 0,
  // Sessions only where the scenario asks for one.
  integrations: (all) => all.filter((i) => i.name !== 'ProcessSession'),
};
if (scenario === 'transaction') {
  // SDK 11 streams spans (span items) by default; 'static' sends the
  // classic transaction event.
  options.traceLifecycle = 'static';
  options.beforeSendTransaction = (event) => {
    out.transaction_id = event.event_id;
    return event;
  };
}
Sentry.init(options);

function divide(a, b) {
  if (b === 0) throw new RangeError('division by zero');
  return a / b;
}
function handler() {
  return divide(1, 0);
}

switch (scenario) {
  case 'message':
    Sentry.addBreadcrumb({ category: 'auth', message: 'user logged in', level: 'info' });
    Sentry.addBreadcrumb({ category: 'db', message: 'SELECT 1', data: { rows: 1 } });
    Sentry.withScope((scope) => {
      scope.setTag('region', 'eu-west');
      scope.setTag('release-train', '42');
      scope.setExtra('attempt', 3);
      scope.setUser({ id: 'u-17', email: 'dev@example.com' });
      out.event_id = Sentry.captureMessage('node: disk almost full on db-3', 'warning');
    });
    break;
  case 'exception':
    try { handler(); } catch (e) { out.event_id = Sentry.captureException(e); }
    break;
  case 'fingerprint':
    out.ids = [];
    for (let i = 0; i < 3; i++)
      Sentry.withScope((scope) => {
        scope.setFingerprint(['node-payment-gateway-timeout']);
        out.ids.push(Sentry.captureMessage(`node gateway timeout #${i}`));
      });
    Sentry.withScope((scope) => {
      scope.setFingerprint(['node-another-thing']);
      out.ids.push(Sentry.captureMessage('node gateway timeout #x'));
    });
    break;
  case 'spans':
  case 'transaction':
    Sentry.startSpan({ name: 'GET /node-checkout', op: 'http.server' }, () => {
      Sentry.startSpan({ name: 'SELECT cart', op: 'db.query' }, () => divide(4, 2));
    });
    break;
  case 'session':
    Sentry.startSession({ release: 'vigil-node-check@1.0.0' });
    Sentry.captureSession();
    Sentry.endSession();
    break;
  case 'attachment':
    Sentry.withScope((scope) => {
      scope.addAttachment({ filename: 'state.txt', data: 'x'.repeat(1024),
                            contentType: 'text/plain' });
      out.event_id = Sentry.captureException(new Error('node error with an attachment'));
    });
    break;
  case 'ratelimit': {
    out.ids = [];
    const n = Number(countArg || 12);
    for (let i = 0; i < n; i++) {
      Sentry.withScope((scope) => {
        scope.setFingerprint(['node-limited']);
        out.ids.push(Sentry.captureMessage(`node limited event ${i}`));
      });
      await Sentry.flush(10000);
    }
    break;
  }
  default:
    console.error(`unknown scenario ${scenario}`);
    process.exit(2);
}
out.flushed = await Sentry.flush(10000);
await Sentry.close(5000);
process.stdout.write(JSON.stringify(out) + '\n');
