'use strict';
// Transport fallback of web/anypush.js in headless Chromium: by feature
// test (no WebSocket, no EventSource), by 404 transport_disabled, and at
// run time behind a proxy that blocks upgrades and buffers event streams.
const assert = require('assert');
const L = require('./lib');

const t = L.tap(4, 85000);
const fast = { openTimeout: 2000, reconnectDelay: 200, reconnectDelayMax: 1000, pollInterval: 200 };

function ids(r, ch) { return r.msgs.filter((m) => m.ch === ch).map((m) => m.id); }
function range(a, b) { const o = []; for (let i = a; i <= b; i++) o.push(i); return o; }

(async () => {
  let browser;
  try {
    browser = await L.launch();
  } catch (e) {
    console.log('# setup failed: ' + (e && e.stack || e));
  }

  await t.test('no WebSocket, no EventSource in window: the auto client ends on long polling and gets everything', async () => {
    const gw = await L.startGateway();
    const { page } = await L.clientPage(browser, gw.base, {
      init: () => { delete window.WebSocket; delete window.EventSource; },
    });
    assert.strictEqual(await page.evaluate(() => typeof WebSocket + ',' + typeof EventSource), 'undefined,undefined');
    await L.installRecorder(page);
    await page.evaluate(([b, o]) => window.mk('auto', b, 'fb', o), [gw.base, fast]);
    await L.waitFor(async () => (await L.rec(page, 'auto')).readyState === 'open', 15000, 'the client to open');
    for (let i = 1; i <= 20; i++) await L.publish(gw.base, 'fb', 'score', i);
    await L.waitFor(async () => (await L.rec(page, 'auto')).msgs.length >= 20, 15000, '20 messages');
    const r = await L.rec(page, 'auto');
    assert.strictEqual(r.transport, 'longpoll');
    assert.deepStrictEqual(r.transports, ['longpoll'], 'went straight to longpoll: skipped, not tried');
    assert.deepStrictEqual(ids(r, 'fb'), range(1, 20));
    assert.deepStrictEqual(r.msgs.map((m) => m.data), range(1, 20));
    assert.strictEqual(await page.evaluate(() => window.R.auto.c.skipped.join(',')), 'ws,sse');
  });

  await t.test('gateway with --transports poll,longpoll,sse: the auto client leaves ws and ends on sse', async () => {
    const gw = await L.startGateway(['--transports', 'poll,longpoll,sse']);
    const { page } = await L.clientPage(browser, gw.base);
    await L.installRecorder(page);
    for (let i = 1; i <= 5; i++) await L.publish(gw.base, 'fb', 'score', i);
    await page.evaluate(([b, o]) => window.mk('auto', b, 'fb', o, { since: 0 }), [gw.base, fast]);
    await L.waitFor(async () => {
      const r = await L.rec(page, 'auto');
      return r.readyState === 'open' && r.transport === 'sse';
    }, 15000, 'the client to open on sse');
    for (let i = 6; i <= 20; i++) await L.publish(gw.base, 'fb', 'score', i);
    await L.waitFor(async () => (await L.rec(page, 'auto')).msgs.length >= 20, 15000, '20 messages');
    const r = await L.rec(page, 'auto');
    assert.deepStrictEqual(r.transports, ['ws', 'sse']);
    assert(r.failed.ws, 'ws is marked failed');
    assert.deepStrictEqual(ids(r, 'fb'), range(1, 20));
  });

  await t.test('404 transport_disabled on long polling (read from the JSON error): moves on to poll', async () => {
    const gw = await L.startGateway(['--transports', 'poll']);
    const { page } = await L.clientPage(browser, gw.base);
    await L.installRecorder(page);
    await page.evaluate(([b, o]) => window.mk('c', b, 'fb', Object.assign({ transports: ['longpoll', 'poll'] }, o)), [gw.base, fast]);
    await L.waitFor(async () => {
      const r = await L.rec(page, 'c');
      return r.readyState === 'open' && r.transport === 'poll';
    }, 15000, 'the client to open on poll');
    const r = await L.rec(page, 'c');
    assert.strictEqual(r.failed.longpoll, 'transport_disabled');
    assert(r.errors.indexOf('transport_disabled') >= 0, 'error event with the code');
    await L.publish(gw.base, 'fb', 'score', 1);
    await L.waitFor(async () => (await L.rec(page, 'c')).msgs.length === 1, 10000, 'a message on poll');
  });

  await t.test('behind a proxy that blocks upgrades and buffers event streams: leaves ws and sse within the deadline, loses nothing', async () => {
    const gw = await L.startGateway();
    const proxy = await new L.Proxy(gw.base).listen();
    proxy.blockUpgrade = true;
    proxy.bufferSSE = true;
    const { page } = await L.clientPage(browser, gw.base);
    await L.installRecorder(page);
    for (let i = 1; i <= 5; i++) await L.publish(gw.base, 'fb', 'score', i);
    const t0 = Date.now();
    await page.evaluate(([b, o]) => window.mk('auto', b, 'fb', o, { since: 0 }), [proxy.base, fast]);
    // keep publishing while the client finds its way
    let n = 5, publishing = true;
    const pub = (async () => {
      while (publishing && n < 60) { await L.publish(gw.base, 'fb', 'score', ++n); await L.sleep(100); }
    })();
    await L.waitFor(async () => {
      const r = await L.rec(page, 'auto');
      return r.readyState === 'open' && r.transport === 'longpoll';
    }, 20000, 'the client to open on longpoll');
    const took = Date.now() - t0;
    publishing = false;
    await pub;
    await L.waitFor(async () => (await L.rec(page, 'auto')).msgs.length >= n, 15000, n + ' messages');
    const r = await L.rec(page, 'auto');
    console.log('# on longpoll after ' + took + ' ms; events ' + r.events.join(' '));
    assert.deepStrictEqual(r.transports, ['ws', 'sse', 'longpoll']);
    assert(proxy.counts.blockedUpgrades >= 1, 'the proxy refused an upgrade');
    assert(proxy.counts.heldStreams >= 1, 'the proxy held an event stream');
    assert(r.failed.sse === 'open_timeout', 'sse left for its deadline: ' + JSON.stringify(r.failed));
    // ws fails at once, sse after openTimeout (2 s), plus two probes
    assert(took < 2000 + 6000, 'left sse within the deadline: ' + took + ' ms');
    assert.deepStrictEqual(ids(r, 'fb'), range(1, n));
    assert.strictEqual(r.gaps.length, 0);
  });

  await t.done();
})();
