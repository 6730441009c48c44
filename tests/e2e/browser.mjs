// Chromium as every e2e driver starts it: Debian's chromium through playwright-core,
// headless, with one set of flags.

import { chromium } from 'playwright-core';

export const ARGS = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
  // Drivers play several pages at once; none of them may be throttled as a background tab.
  '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];

/** The browser at `executablePath`, with ARGS and any `extra` flags. */
export function launch(executablePath, extra = []) {
  return chromium.launch({ executablePath, headless: true, args: [...ARGS, ...extra] });
}
