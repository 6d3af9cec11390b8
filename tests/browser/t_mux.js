'use strict';
// The client on the multiplexed /ws (issue 13: one socket for everything,
// idempotent publishes, per-subscription state, network events), in
// Chromium against the real gateway, through the test proxy where a link
// must fail, and with fake WebSocket / a hand-made HTTP server where the
// exact frames and headers are the point:
// 1. one WebSocket for every channel; channels come and go as operations
//    on it, with nothing lost, repeated or reordered on the channel kept
// 2. publishes go over the socket (no HTTP request), in call order, acked
// 3. publishes made while disconnected wait and are stored once after the
//    reconnect, in call order
// 4. acks lost on a frozen link: the publishes are sent again with their
//    keys; stored once when the gateway honours keys (detected first)
// 5. every publish carries a key, the same one on every try (/ws frame
//    after a lost socket, HTTP Idempotency-Key after a network error)
// 6. per-channel state events, with the gateway's close code and reason;
//    a refused subscribe reports the gateway's code
// 7. 'offline' drops the link without spending attempts, 'online'
//    reconnects at once (Playwright's setOffline); a page that becomes
//    visible retries at once
// 8. a page on another origin publishes over HTTP with its key: the
//    gateway's CORS preflight allows Idempotency-Key
const assert = require('assert');
const http = require('http');
const L = require('./lib');

const t = L.tap(8, 85000);
const fast = { openTimeout: 3000, reconnectDelay: 50, reconnectDelayMax: 200, requestTimeout: 3000 };

// counts WebSocket constructions and XHR POSTs in the page
function countingInit() {
  const W = window.WebSocket;
  window.WSN = 0;
  window.WebSocket = function (u, p) { window.WSN++; return new W(u, p); };
  window.WebSocket.prototype = W.prototype;
  window.POSTS = 0;
  const open = XMLHttpRequest.prototype.open;
  XMLHttpRequest.prototype.open = function (m) { if (m === 'POST') window.POSTS++; return open.apply(this, arguments); };
}

// every message the channel keeps (poll replies stop at 256: follow "more")
async function stored(base, channel) {
  let out = [], since = '0';
  for (let i = 0; i < 20; i++) {
    const j = JSON.parse((await L.httpReq('GET', base + '/channels/' + channel + '?transport=poll&since=' + since)).body);
    out = out.concat(j.messages);
    since = j.next;
    if (!j.more) break;
  }
  return out;
}

// Does the gateway honour Idempotency-Key (the idem branch)? A repeat of a
// keyed publish answers with Idempotent-Replayed: true.
async function replays(base) {
  const h = { 'Content-Type': 'application/json', 'Idempotency-Key': 'probe-key-1' };
  await L.httpReq('POST', base + '/channels/idem-probe', '1', h);
  const r = await L.httpReq('POST', base + '/channels/idem-probe', '1', h);
  return r.status === 201 && r.headers['idempotent-replayed'] === 'true';
}

// a page promise that may never settle (a client that lost an ack) fails
// its test instead of the whole file
function within(ms, p, what) {
  let timer;
  return Promise.race([p, new Promise((_, rej) => { timer = setTimeout(() => rej(new Error('no answer within ' + ms + ' ms: ' + what)), ms); })])
    .finally(() => clearTimeout(timer));
}

function exact(got, want, what) {
  const seen = new Set();
  let dup = 0, reordered = 0;
  for (let i = 0; i < got.length; i++) {
    if (seen.has(got[i])) dup++;
    seen.add(got[i]);
    if (i && got[i] <= got[i - 1]) reordered++;
  }
  const lost = want.filter((x) => !seen.has(x)).length;
  console.log('# ' + what + ': lost ' + lost + ', duplicated ' + dup + ', reordered ' + reordered);
  assert.deepStrictEqual(got, want, what);
}

