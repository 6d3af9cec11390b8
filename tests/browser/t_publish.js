'use strict';
// Publishing from the browser client (issue 13, defect 5 and the status
// mapping of defect 8): publishes of one client are stored in call order
// even when the gateway serves requests on several threads; an ack that
// does not come in time is 'timeout' (the message may be stored), not
// 'network'; IE's WinINet statuses (12029, ...) are 'network'.
const assert = require('assert');
const net = require('net');
const L = require('./lib');

const t = L.tap(4, 60000);
const N = 300;

(async () => {
  let browser, page, gw;
  try {
    browser = await L.launch();
    gw = await L.startGateway(['--http-threads', '4']);
    ({ page } = await L.clientPage(browser, gw.base));
    await L.installRecorder(page);
  } catch (e) {
    console.log('# setup failed: ' + (e && e.stack || e));
  }

  await t.test(N + ' publishes in a tight loop (--http-threads 4): stored in call order, a subscriber gets them all once, in order', async () => {
    await page.evaluate((b) => window.mk('sub', b, 'po', { transports: ['ws'] }), gw.base);
    await L.waitFor(async () => (await L.rec(page, 'sub')).readyState === 'open', 10000, 'the subscriber to open');
    const acks = await page.evaluate(([b, n]) => new Promise((resolve) => {
      const c = anypush.connect(b);
      const out = new Array(n);
      let left = n;
      for (let i = 0; i < n; i++) {
        c.publish('po', 'score', i, (function (k) {
          return function (err, id) {
            out[k] = err ? 'err:' + err.code : id;
            if (--left === 0) { c.close(); resolve(out); }
          };
        }(i)));
      }
    }), [gw.base, N]);
    const errs = acks.filter((a) => typeof a !== 'number');
    assert.deepStrictEqual(errs, [], 'every publish acknowledged');
    let inversions = 0;
    for (let i = 1; i < acks.length; i++) if (acks[i] <= acks[i - 1]) inversions++;
    await L.waitFor(async () => (await L.rec(page, 'sub')).msgs.length >= N, 15000, 'the subscriber to get ' + N);
    await L.sleep(200);
    const r = await L.rec(page, 'sub');
    const data = r.msgs.map((m) => m.data);
    const seen = new Set();
    let dup = 0, reordered = 0;
    for (let i = 0; i < data.length; i++) {
      if (seen.has(data[i])) dup++;
      seen.add(data[i]);
      if (i && data[i] <= data[i - 1]) reordered++;
    }
    let lost = 0;
    for (let i = 0; i < N; i++) if (!seen.has(i)) lost++;
    console.log('# acks out of call order ' + inversions + ', subscriber: lost ' + lost + ', duplicated ' + dup +
      ', out of call order ' + reordered);
    assert.strictEqual(inversions, 0, 'ack ids increase in call order');
    assert.strictEqual(lost, 0, 'lost');
    assert.strictEqual(dup, 0, 'duplicated');
    assert.strictEqual(reordered, 0, 'stored (and delivered) in call order');
    await page.evaluate(() => window.R.sub.c.close());
  });

  await t.test('an ack that never comes is reported as timeout, and the next publish still goes', async () => {
    // a server that accepts and never answers
    const held = new Set();
    const hole = net.createServer((s) => { held.add(s); s.on('error', () => {}); s.on('close', () => held.delete(s)); });
    await new Promise((r) => hole.listen(0, '127.0.0.1', r));
    L.onCleanup(() => new Promise((r) => { for (const s of held) s.destroy(); hole.close(() => r()); }));
    const res = await page.evaluate((port) => new Promise((resolve) => {
      const c = anypush.connect('http://127.0.0.1:' + port, { ackTimeout: 700 });
      const out = [];
      const t0 = Date.now();
      c.publish('x', 'note', 1, (err) => { out.push({ code: err && err.code, ms: Date.now() - t0 }); });
      c.publish('x', 'note', 2, (err) => { out.push({ code: err && err.code, ms: Date.now() - t0 }); resolve(out); });
    }), hole.address().port);
    console.log('# ' + JSON.stringify(res));
    assert.deepStrictEqual(res.map((x) => x.code), ['timeout', 'timeout']);
    assert(res[1].ms >= 1300, 'the second one was sent after the first one timed out: ' + res[1].ms + ' ms');
  });

  await t.test("IE's network statuses (12029, 12030, 12152) are 'network', not http_12029", async () => {
    const codes = await page.evaluate(() => new Promise((resolve) => {
      const statuses = [12029, 12030, 12152];
      let k = 0;
      function FakeXHR() { this.readyState = 0; this.status = 0; this.responseText = ''; this.withCredentials = false; }
      FakeXHR.prototype.open = function () { this.readyState = 1; };
      FakeXHR.prototype.setRequestHeader = function () {};
      FakeXHR.prototype.abort = function () {};
      FakeXHR.prototype.send = function () {
        const x = this;
        // the client drops its handler once it gave up on a request
        setTimeout(function () { x.readyState = 4; x.status = statuses[k++ % statuses.length]; if (x.onreadystatechange) x.onreadystatechange(); }, 5);
      };
      // a network error is tried again until ackTimeout: then it is the
      // error, or 'timeout' when the deadline came while a try was out
      // (a loaded machine can delay the fake's answer past it)
      const c = anypush.connect('http://127.0.0.1:1', { env: { XMLHttpRequest: FakeXHR }, ackTimeout: 1500 });
      const out = [];
      statuses.forEach(function () {
        c.publish('x', 'note', 1, function (err) { out.push(err && err.code); if (out.length === statuses.length) resolve(out); });
      });
    }));
    console.log('# ' + JSON.stringify(codes));
    assert.strictEqual(codes.length, 3);
    assert(codes.every((x) => x === 'network' || x === 'timeout'), 'codes ' + JSON.stringify(codes));
    // read as HTTP statuses, no try would end as 'network'
    assert(codes.indexOf('network') >= 0, 'no publish ended as network: ' + JSON.stringify(codes));
  });

  await t.test('publishes past --publish-rate-per-ip wait and go again (429, /ws rate_limited): all stored once, in call order', async () => {
    const lim = await L.startGateway(['--publish-rate-per-ip', '2']);
    // a page of its own origin (the gateway allows no other)
    const { page: p2 } = await L.clientPage(browser, lim.base);
    const res = await p2.evaluate((b) => new Promise((resolve) => {
      // one client publishes over HTTP (no subscription), one over its /ws
      const http = anypush.connect(b, { ackTimeout: 20000 });
      const ws = anypush.connect(b, { transports: ['ws'], ackTimeout: 20000 });
      const out = { http: [], ws: [], errors: [] };
      ws.on('error', (e) => out.errors.push(e.code));
      let left = 8;
      function go(c, name) {
        for (let i = 0; i < 4; i++) {
          c.publish('rl-' + name, 'note', i, (err, id) => {
            out[name].push(err ? 'err:' + err.code : id);
            if (--left === 0) { http.close(); ws.close(); resolve(out); }
          });
        }
      }
      go(http, 'http');
      ws.subscribe('rl-sub');
      ws.on('open', () => go(ws, 'ws'));
    }), lim.base);
    console.log('# ' + JSON.stringify(res));
    assert.deepStrictEqual(res.http, [1, 2, 3, 4], 'HTTP publishes: each stored once, in call order');
    assert.deepStrictEqual(res.ws, [1, 2, 3, 4], '/ws publishes: each stored once, in call order');
  });

  await t.done();
})();
