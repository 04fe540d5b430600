// Bundled with esbuild at test time (--bundle --format=iife): @sentry/browser
// ships no CDN bundle, so the page gets it the way an application would.
import * as Sentry from '@sentry/browser';

window.Sentry = Sentry;
