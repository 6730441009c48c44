// Debian's Chromium for the start-up benchmarks, driven over its DevTools pipe with as
// little instrumentation as possible.
//
// The start-up benchmark measures milliseconds of a page's own work on a 2-core machine, so
// the driver must not add work to the page while it loads. Playwright does: it enables the
// Network domain (an event per request, serialised on the browser's main thread) and, for
// waitForFunction or evaluate, has the page compile its ~330 KB injected script (~75 ms of
// the renderer's main thread, seen in a Chromium trace). Here a page has only the Page
// domain (for the init script) and the Runtime domain (for the binding the hook reports
// through) enabled, as far as a user's browser is from any of it as we can get and still
// measure. The end-to-end tests keep using Playwright; they check behaviour, not time.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';

export const CHROMIUM_ARGS = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required', '--window-size=1280,800',
];

/** The name of the function an in-page hook calls, once, with a JSON string, to report. */
export const REPORT = '__benchReport';

/** In the page: calls `then(value)` whenever the page assigns `window[name]`, which stays
 *  readable. Hooks get it as their first argument (initScript). */
function onAssign(name, then) {
  let value;
  Object.defineProperty(window, name, {
    configurable: true,
    get() { return value; },
    set(v) { value = v; then(v); },
  });
}

/** The source of an init script that runs `hook(onAssign, ...args)` in the page before
 *  the page's own scripts (`hook` is serialised, so it can use nothing else of ours). */
export function initScript(hook, ...args) {
  return `(${hook})(${onAssign}, ${args.map((a) => JSON.stringify(a)).join(', ')});`;
}

/** A Chromium process and its DevTools pipe (NUL-separated JSON messages on fds 3 and 4). */
export class Browser {
  static launch(executablePath) {
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'sori-bench-chromium-'));
    const child = spawn(executablePath, [...CHROMIUM_ARGS, '--remote-debugging-pipe',
      '--no-startup-window', `--user-data-dir=${profile}`],
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
    return new Browser(child, profile);
  }

  constructor(child, profile) {
    this.child = child;
    this.profile = profile;
    this.nextId = 0;
    this.pending = new Map();
    this.listeners = new Set();
    this.stderr = '';
    let buffered = '';
    child.stderr.on('data', (d) => { this.stderr = (this.stderr + d).slice(-4000); });
    child.stdio[4].setEncoding('utf8'); // decodes characters split across chunks whole
    child.stdio[4].on('data', (chunk) => {
      buffered += chunk;
      for (let end = buffered.indexOf('\0'); end >= 0; end = buffered.indexOf('\0')) {
        this.dispatch(JSON.parse(buffered.slice(0, end)));
        buffered = buffered.slice(end + 1);
      }
    });
    const fail = (why) => {
      for (const { reject } of this.pending.values()) {
        reject(new Error(`chromium ${why}: ${this.stderr.slice(-500)}`));
      }
      this.pending.clear();
    };
    child.on('exit', (code) => fail(`exited (${code})`));
    child.on('error', (err) => fail(`could not run (${err.message})`));
    child.stdio[3].on('error', (err) => fail(`pipe closed (${err.message})`));
  }

  dispatch(msg) {
    const waiter = msg.id !== undefined ? this.pending.get(msg.id) : undefined;
    if (waiter) {
      this.pending.delete(msg.id);
      if (msg.error) waiter.reject(new Error(`${waiter.method}: ${msg.error.message}`));
      else waiter.resolve(msg.result);
      return;
    }
    for (const listener of this.listeners) listener(msg);
  }

  /** One DevTools command (to the browser, or to a page's session). */
  send(method, params = {}, sessionId = undefined) {
    const id = ++this.nextId;
    const msg = sessionId ? { id, method, params, sessionId } : { id, method, params };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method });
      this.child.stdio[3].write(`${JSON.stringify(msg)}\0`);
    });
  }

  /** A new browser context: empty cache, no cookies, no storage. */
  async newContext() {
    const { browserContextId } = await this.send('Target.createBrowserContext', { disposeOnDetach: true });
    return browserContextId;
  }

  async closeContext(contextId) {
    await this.send('Target.disposeBrowserContext', { browserContextId: contextId });
  }

  /** A blank page in `contextId` that runs `initScript` (source text) in every document
   *  before the document's own scripts, and can report through window[REPORT]. */
  async newPage(contextId, initScript) {
    const { targetId } = await this.send('Target.createTarget', { url: 'about:blank', browserContextId: contextId });
    const { sessionId } = await this.send('Target.attachToTarget', { targetId, flatten: true });
    const page = new Page(this, targetId, sessionId);
    await page.send('Page.enable');
    await page.send('Runtime.enable'); // bindings report only with it
    await page.send('Runtime.addBinding', { name: REPORT });
    await page.send('Page.addScriptToEvaluateOnNewDocument', { source: initScript });
    return page;
  }

  async close() {
    const exited = this.child.exitCode !== null ? Promise.resolve()
      : new Promise((resolve) => this.child.once('exit', resolve));
    this.send('Browser.close').catch(() => { /* it is going away */ });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    fs.rmSync(this.profile, { recursive: true, force: true, maxRetries: 3 });
  }
}

class Page {
  constructor(browser, targetId, sessionId) {
    this.browser = browser;
    this.targetId = targetId;
    this.sessionId = sessionId;
  }

  send(method, params = {}) {
    return this.browser.send(method, params, this.sessionId);
  }

  /** The first report of the page's hook (parsed JSON), or an {error} after `timeout` ms. */
  report(timeout) {
    return new Promise((resolve) => {
      const done = (value) => {
        clearTimeout(timer);
        this.browser.listeners.delete(listener);
        resolve(value);
      };
      const listener = (msg) => {
        if (msg.sessionId === this.sessionId && msg.method === 'Runtime.bindingCalled'
            && msg.params.name === REPORT) done(JSON.parse(msg.params.payload));
      };
      const timer = setTimeout(() => done({ error: `no report within ${timeout} ms` }), timeout);
      this.browser.listeners.add(listener);
    });
  }

  async goto(url) {
    const { errorText } = await this.send('Page.navigate', { url });
    if (errorText) throw new Error(`navigating to ${url}: ${errorText}`);
  }

  /** The value of a JavaScript expression in the page (JSON-serialisable). */
  async evaluate(expression) {
    const { result, exceptionDetails } = await this.send('Runtime.evaluate',
      { expression, returnByValue: true, awaitPromise: true });
    if (exceptionDetails) throw new Error(exceptionDetails.exception?.description ?? exceptionDetails.text);
    return result.value;
  }

  /** Chromium's own network emulation (as DevTools does): `rtt` ms per round trip. */
  async emulateLatency(rtt) {
    await this.send('Network.enable');
    await this.send('Network.emulateNetworkConditions',
      { offline: false, latency: rtt, downloadThroughput: -1, uploadThroughput: -1 });
  }

  async close() {
    await this.browser.send('Target.closeTarget', { targetId: this.targetId });
  }
}
