'use strict';
// Shared helpers for the browser tests: TAP output with a time bound, the
// real gateway on an ephemeral port, headless Chromium through
// playwright-core, and a small HTTP proxy the tests can make misbehave.
//
// Environment: ANYPUSH_BIN (default ../../src/anypush from here),
// ANYPUSH_WEB (default ../../web), CHROMIUM (default /usr/bin/chromium),
// ANYPUSH_ARTIFACTS (default test-artifacts/ at the repo root).

const fs = require('fs');
const os = require('os');
const path = require('path');
const http = require('http');
const net = require('net');
const { spawn } = require('child_process');

const HERE = __dirname;
const ROOT = path.resolve(HERE, '..', '..');
const BIN = path.resolve(process.env.ANYPUSH_BIN || path.join(HERE, '..', '..', 'src', 'anypush'));
const WEB = path.resolve(process.env.ANYPUSH_WEB || path.join(HERE, '..', '..', 'web'));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = path.resolve(process.env.ANYPUSH_ARTIFACTS || path.join(ROOT, 'test-artifacts'));

// what a sanitizer writes when it finds something (ASan, LSan, UBSan, TSan)
const SANITIZER_RE = /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|WARNING: ThreadSanitizer|SUMMARY: (Address|Leak|UndefinedBehavior|Thread)Sanitizer/;

const cleanups = [];
function onCleanup(fn) { cleanups.push(fn); }
async function cleanup() {
  while (cleanups.length) {
    const fn = cleanups.pop();
    try { await fn(); } catch (e) { /* keep going */ }
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Wait until fn() returns a truthy value (awaited), or throw after ms.
async function waitFor(fn, ms, what) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) {
      throw new Error('timed out after ' + ms + ' ms waiting for ' + (what || fn.toString().slice(0, 80)) +
        (last instanceof Error ? ' (' + last.message + ')' : ''));
    }
    await sleep(50);
  }
}

// What went wrong with the gateways of this file when they ended: one
// line each (see Gateway.reap).
const gatewayProblems = [];
let gatewaysStarted = 0;

// TAP: plan(n); await test(name, fn); done(). The whole file is bounded by
// limitMs: past it, "Bail out!" and exit 1. done() adds one point of its
// own after the n: every gateway the file started ended with exit status 0
// after SIGTERM and wrote no sanitizer report to its stderr, so an ASan
// report at shutdown fails the file.
function tap(n, limitMs) {
  let i = 0, failed = 0;
  console.log('1..' + (n + 1));
  const killer = setTimeout(async () => {
    console.log('Bail out! time limit of ' + limitMs + ' ms reached');
    await Promise.race([cleanup(), sleep(3000)]);
    process.exit(1);
  }, limitMs);
  process.on('unhandledRejection', (e) => {
    console.log('# unhandled rejection: ' + (e && e.stack || e));
  });
  async function test(name, fn) {
    i++;
    const t0 = Date.now();
    try {
      await fn();
      console.log('ok ' + i + ' - ' + name + ' # ' + (Date.now() - t0) + ' ms');
    } catch (e) {
      failed++;
      console.log('not ok ' + i + ' - ' + name);
      String(e && e.stack || e).split('\n').forEach((l) => console.log('# ' + l));
    }
  }
  function skip(name, why) {
    i++;
    console.log('ok ' + i + ' - ' + name + ' # SKIP ' + why);
  }
  async function done() {
    clearTimeout(killer);
    await Promise.race([cleanup(), sleep(10000)]);
    while (i < n) { i++; console.log('not ok ' + i + ' - (not run)'); failed++; }
    i++;
    const name = 'the ' + gatewaysStarted + ' gateway process(es) exited 0 after SIGTERM, no sanitizer report';
    if (gatewayProblems.length) {
      failed++;
      console.log('not ok ' + i + ' - ' + name);
      gatewayProblems.forEach((p) => p.split('\n').forEach((l) => console.log('# ' + l)));
    } else {
      console.log('ok ' + i + ' - ' + name);
    }
    process.exit(failed ? 1 : 0);
  }
  return { test, skip, done };
}

