'use strict';
// The client survives hostile but valid names and brief refusals, in
// headless Chromium:
// 1. event and channel names that are Object.prototype keys
//    ('constructor', 'toString', '__proto__', 'hasOwnProperty'), and a
//    handler that throws, stop no transport: every message arrives, once,
//    in order, on all four;
// 2. a server event named 'error' (an older gateway, another server)
//    reaches EventSource's onerror: it is a message, not a dead stream
//    (fake EventSource);
// 3. on SSE, '*' and 'message' handlers get messages of names nobody
//    registered, and the cursor moves on each;
// 4. a WebSocket closed with 1013 before its welcome is retried, not left
//    (fake WebSocket); a client pushed down to long poll while the gateway
//    was full (--max-streams) goes back up to WebSocket once there is room.
const assert = require('assert');
const http = require('http');
const L = require('./lib');

const T = ['ws', 'sse', 'longpoll', 'poll'];
const t = L.tap(5, 40000);
const fast = { openTimeout: 3000, reconnectDelay: 100, reconnectDelayMax: 300, pollInterval: 100, requestTimeout: 3000 };
const HOSTILE = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf'];

// lost, duplicated and reordered ids of got against want (both id lists)
function count(got, want) {
  const seen = new Set();
  let dup = 0, reordered = 0, prev = 0;
  for (const id of got) {
    if (seen.has(id)) dup++;
    seen.add(id);
    if (id <= prev) reordered++;
    prev = id;
  }
  return { lost: want.filter((id) => !seen.has(id)).length, dup, reordered };
}

async function pub(base, channel, event, data) {
  return L.publish(base, channel, event, data);
}

