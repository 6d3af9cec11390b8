'use strict';
// The browser client's life cycle (issue 13, defects 6 to 8): changing
// the channel set while connected is neither a close nor an open, and
// loses, repeats or reorders nothing; 'open' says reconnect only after a
// 'close'; the cursors of a reply land on the channels of its request
// even when the set changed in between; a request in flight does not make
// a gap of this client's own broadcasts; off() removes a once() handler;
// close() stops every request; connect() opens a closed client again.
// Driven by the real gateway where messages flow, else by fake
// XMLHttpRequest / WebSocket / EventSource objects in the page.
const assert = require('assert');
const L = require('./lib');

const T = ['ws', 'sse', 'longpoll', 'poll'];
const t = L.tap(7, 40000);
const fast = { openTimeout: 3000, reconnectDelay: 50, reconnectDelayMax: 100, pollInterval: 100, requestTimeout: 3000 };

// In the page: fakes whose every request the test answers by hand.
async function installFakes(page) {
  await page.evaluate(() => {
    window.XS = [];
    // a modern XHR: withCredentials says it does CORS (the client does
    // not poll another origin with one that lacks it, as IE 9's)
    window.FakeXHR = function () { this.readyState = 0; this.status = 0; this.responseText = ''; this.hdr = {}; this.withCredentials = false; };
    window.FakeXHR.prototype.open = function (m, url) { this.method = m; this.url = url; this.readyState = 1; };
    window.FakeXHR.prototype.setRequestHeader = function () {};
    window.FakeXHR.prototype.getResponseHeader = function (k) { return this.hdr[k] || null; };
    window.FakeXHR.prototype.send = function (body) { this.body = body; window.XS.push(this); };
    window.FakeXHR.prototype.abort = function () { this.aborted = true; };
    window.FakeXHR.prototype.reply = function (status, obj, hdr) {
      this.readyState = 4; this.status = status; this.responseText = JSON.stringify(obj); this.hdr = hdr || {};
      this.answered = true;
      if (this.onreadystatechange) this.onreadystatechange();
    };
    // the requests neither answered nor aborted
    window.pending = (re) => window.XS.filter((x) => !x.answered && !x.aborted && (!re || re.test(x.url)));
    window.FakeWS = function (url) { this.url = url; window.FakeWS.all.push(this); };
    window.FakeWS.all = [];
    window.FakeWS.prototype.send = function (text) { (this.sent = this.sent || []).push(JSON.parse(text)); };
    window.FakeWS.prototype.close = function () { this.closed = true; };
    window.FakeWS.prototype.fire = function (frame) { this.onmessage({ data: JSON.stringify(frame) }); };
    // /ws: the welcome, then an ack for every subscribe sent so far
    window.FakeWS.prototype.welcome = function (cursor) {
      this.fire({ type: 'welcome', client: 'me', heartbeat: 15 });
      (this.sent || []).forEach((f) => {
        if (f.op === 'subscribe' && !f.acked) { f.acked = true; this.fire({ type: 'ack', ref: f.ref, cursor: cursor }); }
      });
    };
    window.FakeES = function (url) { this.url = url; this.ls = {}; window.FakeES.all.push(this); };
    window.FakeES.all = [];
    window.FakeES.prototype.addEventListener = function (n, fn) { (this.ls[n] = this.ls[n] || []).push(fn); };
    window.FakeES.prototype.close = function () { this.closed = true; };
    window.FakeES.prototype.fire = function (type, data, id) {
      (this.ls[type] || []).forEach((fn) => fn({ type: type, data: JSON.stringify(data), lastEventId: id || '' }));
    };
    window.sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    window.until = async (fn, ms) => {
      const end = Date.now() + (ms || 3000);
      while (!fn()) {
        if (Date.now() > end) throw new Error('timed out: ' + fn.toString());
        await window.sleep(10);
      }
      return fn();
    };
    window.events = function (c) {
      const ev = [];
      c.on('open', (x) => ev.push('open:' + x.reconnect));
      c.on('close', (x) => ev.push('close:' + x.code));
      return ev;
    };
  });
}