function tmpdir(tag) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'anypush-' + tag + '-'));
  onCleanup(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

// The gateway. start() on port 0 (or a given port), stop(), restart() on
// the same port.
class Gateway {
  constructor(extra) {
    this.extra = extra || [];
    this.dir = tmpdir('gw');
    this.port = 0;
    this.proc = null;
    this.log = '';
    onCleanup(() => this.stop());
  }
  get base() { return 'http://127.0.0.1:' + this.port; }
  async start(port) {
    const pf = path.join(this.dir, 'port');
    try { fs.unlinkSync(pf); } catch (e) { /* none */ }
    // no config file but the test's own (a package installs one in /etc)
    const own = this.extra.indexOf('--config') >= 0 ? [] : ['--config', ''];
    const args = ['--bind', '127.0.0.1', '--port', String(port || 0), '--port-file', pf,
      '--web-root', WEB, '--log-level', 'warn'].concat(own, this.extra);
    const proc = spawn(BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc = proc;
    gatewaysStarted++;
    const from = this.log.length;
    proc.stderr.on('data', (d) => { this.log += d; });
    let exited = null;
    proc.on('exit', (code, sig) => { exited = code === null ? sig : code; });
    // 'close' comes after the last of stderr
    proc.closed = new Promise((r) => proc.once('close', (code, sig) => {
      this.reap(proc, code, sig, this.log.slice(from));
      r();
    }));
    const txt = await waitFor(() => {
      if (exited !== null) throw new Error('gateway exited (' + exited + '): ' + this.log);
      try {
        const s = fs.readFileSync(pf, 'utf8').trim();
        return /^[0-9]+$/.test(s) ? s : null;
      } catch (e) { return null; }
    }, 15000, 'the gateway port file');
    proc.started = true;
    this.port = Number(txt);
    return this;
  }
  // A gateway process ended (code, or sig if killed) having written log to
  // stderr: note whatever is wrong for tap's last point.
  reap(proc, code, sig, log) {
    const who = 'gateway pid ' + proc.pid + ' (' + BIN + ')';
    if (!proc.started && !proc.asked) {
      // start() failed and threw: the test that called it says so
    } else if (!proc.asked) {
      gatewayProblems.push(who + ' ended without being stopped: ' + (sig || 'exit status ' + code));
    } else if (proc.killed9) {
      gatewayProblems.push(who + ' did not exit within 5 s of SIGTERM (killed)');
    } else if (code !== 0) {
      gatewayProblems.push(who + ' after SIGTERM: ' + (sig || 'exit status ' + code) + ', want 0');
    }
    const m = SANITIZER_RE.exec(log);
    if (m) {
      const at = log.lastIndexOf('\n', m.index) + 1;
      gatewayProblems.push(who + ': sanitizer report on stderr:\n' + log.slice(at).split('\n').slice(0, 12).join('\n'));
    }
  }
  async stop() {
    const proc = this.proc;
    this.proc = null;
    if (!proc) return;
    if (proc.exitCode !== null || proc.signalCode !== null) { await proc.closed; return; }
    proc.asked = true;
    proc.kill('SIGTERM');
    const t = setTimeout(() => {
      proc.killed9 = true;
      try { proc.kill('SIGKILL'); } catch (e) { /* gone */ }
    }, 5000);
    await proc.closed;
    clearTimeout(t);
  }
  async restart() {
    const port = this.port;
    await this.stop();
    // the port was ours a moment ago; retry briefly if it is still held
    await waitFor(async () => { await this.start(port); return true; }, 10000, 'the gateway to restart on port ' + port);
  }
}

async function startGateway(extra) {
  const g = new Gateway(extra);
  await g.start(0);
  return g;
}

// Plain HTTP from node, for publishing and checks.
function httpReq(method, url, body, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: headers || {}, agent: false }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { data += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: data }));
    });
    req.setTimeout(10000, () => req.destroy(new Error('request timeout ' + url)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

async function publish(base, channel, event, data) {
  const r = await httpReq('POST', base + '/channels/' + channel + (event ? '?event=' + event : ''),
    JSON.stringify(data), { 'Content-Type': 'application/json' });
  if (r.status !== 201) throw new Error('publish: ' + r.status + ' ' + r.body);
  return JSON.parse(r.body).id;
}

// Headless Chromium. playwright-core's launch() gives each browser a fresh,
// temporary user-data dir of its own.
// extraArgs: more Chromium switches (t_tls.js: --ignore-certificate-errors).
async function launch(extraArgs) {
  const { chromium } = require('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'].concat(extraArgs || []),
    timeout: 30000,
  });
  onCleanup(() => browser.close());
  return browser;
}