(async () => {
  let browser, page, gw;
  try {
    browser = await L.launch();
    gw = await L.startGateway();
    ({ page } = await L.clientPage(browser, gw.base));
  } catch (e) {
    console.log('# setup failed: ' + (e && e.stack || e));
  }

  await t.test('Object.prototype names and a throwing handler stop no transport (4 transports, 2 channels)', async () => {
    const chans = ['__proto__', 'names'];
    await page.evaluate(([b, o, tr, chs, hostile]) => {
      window.N = {};
      tr.forEach(function (t) {
        const c = anypush.connect(b, Object.assign({ transports: [t] }, o));
        const r = window.N[t] = { c: c, all: {}, named: {}, onErr: [], msgs: 0 };
        c.on('message', function () { r.msgs++; });
        // the test's own records are keyed 'k' + name: '__proto__' is a
        // channel name here
        chs.forEach(function (name) {
          const ch = c.subscribe(name), all = r.all['k' + name] = [], named = r.named['k' + name] = {};
          ch.on('*', function (m) { all.push(Number(m.id)); });
          hostile.concat(['chat']).forEach(function (ev) {
            named['k' + ev] = 0;
            try {
              ch.on(ev, function () { named['k' + ev]++; });
            } catch (e) { r.onErr.push(ev + ': ' + e.message); }
          });
          // a handler that throws, on every chat message
          ch.on('chat', function () { throw new Error('handler bug (expected)'); });
        });
      });
    }, [gw.base, fast, T, chans, HOSTILE]);
    await L.waitFor(() => page.evaluate((tr) => tr.every((t) => window.N[t].c.readyState === 'open'), T),
      10000, 'all four to open').catch((e) => console.log('# ' + e.message));
    const want = {};
    for (const name of chans) {
      want[name] = [];
      // hostile names between ordinary ones: a client that stops at the
      // first one loses everything after it
      for (const ev of ['chat'].concat(HOSTILE, ['chat'])) want[name].push(await pub(gw.base, name, ev, { ev }));
    }
    const total = want[chans[0]].length;
    let got;
    try {
      await L.waitFor(async () => {
        got = await page.evaluate(() => JSON.parse(JSON.stringify(Object.keys(window.N).reduce((o, t) => {
          const r = window.N[t];
          o[t] = { all: r.all, named: r.named, onErr: r.onErr, msgs: r.msgs, state: r.c.readyState, cursor: r.c.cursor() };
          return o;
        }, {}))));
        return T.every((tr) => chans.every((n) => got[tr].all['k' + n].length >= total));
      }, 8000, 'every message on every transport');
    } catch (e) { /* counted below */ }
    for (const tr of T) {
      const g = got[tr];
      for (const n of chans) {
        const c = count(g.all['k' + n], want[n]);
        console.log('# ' + tr + ' ' + n + ': got ' + g.all['k' + n].length + '/' + total + ', lost ' + c.lost +
          ', duplicated ' + c.dup + ', reordered ' + c.reordered + ', state ' + g.state);
        assert.deepStrictEqual(c, { lost: 0, dup: 0, reordered: 0 }, tr + ' ' + n);
        for (const ev of HOSTILE) assert.strictEqual(g.named['k' + n]['k' + ev], 1, tr + ' ' + n + ': on(' + ev + ') calls');
        assert.strictEqual(g.named['k' + n].kchat, 2, tr + ' ' + n + ': on(chat) calls beside the throwing one');
      }
      assert.deepStrictEqual(g.onErr, [], tr + ': on(name) threw');
      assert.strictEqual(g.msgs, 2 * total, tr + ": c.on('message') calls");
      assert.strictEqual(g.state, 'open', tr + ': readyState');
      assert.strictEqual(g.cursor, chans.map((n) => want[n].length).map(String).map((id, i) =>
        got[tr].cursor.split(',')[i].split(':')[0] + ':' + id).join(','), tr + ': cursor');
    }
    await page.evaluate(() => { Object.keys(window.N).forEach((t) => window.N[t].c.close()); });
  });

  await t.test("SSE: a server event named 'error' is a message, the stream stays (fake EventSource)", async () => {
    const r = await page.evaluate(async (b) => {
      // EventSource as the browser dispatches: a server event named
      // 'error' goes to the 'error' listeners and to onerror, with data
      function FakeES(url) { this.url = url; this.ls = {}; FakeES.all.push(this); }
      FakeES.all = [];
      FakeES.prototype.addEventListener = function (n, fn) { (this.ls[n] = this.ls[n] || []).push(fn); };
      FakeES.prototype.close = function () { this.closed = true; };
      FakeES.prototype.fire = function (type, data, id) {
        const e = { type: type, data: JSON.stringify(data), lastEventId: id || '' };
        (this.ls[type] || []).forEach((fn) => fn(e));
        if (this['on' + type]) this['on' + type](e);
      };
      const tick = () => new Promise((res) => setTimeout(res, 30));
      const c = anypush.connect(b, { transports: ['sse'], env: { EventSource: FakeES, XMLHttpRequest: XMLHttpRequest },
        openTimeout: 30000, reconnectDelay: 50, reconnectDelayMax: 50 });
      const ch = c.subscribe('e');
      const got = [], errors = [];
      let opens = 0;
      ch.on('*', (m) => got.push(m.event + ':' + m.id));
      c.on('open', () => { opens++; });
      c.on('error', (e) => errors.push(e.code));
      await tick();
      const es = FakeES.all[0];
      es.fire('welcome', { client: 'x', heartbeat: 15, cursor: 'ep1:0' }, 'ep1:0');
      const env = (ev, id) => ({ type: 'message', channel: 'e', event: ev, data: id, ts: 1, epoch: 'ep1', id: id });
      es.fire('message', env('message', 1), 'ep1:1');
      es.fire('error', env('error', 2), 'ep1:2');
      es.fire('message', env('chat', 3), 'ep1:3');
      await tick(); await tick();
      const res = { got, errors, opens, streams: FakeES.all.length, closed: !!es.closed, cursor: ch.cursor, state: c.readyState,
        url: es.url };
      c.close();
      return res;
    }, gw.base);
    console.log('# ' + JSON.stringify(r));
    assert.deepStrictEqual(r.got, ['message:1', 'error:2', 'chat:3'], 'messages');
    assert.strictEqual(r.streams, 1, 'EventSources opened (a reconnect opens another)');
    assert.strictEqual(r.closed, false, 'the stream was closed');
    assert.deepStrictEqual(r.errors, [], 'error events');
    assert.strictEqual(r.cursor, 'ep1:3', 'cursor');
    assert.strictEqual(r.state, 'open', 'readyState');
  });

  await t.test("SSE: '*' and 'message' get every event name, the cursor moves on each (real gateway)", async () => {
    await page.evaluate((b) => {
      const c = anypush.connect(b, { transports: ['sse'] });
      const ch = c.subscribe('sse-names');
      window.S = { c: c, ch: ch, star: [], msg: [] };
      ch.on('*', (m) => window.S.star.push(Number(m.id)));
      c.on('message', (m) => window.S.msg.push(Number(m.id)));
    }, gw.base);
    await L.waitFor(() => page.evaluate(() => window.S.c.readyState === 'open'), 10000, 'SSE open');
    const want = [];
    for (let i = 0; i < 30; i++) want.push(await pub(gw.base, 'sse-names', 'chat', { i }));
    let s;
    try {
      await L.waitFor(async () => {
        s = await page.evaluate(() => ({ star: window.S.star, msg: window.S.msg, cursor: window.S.ch.cursor, url: window.S.c.transport }));
        return s.star.length >= 30 && s.msg.length >= 30;
      }, 5000, '30 chat events');
    } catch (e) { /* counted below */ }
    const a = count(s.star, want), b = count(s.msg, want);
    console.log("# SSE '*': " + s.star.length + '/30 ' + JSON.stringify(a) + "; 'message': " + s.msg.length + '/30 ' +
      JSON.stringify(b) + '; cursor ' + s.cursor);
    assert.deepStrictEqual(a, { lost: 0, dup: 0, reordered: 0 }, "'*'");
    assert.deepStrictEqual(b, { lost: 0, dup: 0, reordered: 0 }, "'message'");
    assert.strictEqual(String(s.cursor).split(':')[1], String(want[want.length - 1]), 'cursor');
    await page.evaluate(() => window.S.c.close());
  });

  await t.test('WS closed with 1013 before the welcome: retried, not left; the close code is kept (fake WebSocket)', async () => {
    const r = await page.evaluate(async (b) => {
      function FakeWS(url) { this.url = url; FakeWS.all.push(this); }
      FakeWS.all = [];
      FakeWS.prototype.send = function (text) { (this.sent = this.sent || []).push(JSON.parse(text)); };
      FakeWS.prototype.close = function () { this.closed = true; };
      const tick = (ms) => new Promise((res) => setTimeout(res, ms || 30));
      const c = anypush.connect(b, { env: { WebSocket: FakeWS, XMLHttpRequest: XMLHttpRequest, EventSource: EventSource },
        openTimeout: 30000, reconnectDelay: 50, reconnectDelayMax: 50 });
      c.subscribe('busy');
      const errors = [], closes = [];
      c.on('error', (e) => errors.push([e.code, e.closeCode, e.closeReason]));
      c.on('close', (e) => closes.push([e.code, e.closeCode, e.closeReason]));
      await tick();
      FakeWS.all[0].onclose({ code: 1013, reason: 'unavailable' });
      // the gateway would answer /healthz 200 here: the transport is not
      // to blame, the gateway is busy
      await tick(600);
      const second = FakeWS.all.length;
      if (second > 1) {
        const ws = FakeWS.all[FakeWS.all.length - 1];
        ws.onmessage({ data: JSON.stringify({ type: 'welcome', client: 'x', heartbeat: 15 }) });
        // /ws: the subscribe the welcome brought, acknowledged
        ws.sent.forEach((f) => ws.onmessage({ data: JSON.stringify({ type: 'ack', ref: f.ref, cursor: 'ep1:0' }) }));
        ws.onclose({ code: 1013, reason: 'unavailable' });
        await tick(100);
      }
      const res = { sockets: FakeWS.all.length, transport: c.transport, failed: c.failed, errors, closes };
      c.close();
      return res;
    }, gw.base);
    console.log('# ' + JSON.stringify(r));
    assert.strictEqual(r.transport, 'ws', 'transport after a 1013');
    assert.deepStrictEqual(r.failed, {}, 'transports left');
    assert.ok(r.sockets >= 3, 'WebSockets opened: ' + r.sockets);
    assert.deepStrictEqual(r.errors[0], ['ws_failed', 1013, 'unavailable'], "the 'error' event");
    assert.deepStrictEqual(r.closes[0], ['closed', 1013, 'unavailable'], "the 'close' event");
  });

  await t.test('pushed down to long poll by --max-streams, back up to WebSocket once there is room', async () => {
    // two slots: once there is room, the long poll being left may still
    // hold one for a moment while the WebSocket takes the other
    const g2 = await L.startGateway(['--max-streams', '2', '--max-connections', '16']);
    const holds = [];
    for (let i = 0; i < 2; i++) {
      const h = http.get(g2.base + '/channels/hold?transport=sse', { agent: false });
      L.onCleanup(() => h.destroy());
      holds.push(h);
      await new Promise((res, rej) => { h.on('response', res); h.on('error', rej); });
    }
    const { page: p2 } = await L.clientPage(browser, g2.base);
    await p2.evaluate((b) => {
      const c = anypush.connect(b, { openTimeout: 2000, reconnectDelay: 100, reconnectDelayMax: 400, upgradeDelay: 1500,
        requestTimeout: 3000, pollInterval: 100, longpollTimeout: 2 });
      const ch = c.subscribe('cap');
      window.C = { c: c, got: [], transports: [], closes: [] };
      ch.on('*', (m) => window.C.got.push(Number(m.id)));
      c.on('transport', (tr) => window.C.transports.push(tr));
    }, g2.base);
    // down the list while the gateway is full
    await L.waitFor(() => p2.evaluate(() => window.C.transports.indexOf('longpoll') >= 0), 15000, 'a fall back to long poll');
    // the client never opened yet, so it has no position: messages count
    // from its first connection on
    const want = [];
    holds.forEach((h) => h.destroy());
    await L.waitFor(() => p2.evaluate(() => window.C.c.readyState === 'open'), 10000, 'open once there is room');
    want.push(await pub(g2.base, 'cap', 'chat', 2));
    let s;
    try {
      await L.waitFor(async () => {
        s = await p2.evaluate(() => ({ tr: window.C.c.transport, state: window.C.c.readyState, got: window.C.got,
          transports: window.C.transports, failed: window.C.c.failed }));
        return s.tr === 'ws' && s.state === 'open';
      }, 8000, 'back on ws');
    } finally {
      console.log('# ' + JSON.stringify(s));
    }
    for (let i = 3; i <= 6; i++) want.push(await pub(g2.base, 'cap', 'chat', i));
    await L.waitFor(() => p2.evaluate((n) => window.C.got.length >= n, want.length), 5000, 'every message').catch(() => {});
    s = await p2.evaluate(() => ({ got: window.C.got, tr: window.C.c.transport }));
    const c = count(s.got, want);
    console.log('# back on ' + s.tr + ': got ' + s.got.length + '/' + want.length + ' ' + JSON.stringify(c));
    assert.deepStrictEqual(c, { lost: 0, dup: 0, reordered: 0 }, 'messages');
    assert.strictEqual(s.tr, 'ws', 'transport at the end');
    await p2.evaluate(() => window.C.c.close());
  });

  await t.done();
})();