(async () => {
  let browser, page, gw;
  try {
    browser = await L.launch();
    gw = await L.startGateway();
    ({ page } = await L.clientPage(browser, gw.base));
    await L.installRecorder(page);
    await installFakes(page);
  } catch (e) {
    console.log('# setup failed: ' + (e && e.stack || e));
  }

  await t.test('subscribe()/unsubscribe() while connected, every transport: no close, no open, readyState stays open; nothing lost, repeated or reordered; poll and longpoll announce nothing new on the kept channel', async () => {
    const me = {};
    await page.evaluate(([b, o]) => {
      ['ws', 'sse', 'longpoll', 'poll'].forEach(function (tr) {
        window.mk(tr, b, 'keep', Object.assign({ transports: [tr], presence: true, clientId: 'lc-' + tr }, o));
        const r = window.R[tr];
        r.presence = [];
        r.states = [];
        r.chs.keep.on('join', (who) => r.presence.push('join:' + who.client));
        r.chs.keep.on('leave', (who) => r.presence.push('leave:' + who.client));
      });
    }, [gw.base, fast]);
    await L.waitFor(async () => {
      for (const tr of T) if ((await L.rec(page, tr)).readyState !== 'open') return false;
      return true;
    }, 10000, 'all four clients to open');
    // every client has seen its own join (poll: in its first reply)
    await L.waitFor(() => page.evaluate(() => ['ws', 'sse', 'longpoll', 'poll'].every((tr) => window.R[tr].presence.indexOf('join:lc-' + tr) >= 0)),
      10000, 'the joins');
    // record readyState at every turn of the event loop from now on
    await page.evaluate(() => {
      window.stateTimer = setInterval(() => {
        ['ws', 'sse', 'longpoll', 'poll'].forEach((tr) => { const r = window.R[tr]; if (r.states.indexOf(r.c.readyState) < 0) r.states.push(r.c.readyState); });
      }, 1);
    });
    const sent = { keep: [], add: [] };
    const pub = async (ch, n) => { for (let i = 0; i < n; i++) sent[ch].push(await L.publish(gw.base, ch, 'score', ch + sent[ch].length)); };
    await pub('keep', 3);
    await page.evaluate(() => ['ws', 'sse', 'longpoll', 'poll'].forEach((tr) => {
      const r = window.R[tr];
      r.chs.add = r.c.subscribe('add');
      r.chs.add.on('score', (d, m) => r.msgs.push({ ch: m.channel, epoch: m.epoch, id: m.id, ev: m.event, data: d }));
    }));
    await L.waitFor(() => page.evaluate(() => ['ws', 'sse', 'longpoll', 'poll'].every((tr) => window.R[tr].chs.add.cursor !== null)),
      10000, 'the new channel to have a cursor');
    await pub('keep', 3);
    await pub('add', 2);
    await L.waitFor(async () => {
      for (const tr of T) if ((await L.rec(page, tr)).msgs.filter((m) => m.ch === 'add').length < 2) return false;
      return true;
    }, 10000, 'every client to get the new channel');
    await page.evaluate(() => ['ws', 'sse', 'longpoll', 'poll'].forEach((tr) => window.R[tr].chs.add.unsubscribe()));
    await L.sleep(300);
    await pub('keep', 2);
    await pub('add', 1);
    await L.waitFor(async () => {
      for (const tr of T) if ((await L.rec(page, tr)).msgs.filter((m) => m.ch === 'keep' && m.ev === 'score').length < 8) return false;
      return true;
    }, 10000, 'every client to get all 8 on the kept channel');
    await L.sleep(300);
    await page.evaluate(() => clearInterval(window.stateTimer));
    for (const tr of T) {
      const r = await L.rec(page, tr);
      const extra = await page.evaluate((k) => ({ presence: window.R[k].presence, states: window.R[k].states }), tr);
      const got = r.msgs.filter((m) => m.ev === 'score');
      const keep = got.filter((m) => m.ch === 'keep').map((m) => m.id);
      const add = got.filter((m) => m.ch === 'add').map((m) => m.id);
      const want = sent.keep;
      const lost = want.filter((id) => keep.indexOf(id) < 0).length;
      const dup = keep.length - new Set(keep).size;
      let reordered = 0;
      for (let i = 1; i < keep.length; i++) if (keep[i] <= keep[i - 1]) reordered++;
      const mine = extra.presence.filter((p) => p.endsWith(':lc-' + tr));
      console.log('# ' + tr + ': events ' + r.events.join(' ') + '; states ' + extra.states.join(',') + '; kept channel lost ' + lost +
        ', duplicated ' + dup + ', reordered ' + reordered + '; own presence on it ' + mine.join(','));
      assert.deepStrictEqual(r.events, ['open:' + tr], tr + ': one open, no close');
      assert.deepStrictEqual(extra.states, ['open'], tr + ': readyState stayed open');
      assert.strictEqual(lost + dup + reordered, 0, tr + ': kept channel exact');
      assert.deepStrictEqual(keep, want.filter((id) => keep.indexOf(id) >= 0), tr + ': in order');
      assert.deepStrictEqual(add, sent.add.slice(0, 2), tr + ': the added channel while subscribed, nothing after');
      if (tr === 'poll' || tr === 'longpoll') {
        assert.deepStrictEqual(mine, ['join:lc-' + tr], tr + ': no leave/join on the kept channel');
      }
    }
    await page.evaluate(() => { Object.keys(window.R).forEach((k) => window.R[k].c.close()); window.R = {}; });
  });

  await t.test("'open' says reconnect:false on the first open after failed attempts, and true only after a close", async () => {
    const ev = await page.evaluate(async () => {
      window.FakeWS.all = [];
      window.XS = [];
      const c = anypush.connect('http://127.0.0.1:1', { transports: ['ws'], env: { WebSocket: window.FakeWS, XMLHttpRequest: window.FakeXHR },
        reconnectDelay: 20, reconnectDelayMax: 20 });
      const ev = window.events(c);
      c.subscribe('r');
      for (let i = 0; i < 2; i++) {
        // a WebSocket that never opens; the probe says the gateway is away
        await window.until(() => window.FakeWS.all.length === i + 1);
        window.FakeWS.all[i].onclose({ code: 1006 });
        await window.until(() => window.pending(/healthz/).length === 1);
        window.pending(/healthz/)[0].reply(502, {});
      }
      await window.until(() => window.FakeWS.all.length === 3);
      window.FakeWS.all[2].welcome('e:1');
      window.FakeWS.all[2].onclose({ code: 1006 });
      await window.until(() => window.FakeWS.all.length === 4);
      window.FakeWS.all[3].welcome('e:1');
      c.close();
      return ev;
    });
    assert.deepStrictEqual(ev, ['open:false', 'close:closed', 'open:true', 'close:client']);
  });

  await t.test('cursors of a reply land on the channels of its request, after an unsubscribe+subscribe in between (poll next, SSE welcome)', async () => {
    const out = await page.evaluate(async () => {
      window.XS = [];
      window.FakeES.all = [];
      const env = { XMLHttpRequest: window.FakeXHR, EventSource: window.FakeES };
      const res = {};
      // poll: the reply to /channels/a,b comes after a left and c came
      const c = anypush.connect('http://127.0.0.1:1', { transports: ['poll'], env: env, pollInterval: 10 });
      const a = c.subscribe('a', { since: 'ea:1' }), b = c.subscribe('b', { since: 'eb:1' });
      await window.until(() => window.pending(/channels\/a,b\?/).length === 1);
      const x = window.pending()[0];
      a.unsubscribe();
      const cc = c.subscribe('c');
      x.reply(200, { messages: [], next: 'ea:5,eb:7' }, { 'X-Client-Id': 'me' });
      res.poll = { a: a.cursor, b: b.cursor, c: cc.cursor, composite: c.cursor() };
      // c needs its tail: /info, then the poll names b,c with both cursors
      try {
        await window.until(() => window.pending(/channels\/c\/info/).length === 1, 1000);
        window.pending(/info/)[0].reply(200, { channel: 'c', epoch: 'ec', last_id: 2 });
        await window.until(() => window.pending(/channels\/b,c\?/).length === 1, 1000);
        res.pollUrl = window.pending()[0].url;
      } catch (e) {
        res.pollUrl = 'none: ' + window.pending().map((r) => r.url).join(' ');
      }
      c.close();
      // sse: the welcome of /channels/a,b comes after a left and c came
      const s = anypush.connect('http://127.0.0.1:1', { transports: ['sse'], env: env });
      const sa = s.subscribe('a', { since: 'ea:1' }), sb = s.subscribe('b', { since: 'eb:1' });
      await window.until(() => window.FakeES.all.length === 1);
      sa.unsubscribe();
      const sc = s.subscribe('c');
      window.FakeES.all[0].fire('welcome', { client: 'me', heartbeat: 15, cursor: 'ea:5,eb:7' }, 'ea:5,eb:7');
      res.sse = { a: sa.cursor, b: sb.cursor, c: sc.cursor, composite: s.cursor() };
      s.close();
      return res;
    });
    assert.deepStrictEqual(out.poll, { a: 'ea:1', b: 'eb:7', c: null, composite: 'eb:7,' }, 'poll next');
    assert(/\/channels\/b,c\?transport=poll&since=eb:7,ec:2&/.test(out.pollUrl), 'next poll: ' + out.pollUrl);
    assert.deepStrictEqual(out.sse, { a: 'ea:1', b: 'eb:7', c: null, composite: 'eb:7,' }, 'sse welcome');
  });

  await t.test("a long poll sent before this client's broadcasts were acked comes back with a gap over them: no gap reported, nothing else hidden", async () => {
    const out = await page.evaluate(async () => {
      window.XS = [];
      const c = anypush.connect('http://127.0.0.1:1', { transports: ['longpoll'], env: { XMLHttpRequest: window.FakeXHR } });
      const gaps = [];
      c.on('gap', (g) => gaps.push(g.last_seen + '-' + g.cursor));
      const ch = c.subscribe('o', { since: 'e:3' });
      await window.until(() => window.pending(/longpoll/).length === 1);
      window.pending()[0].reply(200, { messages: [], next: 'e:3' }, { 'X-Client-Id': 'me' });
      await window.until(() => window.pending(/longpoll/).length === 1);
      const held = window.pending(/longpoll/)[0];
      // six broadcasts, acked 4..9, one after the other
      for (let i = 0; i < 6; i++) ch.broadcast('score', i);
      for (let i = 4; i <= 9; i++) {
        await window.until(() => window.pending(/event=score/).length === 1);
        window.pending(/event=score/)[0].reply(201, { channel: 'o', id: i, epoch: 'e' });
      }
      const before = ch.cursor;
      // history kept only 8 and 9 (of ours); the held long poll wakes up
      held.reply(200, { messages: [], next: 'e:9', gap: true, gaps: [{ channel: 'o', last_seen: 3, cursor: 9, epoch: 'e' }] });
      const quiet = ch.cursor;
      await window.until(() => window.pending(/longpoll/).length === 1);
      // a gap over our own 10 (not acked yet: a real gap to us) and 11, 12
      // of someone else's: reported
      window.pending(/longpoll/)[0].reply(200, { messages: [], next: 'e:12', gap: true, gaps: [{ channel: 'o', last_seen: 9, cursor: 12, epoch: 'e' }] });
      c.close();
      return { before: before, quiet: quiet, after: ch.cursor, gaps: gaps };
    });
    assert.strictEqual(out.before, 'e:9', 'the acks moved the cursor over the own broadcasts');
    assert.strictEqual(out.quiet, 'e:9');
    assert.deepStrictEqual(out.gaps, ['9-12'], 'only the real gap is reported');
    assert.strictEqual(out.after, 'e:12');
  });

  await t.test('off(name, fn) removes a once(name, fn) handler, on the client and on a channel', async () => {
    const out = await page.evaluate(() => {
      const c = anypush.connect('http://127.0.0.1:1', { transports: ['poll'], env: { XMLHttpRequest: window.FakeXHR } });
      const calls = [];
      const fn = (x) => calls.push(x);
      c.once('x', fn);
      c.off('x', fn);
      c.emit('x', 'client');
      const ch = c.subscribe('once');
      ch.once('score', fn);
      ch.off('score', fn);
      ch.emit('score', 'channel');
      ch.once('score', fn);
      ch.emit('score', 'kept');
      ch.emit('score', 'only once');
      c.close();
      return calls;
    });
    assert.deepStrictEqual(out, ['kept']);
  });

  await t.test('close() aborts the /healthz probe and the /info tail requests in flight', async () => {
    const out = await page.evaluate(async () => {
      window.XS = [];
      window.FakeWS.all = [];
      const env = { WebSocket: window.FakeWS, XMLHttpRequest: window.FakeXHR };
      // the probe after a WebSocket that never opened
      const c = anypush.connect('http://127.0.0.1:1', { transports: ['ws'], env: env });
      c.subscribe('p');
      await window.until(() => window.FakeWS.all.length === 1);
      window.FakeWS.all[0].onclose({ code: 1006 });
      await window.until(() => window.pending(/healthz/).length === 1);
      c.close();
      const probe = window.pending().length;
      // the tail of a channel added to a running subscription (SSE: /ws
      // adds it with an operation on the socket, without a tail request)
      window.FakeES.all = [];
      const d = anypush.connect('http://127.0.0.1:1', { transports: ['sse'], env: { EventSource: window.FakeES, XMLHttpRequest: window.FakeXHR } });
      d.subscribe('q');
      await window.until(() => window.FakeES.all.length === 1);
      window.FakeES.all[0].fire('welcome', { client: 'me', heartbeat: 15, cursor: 'e:1' }, 'e:1');
      d.subscribe('r');
      await window.until(() => window.pending(/channels\/r\/info/).length === 1);
      d.close();
      await window.sleep(50);
      return { probe: probe, tail: window.pending().length, requests: window.XS.length, sockets: window.FakeWS.all.length };
    });
    assert.deepStrictEqual(out, { probe: 0, tail: 0, requests: 2, sockets: 1 }, 'nothing left running');
  });

  await t.test('subscribe() on a closed client throws; connect() opens it again with its channels and cursors, as a new open', async () => {
    const out = await page.evaluate(async () => {
      window.XS = [];
      const c = anypush.connect('http://127.0.0.1:1', { transports: ['poll'], env: { XMLHttpRequest: window.FakeXHR }, pollInterval: 10 });
      const ev = window.events(c);
      c.subscribe('s', { since: 'e:1' });
      await window.until(() => window.pending(/poll/).length === 1);
      window.pending()[0].reply(200, { messages: [], next: 'e:4' }, { 'X-Client-Id': 'me' });
      c.close();
      let threw = null;
      try { c.subscribe('t'); } catch (e) { threw = e.message; }
      const closed = c.readyState;
      await window.sleep(50);
      const whileClosed = window.pending().length;
      c.connect();
      await window.until(() => window.pending(/poll/).length === 1);
      const url = window.pending()[0].url;
      window.pending()[0].reply(200, { messages: [], next: 'e:4' }, { 'X-Client-Id': 'me' });
      const state = c.readyState;
      c.close();
      return { threw: threw, closed: closed, whileClosed: whileClosed, url: url, state: state, ev: ev };
    });
    assert(/closed.*connect\(\)/.test(out.threw || ''), 'subscribe on a closed client throws: ' + out.threw);
    assert.strictEqual(out.closed, 'closed');
    assert.strictEqual(out.whileClosed, 0);
    assert(/\/channels\/s\?transport=poll&since=e:4&/.test(out.url), 'resumes with the cursor: ' + out.url);
    assert.strictEqual(out.state, 'open');
    assert.deepStrictEqual(out.ev, ['open:false', 'close:client', 'open:false', 'close:client']);
  });

  await t.done();
})();
