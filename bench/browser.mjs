// Debian's Chromium for the start-up benchmarks, launched the same way by each of them.

import { createRequire } from 'node:module';

// playwright-core is installed for the end-to-end tests; use that copy.
const require = createRequire(new URL('../tests/e2e/package.json', import.meta.url));
const { chromium } = require('playwright-core');

export const CHROMIUM_ARGS = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];

/** A headless Chromium from `executablePath`, with the benchmarks' flags. */
export function launchChromium(executablePath) {
  return chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS });
}

/** The text an in-page hook logs (console.debug) when the measured moment has come. */
export const DONE = 'sori-bench:done';

/**
 * Resolves when the page logs DONE. The hook tells the benchmark through the console rather
 * than being polled: page.waitForFunction would have Playwright evaluate its injected script
 * (~330 KB) in the page while it loads, which cost the page's main thread ~75 ms of the
 * very start-up being measured (seen in a Chromium trace).
 */
export function waitForDone(page, timeout) {
  return page.waitForEvent('console', { predicate: (msg) => msg.text() === DONE, timeout });
}