// A page at the gateway's origin with anypush.js loaded.
async function clientPage(browser, base, opts) {
  opts = opts || {};
  const context = await browser.newContext(opts.context || {});
  onCleanup(() => context.close());
  if (opts.init) await context.addInitScript(opts.init);
  const page = await context.newPage();
  page.on('pageerror', (e) => console.log('# page error: ' + e.message));
  if (process.env.ANYPUSH_CONSOLE) page.on('console', (m) => console.log('# console: ' + m.text()));
  await page.goto(base + '/healthz');
  await page.addScriptTag({ path: path.join(WEB, 'anypush.js') });
  return { context, page };
}

// An HTTP proxy in front of the gateway that the tests can make misbehave:
//   bufferSSE: hold back text/event-stream bodies (a buffering proxy)
//   blockUpgrade: refuse WebSocket upgrades
//   cut(): drop every connection now; down: refuse new ones
//   freeze(): connections open now stay open but carry nothing more from
//     the gateway (a dead link that nobody closes); new ones work
class Proxy {
  constructor(target) {
    this.target = new URL(target);
    this.bufferSSE = false;
    this.blockUpgrade = false;
    this.down = false;
    this.sockets = new Set();
    this.epoch = 0;
    this.frozenBefore = 0;
    this.counts = { requests: 0, upgrades: 0, blockedUpgrades: 0, heldStreams: 0 };
    this.server = http.createServer((req, res) => this.onRequest(req, res));
    this.server.on('upgrade', (req, sock, head) => this.onUpgrade(req, sock, head));
    this.server.on('connection', (s) => {
      if (this.down) { s.destroy(); return; }
      this.track(s);
    });
    this.server.keepAliveTimeout = 1000;
    onCleanup(() => this.close());
  }
  track(s) {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => {});
  }
  listen() {
    return new Promise((r) => this.server.listen(0, '127.0.0.1', () => {
      this.port = this.server.address().port;
      r(this);
    }));
  }
  get base() { return 'http://127.0.0.1:' + this.port; }
  // forward data from the gateway unless this connection is frozen
  relay(from, to, epoch, end) {
    from.on('data', (c) => { if (epoch > this.frozenBefore) to.write(c); });
    from.on('end', () => { if (epoch > this.frozenBefore) end(); });
  }
  freeze() { this.frozenBefore = this.epoch; }
  onRequest(req, res) {
    this.counts.requests++;
    const epoch = ++this.epoch;
    // Host names the gateway, as nginx's default (proxy_set_header Host
    // $proxy_host) does: a page on the gateway's origin stays same-origin
    // through the proxy (--allow-origin, src/origin.c)
    const up = http.request({
      host: this.target.hostname, port: this.target.port, method: req.method, path: req.url,
      headers: Object.assign({}, req.headers, { host: this.target.host }), agent: false,
    }, (ur) => {
      this.track(ur.socket);
      const sse = /text\/event-stream/i.test(ur.headers['content-type'] || '');
      res.writeHead(ur.statusCode, ur.headers);
      if (sse && this.bufferSSE) {
        // a buffering proxy: keep the body until the stream ends
        this.counts.heldStreams++;
        const chunks = [];
        ur.on('data', (c) => chunks.push(c));
        ur.on('end', () => { res.end(Buffer.concat(chunks)); });
      } else {
        if (sse) res.flushHeaders();
        this.relay(ur, res, epoch, () => res.end());
      }
      ur.on('error', () => res.destroy());
    });
    up.on('error', () => { try { res.writeHead(502); res.end(); } catch (e) { res.destroy(); } });
    req.pipe(up);
    res.on('close', () => up.destroy());
  }
  onUpgrade(req, sock, head) {
    this.counts.upgrades++;
    if (this.blockUpgrade || this.down) {
      this.counts.blockedUpgrades++;
      sock.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    const epoch = ++this.epoch;
    const up = net.connect(Number(this.target.port), this.target.hostname, () => {
      let h = req.method + ' ' + req.url + ' HTTP/1.1\r\n';
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        const host = req.rawHeaders[i].toLowerCase() === 'host';
        h += req.rawHeaders[i] + ': ' + (host ? this.target.host : req.rawHeaders[i + 1]) + '\r\n';
      }
      up.write(h + '\r\n');
      if (head && head.length) up.write(head);
      this.relay(up, sock, epoch, () => sock.end());
      sock.pipe(up);
    });
    this.track(up);
    up.on('error', () => sock.destroy());
    sock.on('error', () => up.destroy());
    sock.on('close', () => up.destroy());
    up.on('close', () => sock.destroy());
  }
  cut() {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }
  close() {
    this.cut();
    return new Promise((r) => this.server.close(() => r()));
  }
}

