'use strict';
// web/anypush.js in headless Chromium over https:// and wss:// through
// Debian's nginx terminating TLS with docs/nginx-anypush.conf (started by
// tests/e2e/tlsfront.py, a self-signed certificate, so Chromium ignores
// certificate errors here and only here): each transport pinned gets a
// published sequence exactly, in order, and a publish from the page.
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { spawn } = require('child_process');
const L = require('./lib');

const T = ['ws', 'sse', 'longpoll', 'poll'];
const N = 30;
const t = L.tap(T.length + 2, 60000);
const fast = { pollInterval: 200, openTimeout: 5000, reconnectDelay: 200, reconnectDelayMax: 2000 };

// nginx in front of the gateway on gwPort: { base, dir }; stopped at cleanup
// by ending tlsfront.py's stdin (it stops nginx by pid), else by its pid.
async function startFront(gwPort) {
  const proc = spawn('python3', [path.join(L.ROOT, 'tests', 'e2e', 'tlsfront.py'), String(gwPort)],
    { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '', err = '', exited = null;
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { err += d; });
  proc.on('exit', (code, sig) => { exited = code === null ? sig : code; });
  L.onCleanup(async () => {
    if (exited !== null) return;
    const gone = new Promise((r) => proc.once('exit', r));
    proc.stdin.end();
    const k = setTimeout(() => { try { proc.kill('SIGTERM'); } catch (e) { /* gone */ } }, 8000);
    await gone;
    clearTimeout(k);
  });
  await L.waitFor(() => {
    if (exited !== null) throw new Error('tlsfront.py exited (' + exited + '): ' + err);
    return /^dir /m.test(out);
  }, 20000, 'nginx in front of the gateway');
  const port = Number(/^port ([0-9]+)$/m.exec(out)[1]);
  return { base: 'https://127.0.0.1:' + port, dir: /^dir (.+)$/m.exec(out)[1] };
}

function ids(r) { return r.msgs.filter((m) => m.ch === 'tls').map((m) => m.id); }
function range(a, b) { const o = []; for (let i = a; i <= b; i++) o.push(i); return o; }

(async () => {
  let gw, front, page;
  try {
    gw = await L.startGateway();
    front = await startFront(gw.port);
    const browser = await L.launch(['--ignore-certificate-errors']);
    ({ page } = await L.clientPage(browser, front.base, { context: { ignoreHTTPSErrors: true } }));
    await L.installRecorder(page);
    for (const tr of T) {
      await page.evaluate(([k, b, o]) => window.mk(k, b, 'tls', o), [tr, front.base, Object.assign({ transports: [tr] }, fast)]);
    }
    await L.waitFor(async () => {
      for (const tr of T) if ((await L.rec(page, tr)).readyState !== 'open') return false;
      return true;
    }, 20000, 'all four pinned clients to open through nginx');
    for (let i = 1; i <= N; i++) await L.publish(gw.base, 'tls', 'score', { n: i });
  } catch (e) {
    console.log('# setup failed: ' + (e && e.stack || e));
  }

  await t.test('the page and anypush.js come over https:// through nginx, on HTTP/2', async () => {
    assert(page, 'no page');
    const nav = await page.evaluate(() => ({
      href: location.href, proto: performance.getEntriesByType('navigation')[0].nextHopProtocol,
    }));
    assert(nav.href.indexOf(front.base + '/') === 0, 'page at ' + nav.href);
    assert.strictEqual(nav.proto, 'h2');
  });

  for (const tr of T) {
    await t.test(tr + ' pinned, through nginx over TLS: receives ' + N + ' messages exactly, in order', async () => {
      assert(page, 'no page');
      await L.waitFor(async () => (await L.rec(page, tr)).msgs.length >= N, 15000, tr + ' to get ' + N + ' messages');
      await L.sleep(300); // anything extra would show up now
      const r = await L.rec(page, tr);
      assert.deepStrictEqual(ids(r), range(1, N));
      assert.deepStrictEqual(r.msgs.map((m) => m.data), range(1, N).map((i) => ({ n: i })));
      assert.strictEqual(r.transport, tr);
      assert.deepStrictEqual(r.transports, [tr]);
      assert.strictEqual(r.gaps.length, 0, 'no gap');
      assert.strictEqual(r.stats.duplicates, 0, 'no duplicates');
    });
  }

  await t.test('a publish from the page (HTTP and WebSocket) is acknowledged and reaches every transport; nginx saw wss on HTTP/1.1', async () => {
    assert(page, 'no page');
    const acks = await page.evaluate(() => Promise.all(['poll', 'ws'].map((k) => new Promise((resolve) => {
      window.R[k].chs.tls.publish('note', { from: k }, function (err, id) { resolve({ err: err, id: id }); });
    }))));
    assert.deepStrictEqual(acks.map((a) => a.err), [null, null]);
    assert.deepStrictEqual(acks.map((a) => a.id).sort(), [N + 1, N + 2]);
    for (const tr of T) {
      await L.waitFor(async () => (await L.rec(page, tr)).msgs.length === N + 2, 10000, tr + ' to get both page publishes');
      assert.deepStrictEqual(ids(await L.rec(page, tr)), range(1, N + 2), tr);
    }
    // nginx's access log, written as each request ends: the WebSocket
    // handshake on HTTP/1.1 (nginx 1.22 has no WebSocket over HTTP/2), the
    // polls on HTTP/2
    await page.evaluate(() => { Object.keys(window.R).forEach(function (k) { window.R[k].c.close(); }); });
    const log = () => fs.readFileSync(path.join(front.dir, 'access.log'), 'utf8');
    // (the client's ws is the multiplexed /ws)
    await L.waitFor(() => /"GET \/ws\?client=[^"]* HTTP\/1\.1" 101 /.test(log()), 5000,
      'a wss handshake on HTTP/1.1 in nginx\'s access log');
    assert(/"GET \/channels\/tls\?[^"]*transport=poll[^"]* HTTP\/2\.0" 200 /.test(log()), 'polls on HTTP/2 in:\n' + log().slice(-2000));
  });

  await t.done();
})();