(async () => {
  let browser, page, context, gw;
  try {
    browser = await L.launch();
    gw = await L.startGateway();
    ({ page, context } = await L.clientPage(browser, gw.base, { init: countingInit }));
    await L.installRecorder(page);
  } catch (e) {
    console.log('# setup failed: ' + (e && e.stack || e));
  }

  await t.test('one WebSocket for 5 channels; 3 added, 2 left and 1 taken again while messages flow: no new socket, no close/open, the kept channel exact', async () => {
    await page.evaluate(([b, o]) => window.mk('m', b, ['keep', 'c1', 'c2', 'c3', 'c4'], Object.assign({ transports: ['ws'] }, o)), [gw.base, fast]);
    await L.waitFor(async () => (await L.rec(page, 'm')).readyState === 'open', 10000, 'the client to open');
    const N = 60;
    const pubs = (async () => {
      for (let i = 1; i <= N; i++) {
        await L.publish(gw.base, 'keep', 'score', i);
        if (i % 10 === 0) await L.publish(gw.base, 'x1', 'score', i);
        await L.sleep(10);
      }
    })();
    // churn while the publishes flow
    for (let k = 0; k < 3; k++) {
      await page.evaluate((k) => {
        const r = window.R.m;
        const name = 'x' + (k + 1);
        r.chs[name] = r.c.subscribe(name);
        r.chs[name].on('score', function (data, m) { r.msgs.push({ ch: m.channel, epoch: m.epoch, id: m.id, ev: m.event, data: data }); });
        if (k < 2) r.chs['c' + (k + 1)].unsubscribe();
        if (k === 2) { r.chs.c1 = r.c.subscribe('c1'); }
      }, k);
      await L.sleep(150);
    }
    await pubs;
    await L.waitFor(async () => (await L.rec(page, 'm')).msgs.filter((m) => m.ch === 'keep').length >= N, 10000, 'all ' + N + ' on keep');
    await L.sleep(200);
    const r = await L.rec(page, 'm');
    const info = await page.evaluate(() => ({
      wsn: window.WSN, list: window.R.m.c.channelList.slice(),
      states: Object.keys(window.R.m.chs).map((k) => k + ':' + window.R.m.chs[k].state).sort(),
    }));
    console.log('# ' + JSON.stringify(info) + ' events ' + r.events.join(' ') + ' requests ' + r.stats.requests);
    assert.strictEqual(info.wsn, 1, 'WebSockets made');
    assert.strictEqual(r.stats.requests, 1, 'connections made');
    assert.deepStrictEqual(r.events, ['open:ws'], 'one open, no close');
    assert.deepStrictEqual(info.list, ['keep', 'c3', 'c4', 'x1', 'x2', 'x3', 'c1']);
    assert.deepStrictEqual(info.states, ['c1:subscribed', 'c2:unsubscribed', 'c3:subscribed', 'c4:subscribed', 'keep:subscribed',
      'x1:subscribed', 'x2:subscribed', 'x3:subscribed']);
    exact(r.msgs.filter((m) => m.ch === 'keep').map((m) => m.data), Array.from({ length: N }, (_, i) => i + 1), 'keep');
    const x1 = r.msgs.filter((m) => m.ch === 'x1').map((m) => m.data);
    const x1all = [10, 20, 30, 40, 50, 60];
    assert(x1.length >= 3, 'x1 gets what is published after it came: ' + x1);
    assert.deepStrictEqual(x1, x1all.slice(x1all.length - x1.length), 'x1: from its subscription on, all, in order');
  });

  await t.test('200 publishes in a tight loop go over the socket (no HTTP request), acked in call order, received once in order', async () => {
    const N = 200;
    const before = await page.evaluate(() => ({ wsn: window.WSN, posts: window.POSTS }));
    const acks = await within(15000, page.evaluate((n) => new Promise((resolve) => {
      const ch = window.R.m.chs.keep;
      const out = [];
      for (let i = 0; i < n; i++) {
        ch.publish('note', 1000 + i, (function (k) {
          return function (err, id, epoch, info) {
            out.push(err ? 'err:' + err.code : { k: k, id: id, tries: (info || {}).tries });
            if (out.length === n) resolve(out);
          };
        }(i)));
      }
    }), N), 'the acks');
    const errs = acks.filter((a) => typeof a === 'string');
    assert.deepStrictEqual(errs, [], 'every publish acknowledged');
    assert.deepStrictEqual(acks.map((a) => a.k), Array.from({ length: N }, (_, i) => i), 'acks come in call order');
    assert(acks.every((a, i) => !i || a.id > acks[i - 1].id), 'ids increase in call order');
    await L.waitFor(async () => (await page.evaluate(() => window.R.m.c.stats.messages)) >= 60 + N, 10000, 'the client to get its own');
    const own = await stored(gw.base, 'keep');
    exact(own.filter((m) => m.event === 'note').map((m) => m.data), Array.from({ length: N }, (_, i) => 1000 + i), 'stored');
    const after = await page.evaluate(() => ({ wsn: window.WSN, posts: window.POSTS }));
    assert.deepStrictEqual(after, before, 'no new socket and no HTTP publish');
    await page.evaluate(() => window.R.m.c.close());
  });

  await t.test('publishes made while the link is down wait, then are stored once each, in call order, after the reconnect', async () => {
    const proxy = await new L.Proxy(gw.base).listen();
    await page.evaluate(([b, o]) => window.mk('buf', b, 'buf', Object.assign({ transports: ['ws'] }, o)), [proxy.base, fast]);
    await L.waitFor(async () => (await L.rec(page, 'buf')).readyState === 'open', 10000, 'the client to open');
    proxy.down = true;
    proxy.cut();
    await L.waitFor(async () => (await L.rec(page, 'buf')).readyState === 'reconnecting', 5000, 'the client to notice');
    await page.evaluate(() => {
      window.BUF = [];
      for (let i = 0; i < 20; i++) {
        window.R.buf.chs.buf.publish('note', i, function (err, id) { window.BUF.push(err ? 'err:' + err.code : id); });
      }
    });
    await L.sleep(700);
    assert.deepStrictEqual(await page.evaluate(() => window.BUF), [], 'nothing answered while down');
    assert.deepStrictEqual(await stored(gw.base, 'buf'), [], 'nothing stored while down');
    proxy.down = false;
    await L.waitFor(() => page.evaluate(() => window.BUF.length === 20), 10000, 'the 20 acks');
    const acks = await page.evaluate(() => window.BUF);
    assert(acks.every((a, i) => typeof a === 'number' && (!i || a > acks[i - 1])), 'acked in call order: ' + acks);
    exact((await stored(gw.base, 'buf')).map((m) => m.data), Array.from({ length: 20 }, (_, i) => i), 'stored');
    await L.waitFor(async () => (await L.rec(page, 'buf')).stats.messages >= 20, 5000, 'the client to get them');
    await page.evaluate(() => window.R.buf.c.close());
  });

  await t.test('acks lost on a frozen link: sent again with their keys after the ack timeout; stored once when the gateway honours keys', async () => {
    const honours = await replays(gw.base);
    const proxy = await new L.Proxy(gw.base).listen();
    await page.evaluate(([b, o]) => window.mk('fz', b, 'fz', Object.assign({ transports: ['ws'], ackTimeout: 9000 }, o)), [proxy.base, fast]);
    await L.waitFor(async () => (await L.rec(page, 'fz')).readyState === 'open', 10000, 'the client to open');
    proxy.freeze();
    await page.evaluate(() => {
      window.FZ = [];
      for (let i = 0; i < 5; i++) {
        window.R.fz.chs.fz.publish('note', i, function (err, id, epoch, info) {
          window.FZ.push(err ? 'err:' + err.code : { id: id, replayed: (info || {}).replayed, tries: (info || {}).tries });
        });
      }
    });
    await L.waitFor(async () => (await stored(gw.base, 'fz')).length >= 5, 5000, 'the gateway to store the first tries');
    await L.waitFor(() => page.evaluate(() => window.FZ.length === 5), 15000, 'the 5 acks, after a new socket');
    const acks = await page.evaluate(() => window.FZ);
    const r = await L.rec(page, 'fz');
    const data = (await stored(gw.base, 'fz')).map((m) => m.data);
    console.log('# gateway honours keys: ' + honours + '; acks ' + JSON.stringify(acks) + '; stored ' + JSON.stringify(data) +
      '; events ' + r.events.join(' '));
    assert(acks.every((a) => typeof a === 'object' && a.tries === 2), 'each acked on its second try');
    assert(acks.every((a, i) => !i || a.id > acks[i - 1].id), 'acked in call order');
    assert(r.events.indexOf('close:ack_timeout') >= 0, 'the link was given up for the missing acks');
    if (honours) {
      exact(data, [0, 1, 2, 3, 4], 'stored (the gateway honours keys)');
      assert(acks.every((a) => a.replayed === true), 'the second tries were answered as replays');
      assert.deepStrictEqual(acks.map((a) => a.id), (await stored(gw.base, 'fz')).map((m) => m.id), 'the acks name the first stores');
    } else {
      // A gateway without idempotency keys (main before the idem branch)
      // stores the second tries again: what the key is for. Nothing is
      // lost and the first tries are in call order.
      console.log('# NOTE: this gateway ignores Idempotency-Key/"key": exactly-once is checked once it honours them');
      assert.deepStrictEqual(data.slice(0, 5), [0, 1, 2, 3, 4], 'first tries stored in call order');
      assert.deepStrictEqual(data.slice(5), [0, 1, 2, 3, 4], 'the second tries, in call order');
    }
    await page.evaluate(() => window.R.fz.c.close());
  });

  await t.test('each publish has a 22-character key, the same on every try: /ws frames after a lost socket (fake WebSocket), Idempotency-Key after a 503', async () => {
    const ws = await within(10000, page.evaluate(async () => {
      function FakeWS(url) { this.url = url; this.sent = []; FakeWS.all.push(this); }
      FakeWS.all = [];
      FakeWS.prototype.send = function (text) { this.sent.push(JSON.parse(text)); };
      FakeWS.prototype.close = function () { this.closed = true; };
      FakeWS.prototype.fire = function (f) { this.onmessage({ data: JSON.stringify(f) }); };
      FakeWS.prototype.welcome = function () {
        this.fire({ type: 'welcome', client: 'me', heartbeat: 15 });
        this.sent.filter((f) => f.op === 'subscribe').forEach((f) => this.fire({ type: 'ack', ref: f.ref, cursor: 'e:0' }));
      };
      const until = async (fn) => { for (let i = 0; i < 300 && !fn(); i++) await new Promise((r) => setTimeout(r, 10)); return fn(); };
      const c = anypush.connect('http://127.0.0.1:1', { transports: ['ws'], env: { WebSocket: FakeWS, XMLHttpRequest: XMLHttpRequest },
        reconnectDelay: 10, reconnectDelayMax: 10 });
      const states = [];
      const ch = c.subscribe('k');
      ['subscribing', 'subscribed', 'unsubscribed'].forEach((s) => ch.on(s, (i) => states.push(s + ':' + (i.code || '') + ':' + i.recovered)));
      const acks = [];
      ch.publish('note', 'a', (err, id, epoch, info) => acks.push(err ? err.code : id + ':' + info.replayed));
      ch.publish('note', 'b', (err, id, epoch, info) => acks.push(err ? err.code : id + ':' + info.replayed));
      await until(() => FakeWS.all.length === 1);
      const buffered = FakeWS.all[0].sent.length;
      FakeWS.all[0].welcome();
      const first = FakeWS.all[0].sent.filter((f) => f.op === 'publish');
      FakeWS.all[0].fire({ type: 'ack', ref: first[0].ref, id: 1, epoch: 'e' });
      FakeWS.all[0].onclose({ code: 1006, reason: '' });
      await until(() => FakeWS.all.length === 2);
      FakeWS.all[1].welcome();
      const second = FakeWS.all[1].sent.filter((f) => f.op === 'publish');
      second.forEach((f, i) => FakeWS.all[1].fire({ type: 'ack', ref: f.ref, id: 2 + i, epoch: 'e', replayed: true }));
      c.close();
      return { buffered: buffered, first: first, second: second, acks: acks, states: states, sub: FakeWS.all[1].sent[0] };
    }), 'the fake socket');
    console.log('# ' + JSON.stringify(ws));
    assert.strictEqual(ws.buffered, 0, 'nothing sent before the welcome');
    assert.deepStrictEqual(ws.first.map((f) => f.data), ['a', 'b']);
    assert(ws.first.every((f) => /^[A-Za-z0-9_-]{22}$/.test(f.key) && f.event === 'note' && f.channel === 'k'), 'keyed publish frames');
    assert.notStrictEqual(ws.first[0].key, ws.first[1].key, 'one key per publish');
    assert.deepStrictEqual(ws.second.map((f) => [f.data, f.key]), [['b', ws.first[1].key]], 'the unacked one again, same key');
    assert.deepStrictEqual(ws.acks, ['1:false', '2:true']);
    assert.deepStrictEqual(ws.sub, { op: 'subscribe', channel: 'k', since: 'e:0', ref: 1 }, 'resubscribed with its cursor');
    assert.deepStrictEqual(ws.states, ['subscribed::false', 'subscribing:closed:undefined', 'subscribed::true', 'unsubscribed:client:undefined']);

    // HTTP: the first try is answered 503 (not stored: a gateway shutting
    // down), the second 201. (A dropped connection would do too, but
    // Chromium itself sends a POST again once on a reused connection.)
    const keys = [];
    const srv = http.createServer((req, res) => {
      const cors = { 'Access-Control-Allow-Origin': '*', 'Access-Control-Allow-Headers': '*',
        'Access-Control-Expose-Headers': 'Idempotent-Replayed' };
      if (req.method === 'OPTIONS') { res.writeHead(204, cors); res.end(); return; }
      keys.push(req.headers['idempotency-key']);
      if (keys.length === 1) {
        res.writeHead(503, Object.assign({ 'Content-Type': 'application/json' }, cors));
        res.end('{"error":{"code":"shutting_down","message":"restarting"}}');
        return;
      }
      res.writeHead(201, Object.assign({ 'Content-Type': 'application/json', 'Idempotent-Replayed': 'true' }, cors));
      res.end('{"channel":"h","id":7,"epoch":"e"}');
    });
    await new Promise((r) => srv.listen(0, '127.0.0.1', r));
    L.onCleanup(() => new Promise((r) => srv.close(() => r())));
    const ack = await within(10000, page.evaluate((port) => new Promise((resolve) => {
      const c = anypush.connect('http://127.0.0.1:' + port, { ackTimeout: 5000 });
      c.publish('h', 'note', 1, (err, id, epoch, info) => resolve(err ? err.code : [id, epoch, (info || {}).replayed, (info || {}).tries]));
    }), srv.address().port), 'the HTTP ack');
    console.log('# HTTP keys ' + JSON.stringify(keys) + ' ack ' + JSON.stringify(ack));
    assert.deepStrictEqual(ack, [7, 'e', true, 2]);
    assert.strictEqual(keys.length, 2);
    assert(/^[A-Za-z0-9_-]{22}$/.test(keys[0]) && keys[0] === keys[1], 'the same key on both tries');
  });

  await t.test("channel states carry the gateway's close code (1001 restarting); a refused subscribe reports its code (over_capacity)", async () => {
    const proxy = await new L.Proxy(gw.base).listen();
    await page.evaluate(([b, o]) => {
      window.mk('st', b, 'st', Object.assign({ transports: ['ws'] }, o));
      const r = window.R.st;
      r.st = [];
      r.closes = [];
      ['subscribing', 'subscribed', 'unsubscribed'].forEach((s) => r.chs.st.on(s, (i) => r.st.push([s, i.code || null, i.closeCode || null, i.closeReason || null, i.recovered])));
      r.c.on('close', (e) => r.closes.push([e.code, e.closeCode, e.closeReason]));
    }, [proxy.base, fast]);
    await L.waitFor(async () => (await L.rec(page, 'st')).readyState === 'open', 10000, 'the client to open');
    proxy.cut();
    await L.waitFor(() => page.evaluate(() => window.R.st.st.length >= 3), 5000, 'subscribing and subscribed again');
    await gw.restart();
    await L.waitFor(() => page.evaluate(() => window.R.st.st.length >= 5 && window.R.st.gaps.length >= 1), 10000, 'back after the restart, with a gap');
    await page.evaluate(() => window.R.st.chs.st.unsubscribe());
    const out = await page.evaluate(() => ({ st: window.R.st.st, closes: window.R.st.closes }));
    const r = await L.rec(page, 'st');
    console.log('# ' + JSON.stringify(out) + ' gaps ' + r.gaps.length);
    assert.deepStrictEqual(out.st, [
      ['subscribed', null, null, null, false],
      ['subscribing', 'closed', 1006, null, undefined],
      ['subscribed', null, null, null, true],
      ['subscribing', 'closed', 1001, 'restarting', undefined],
      ['subscribed', null, null, null, true],
      ['unsubscribed', 'unsubscribe', null, null, undefined],
    ]);
    assert.deepStrictEqual(out.closes.map((c) => c[1]), [1006, 1001, undefined], 'close codes (the last: idle)');
    assert.strictEqual(out.closes[1][2], 'restarting');
    assert.strictEqual(r.gaps.length, 1, 'the restart is a gap (new epoch) after the resubscribe');
    await page.evaluate(() => window.R.st.c.close());

    // another port, another origin than the page's: listed
    const g2 = await L.startGateway(['--max-channels', '1', '--allow-origin', gw.base]);
    const ref = await within(10000, page.evaluate(async (b) => {
      const c = anypush.connect(b, { transports: ['ws'], reconnectDelay: 5000, reconnectDelayMax: 5000 });
      const errors = [];
      c.on('error', (e) => errors.push([e.code, e.channel]));
      const a = c.subscribe('a');
      const bb = c.subscribe('b');
      for (let i = 0; i < 300 && !errors.length; i++) await new Promise((r) => setTimeout(r, 10));
      const out = { errors: errors, a: a.state, b: bb.state, ready: c.readyState };
      c.close();
      return out;
    }, g2.base), 'the refusal');
    console.log('# ' + JSON.stringify(ref));
    assert.deepStrictEqual(ref, { errors: [['over_capacity', 'b']], a: 'subscribed', b: 'subscribing', ready: 'open' });
    await g2.stop();
  });

  await t.test("'offline' drops the link without spending attempts, 'online' reconnects at once; a page made visible retries at once", async () => {
    const slow = { reconnectDelay: 20000, reconnectDelayMax: 30000, openTimeout: 3000, requestTimeout: 3000 };
    await page.evaluate(([b, o]) => {
      window.mk('net', b, 'net', Object.assign({ transports: ['ws'] }, o));
      const r = window.R.net;
      r.rc = [];
      r.c.on('reconnecting', (e) => r.rc.push([e.attempt, !!e.offline]));
    }, [gw.base, slow]);
    await L.waitFor(async () => (await L.rec(page, 'net')).readyState === 'open', 10000, 'the client to open');
    await context.setOffline(true);
    await L.waitFor(async () => (await L.rec(page, 'net')).readyState === 'reconnecting', 5000, 'offline to be noticed');
    for (let i = 1; i <= 3; i++) await L.publish(gw.base, 'net', 'score', i);
    await page.evaluate(() => { window.R.net.chs.net.publish('score', 4); });
    await L.sleep(300);
    const t0 = Date.now();
    await context.setOffline(false);
    await L.waitFor(async () => (await L.rec(page, 'net')).readyState === 'open', 5000, 'online to reconnect');
    const ms = Date.now() - t0;
    await L.waitFor(async () => (await L.rec(page, 'net')).msgs.length >= 4, 5000, 'the 4 messages');
    const r = await L.rec(page, 'net');
    const rc = await page.evaluate(() => window.R.net.rc);
    console.log('# back in ' + ms + ' ms; events ' + r.events.join(' ') + '; reconnecting ' + JSON.stringify(rc));
    assert(ms < 3000, 'reconnected at once, not after a backoff of up to 20 s: ' + ms + ' ms');
    assert.strictEqual(r.events[1], 'close:offline');
    assert.deepStrictEqual(rc[0], [0, true], 'offline spends no attempt');
    exact(r.msgs.map((m) => m.data), [1, 2, 3, 4], 'net');

    // visible again: a reconnect waiting out a long backoff goes now
    const proxy = await new L.Proxy(gw.base).listen();
    await page.evaluate(([b, o]) => {
      window.mk('vis', b, 'vis', Object.assign({ transports: ['ws'] }, o));
      const r = window.R.vis;
      r.rc = [];
      r.c.on('reconnecting', (e) => r.rc.push(e.delay));
    }, [proxy.base, { reconnectDelay: 60000, reconnectDelayMax: 60000, openTimeout: 3000, requestTimeout: 3000 }]);
    await L.waitFor(async () => (await L.rec(page, 'vis')).readyState === 'open', 10000, 'the client to open');
    proxy.down = true;
    proxy.cut();
    // the backoff is random in [0, 60 s): wait for a long one
    await L.waitFor(() => page.evaluate(() => { const d = window.R.vis.rc; return d.length && d[d.length - 1] > 5000; }), 20000, 'a long backoff');
    proxy.down = false;
    const t1 = Date.now();
    await page.evaluate(() => document.dispatchEvent(new Event('visibilitychange')));
    await L.waitFor(async () => (await L.rec(page, 'vis')).readyState === 'open', 5000, 'visible to reconnect');
    console.log('# visible: back in ' + (Date.now() - t1) + ' ms');
    await page.evaluate(() => { window.R.net.c.close(); window.R.vis.c.close(); });
  });

  await t.test('a page on another origin publishes over HTTP: the preflight allows Idempotency-Key, the ack comes', async () => {
    // the proxy's port is another origin than the page's, one the gateway
    // behind it lists (t_origins.js: without it, refused)
    const g3 = await L.startGateway(['--allow-origin', gw.base]);
    const proxy = await new L.Proxy(g3.base).listen();
    const pre = await L.httpReq('OPTIONS', proxy.base + '/channels/xo', undefined,
      { Origin: gw.base, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type,idempotency-key,x-client-id' });
    console.log('# preflight ' + pre.status + ' allow-headers: ' + pre.headers['access-control-allow-headers']);
    const ack = await within(10000, page.evaluate((b) => new Promise((resolve) => {
      const c = anypush.connect(b, { ackTimeout: 3000 });
      c.publish('xo', 'note', 'hi', (err, id) => resolve(err ? 'err:' + err.code : id));
    }), proxy.base), 'the cross-origin ack');
    assert.strictEqual(ack, 1, 'acknowledged with the id');
    assert(/idempotency-key/i.test(pre.headers['access-control-allow-headers'] || ''), 'Idempotency-Key allowed');
    assert(/idempotent-replayed/i.test((await L.httpReq('GET', g3.base + '/healthz')).headers['access-control-expose-headers'] || ''),
      'Idempotent-Replayed exposed');
    exact((await stored(g3.base, 'xo')).map((m) => m.data), ['hi'], 'stored');
  });

  await t.done();
})();