module.exports = {
  ROOT, BIN, WEB, ARTIFACTS, CHROMIUM,
  sleep, waitFor, tap, tmpdir, onCleanup, cleanup,
  Gateway, startGateway, httpReq, publish, launch, clientPage, Proxy,
};

// In the page: window.mk(key, base, channels, opts) makes a client that
// records everything into window.R[key]; rec(page, key) reads it back.
async function installRecorder(page) {
  await page.evaluate(() => {
    window.R = {};
    window.mk = function (key, base, channels, opts, subOpts) {
      const c = anypush.connect(base, opts || {});
      const r = { msgs: [], gaps: [], events: [], transports: [], opens: 0, errors: [], c: c, chs: {} };
      window.R[key] = r;
      ['open', 'close', 'reconnecting', 'error'].forEach(function (n) {
        c.on(n, function (x) {
          if (n === 'open') r.opens++;
          if (n === 'error') r.errors.push(x && x.code);
          r.events.push(n + (x && (x.code || x.transport) ? ':' + (x.code || x.transport) : ''));
        });
      });
      c.on('transport', function (t) { r.transports.push(t); });
      c.on('gap', function (g) { r.gaps.push(g); });
      (Array.isArray(channels) ? channels : [channels]).forEach(function (name) {
        const ch = c.subscribe(name, subOpts || {});
        r.chs[name] = ch;
        ['score', 'message', 'note'].forEach(function (ev) {
          ch.on(ev, function (data, m) { r.msgs.push({ ch: m.channel, epoch: m.epoch, id: m.id, ev: m.event, data: data }); });
        });
      });
      return true;
    };
  });
}

async function rec(page, key) {
  return page.evaluate((k) => {
    const r = window.R[k];
    return {
      msgs: r.msgs, gaps: r.gaps, events: r.events, transports: r.transports, opens: r.opens,
      errors: r.errors, transport: r.c.transport, readyState: r.c.readyState, id: r.c.id,
      stats: r.c.stats, failed: r.c.failed, cursor: r.c.cursor(),
    };
  }, key);
}

module.exports.installRecorder = installRecorder;
module.exports.rec = rec;
