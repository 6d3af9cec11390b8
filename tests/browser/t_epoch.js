'use strict';
// Cursor epochs in headless Chromium, every transport pinned. A channel's
// ids start again at 1 when the gateway restarts (or forgets an idle
// channel), under a new epoch; a reclaimed channel it still remembers
// keeps its epoch and goes on. A client that was away while the new
// incarnation got messages must hear a gap (with the new epoch) and then
// get every one of them: none lost beyond the gap, none twice, in order.
// With bare ids it resumed at its old id and skipped them silently.
// Also: the client acts on no forged or malformed protocol event (driven
// through fake EventSource / WebSocket objects, so that no gateway rule
// about event names is needed to make one).
const assert = require('assert');
const L = require('./lib');

const T = ['ws', 'sse', 'longpoll', 'poll'];
const t = L.tap(6, 40000);
// short backoff: the clients retry every 300 ms at most while the network
// is away, so they are back soon after it returns
const fast = { openTimeout: 3000, reconnectDelay: 100, reconnectDelayMax: 300, pollInterval: 200, requestTimeout: 3000 };

function range(a, b) { const o = []; for (let i = a; i <= b; i++) o.push(i); return o; }

// Publish and return the gateway's acknowledgement {channel, id, epoch}.
async function pub(base, channel, data) {
  const r = await L.httpReq('POST', base + '/channels/' + channel + '?event=score', JSON.stringify(data),
    { 'Content-Type': 'application/json' });
  if (r.status !== 201) throw new Error('publish: ' + r.status + ' ' + r.body);
  return JSON.parse(r.body);
}

async function pubN(base, channel, n, tag) {
  const acks = [];
  for (let i = 1; i <= n; i++) acks.push(await pub(base, channel, tag + i));
  return acks;
}

async function makeAll(page, base, channels, opts, subOpts) {
  await page.evaluate(([b, chs, o, so]) => {
    ['ws', 'sse', 'longpoll', 'poll'].forEach(function (tr) {
      window.mk(tr, b, chs, Object.assign({ transports: [tr] }, o), so);
    });
  }, [base, channels, opts, subOpts || {}]);
  await L.waitFor(async () => {
    for (const tr of T) if ((await L.rec(page, tr)).readyState !== 'open') return false;
    return true;
  }, 10000, 'all four clients to open');
}

async function allHave(page, counts, ms) {
  await L.waitFor(async () => {
    for (const tr of T) {
      const r = await L.rec(page, tr);
      if (r.readyState !== 'open') return false;
      for (const ch of Object.keys(counts)) if (r.msgs.filter((m) => m.ch === ch).length < counts[ch]) return false;
    }
    return true;
  }, ms || 10000, 'every client to have ' + JSON.stringify(counts)).catch(async (e) => {
    for (const tr of T) {
      const r = await L.rec(page, tr);
      console.log('# ' + tr + ': ' + r.msgs.map((m) => m.ch + '/' + m.epoch + ':' + m.id).join(',') +
        ' gaps ' + JSON.stringify(r.gaps) + ' state ' + r.readyState + ' events ' + r.events.join(' '));
    }
    throw e;
  });
}

// Every client has noticed that the network is away and is trying again
// (a poll may be between two requests when the connections are cut).
async function waitAway(page) {
  await L.waitFor(async () => {
    for (const tr of T) {
      const r = await L.rec(page, tr);
      if (r.readyState === 'open' || r.events.indexOf('reconnecting:' + tr) < 0) return false;
    }
    return true;
  }, 10000, 'every client to be reconnecting');
}

async function closeAll(page) {
  await page.evaluate(() => { Object.keys(window.R).forEach(function (k) { window.R[k].c.close(); }); window.R = {}; });
}

// What a client got on one channel, against what was published there:
// `old` acks (seen before the client went away) then `fresh` acks of the
// new incarnation, of which those after the gap's cursor must arrive.
// Counts lost, duplicated and reordered messages; all must be 0.
function checkChannel(r, ch, old, fresh, what) {
  const got = r.msgs.filter((m) => m.ch === ch).map((m) => m.epoch + ':' + m.id);
  const gaps = r.gaps.filter((g) => g.channel === ch);
  assert.strictEqual(gaps.length, 1, what + ': one gap on ' + ch + ', got ' + JSON.stringify(r.gaps));
  const g = gaps[0];
  const newEpoch = fresh[0].epoch;
  assert.notStrictEqual(newEpoch, old[0].epoch, what + ': the new incarnation has a new epoch');
  assert.strictEqual(g.epoch, newEpoch, what + ': the gap names the new epoch');
  assert.strictEqual(Number(g.last_seen), old.length, what + ': last_seen is the id the client had');
  const want = old.map((a) => a.epoch + ':' + a.id)
    .concat(fresh.filter((a) => a.id > Number(g.cursor)).map((a) => a.epoch + ':' + a.id));
  const seen = new Set();
  let dup = 0, reordered = 0, prev = null;
  for (const k of got) {
    if (seen.has(k)) dup++;
    seen.add(k);
    const [e, id] = k.split(':');
    if (prev && prev[0] === e && Number(id) <= prev[1]) reordered++;
    prev = [e, Number(id)];
  }
  const lost = want.filter((k) => !seen.has(k)).length;
  console.log('# ' + what + ' ' + ch + ': lost ' + lost + ', duplicated ' + dup + ', reordered ' + reordered +
    ', gap ' + JSON.stringify({ last_seen: g.last_seen, cursor: g.cursor, epoch: g.epoch }));
  assert.strictEqual(lost, 0, what + ': lost on ' + ch);
  assert.strictEqual(dup, 0, what + ': duplicated on ' + ch);
  assert.strictEqual(reordered, 0, what + ': reordered on ' + ch);
  assert.deepStrictEqual(got, want, what + ': messages on ' + ch);
  return g;
}

// In the page: fake EventSource and WebSocket classes whose events the
// test fires by hand, for the client's env option.
async function installFakes(page) {
  await page.evaluate(() => {
    window.FakeES = function (url) { this.url = url; this.ls = {}; window.FakeES.last = this; };
    window.FakeES.prototype.addEventListener = function (n, fn) { (this.ls[n] = this.ls[n] || []).push(fn); };
    window.FakeES.prototype.close = function () { this.closed = true; };
    // id: the event's lastEventId ('' when the event had no id: line)
    window.FakeES.prototype.fire = function (type, data, id) {
      (this.ls[type] || []).forEach((fn) => fn({ type: type, data: JSON.stringify(data), lastEventId: id || '' }));
    };
    window.FakeWS = function (url) { this.url = url; window.FakeWS.last = this; };
    window.FakeWS.prototype.send = function (text) { (this.sent = this.sent || []).push(JSON.parse(text)); };
    window.FakeWS.prototype.close = function () { this.closed = true; };
    window.FakeWS.prototype.fire = function (frame) { this.onmessage({ data: JSON.stringify(frame) }); };
    window.tick = () => new Promise((r) => setTimeout(r, 20));
    // a client on one channel of the fake transport, recording everything
    window.fakeClient = function (tr, name, since) {
      const env = { XMLHttpRequest: window.XMLHttpRequest };
      if (tr === 'sse') env.EventSource = window.FakeES; else env.WebSocket = window.FakeWS;
      const c = anypush.connect('http://127.0.0.1:1', { transports: [tr], env: env, openTimeout: 30000 });
      const ch = c.subscribe(name, since === undefined ? {} : { since: since });
      const r = { c: c, ch: ch, all: [], named: [], chGaps: [], gaps: [], opens: 0 };
      c.on('open', () => { r.opens++; });
      c.on('gap', (g) => { r.gaps.push(g); });
      ch.on('gap', (g) => { r.chGaps.push(g); });
      ch.on('*', (m) => { r.all.push(m.epoch + ':' + m.id); });
      ch.on('score', (d, m) => { r.named.push(m.epoch + ':' + m.id); });
      return r;
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
  let saved = null, rsOld = null, rsFresh = null;

  await t.test('gateway restart, 5 messages published before the clients are back: each transport reports a gap with the new epoch and gets all 5', async () => {
    const proxy = await new L.Proxy(gw.base).listen();
    await makeAll(page, proxy.base, 'rs', fast);
    // fewer before than after: with bare ids the resume at 3 skipped 1..3
    rsOld = await pubN(gw.base, 'rs', 3, 'old');
    await allHave(page, { rs: 3 });
    saved = (await L.rec(page, 'ws')).cursor;
    assert.strictEqual(saved, rsOld[0].epoch + ':3', 'the cursor carries the epoch');
    proxy.down = true;
    proxy.cut();
    await gw.restart();
    rsFresh = await pubN(gw.base, 'rs', 5, 'new');
    assert.deepStrictEqual(rsFresh.map((a) => a.id), range(1, 5), 'ids start again at 1');
    await waitAway(page);
    for (const tr of T) assert.strictEqual((await L.rec(page, tr)).msgs.length, 3, tr + ' got nothing while away');
    proxy.down = false;
    await allHave(page, { rs: 3 + 5 });
    await L.sleep(300); // anything extra would show up now
    for (const tr of T) {
      const r = await L.rec(page, tr);
      const g = checkChannel(r, 'rs', rsOld, rsFresh, tr);
      assert.strictEqual(Number(g.cursor), 0, tr + ': everything of the new epoch was kept');
      assert.strictEqual(r.cursor, rsFresh[0].epoch + ':5', tr + ': cursor');
      assert(r.opens >= 2 && r.events.indexOf('reconnecting:' + tr) >= 0, tr + ' reconnected: ' + r.events.join(' '));
      assert.strictEqual(r.transport, tr);
      assert.strictEqual(r.stats.bad, 0, tr + ': nothing malformed');
    }
    await closeAll(page);
  });

  await t.test('a cursor saved before the restart, given as since to a new client: gap with the new epoch, then all 5', async () => {
    assert(saved && rsFresh, 'needs the first test');
    await makeAll(page, gw.base, 'rs', fast, { since: saved });
    await allHave(page, { rs: 5 });
    await L.sleep(300);
    for (const tr of T) {
      const r = await L.rec(page, tr);
      assert.deepStrictEqual(r.gaps.map((g) => [g.last_seen, g.cursor, g.epoch]), [[3, 0, rsFresh[0].epoch]], tr + ' gap');
      assert.deepStrictEqual(r.msgs.map((m) => m.epoch + ':' + m.id), rsFresh.map((a) => a.epoch + ':' + a.id), tr);
      assert.strictEqual(r.cursor, rsFresh[0].epoch + ':5', tr + ': cursor');
    }
    await closeAll(page);
  });

  await t.test('two channels on one connection (composite cursor) across a restart: a gap on each, every message of both', async () => {
    const proxy = await new L.Proxy(gw.base).listen();
    await makeAll(page, proxy.base, ['ca', 'cb'], fast);
    const old = { ca: await pubN(gw.base, 'ca', 3, 'a'), cb: await pubN(gw.base, 'cb', 2, 'b') };
    await allHave(page, { ca: 3, cb: 2 });
    for (const tr of T) {
      assert.strictEqual((await L.rec(page, tr)).cursor, old.ca[0].epoch + ':3,' + old.cb[0].epoch + ':2', tr + ' composite cursor');
    }
    proxy.down = true;
    proxy.cut();
    await gw.restart();
    const fresh = { ca: [], cb: [] };
    for (let i = 1; i <= 5; i++) {
      fresh.ca.push(await pub(gw.base, 'ca', 'a' + i));
      if (i <= 4) fresh.cb.push(await pub(gw.base, 'cb', 'b' + i));
    }
    await waitAway(page);
    proxy.down = false;
    await allHave(page, { ca: 3 + 5, cb: 2 + 4 });
    await L.sleep(300);
    for (const tr of T) {
      const r = await L.rec(page, tr);
      for (const ch of ['ca', 'cb']) {
        const g = checkChannel(r, ch, old[ch], fresh[ch], tr);
        assert.strictEqual(Number(g.cursor), 0, tr + ': everything of the new epoch was kept on ' + ch);
      }
      assert.strictEqual(r.gaps.length, 2, tr + ': a gap per channel');
      assert.strictEqual(r.cursor, fresh.ca[0].epoch + ':5,' + fresh.cb[0].epoch + ':4', tr + ' composite cursor after');
      assert(r.opens >= 2, tr + ' reconnected');
    }
    await closeAll(page);
  });

  await t.test('a channel reclaimed while its clients were away (--history-age 1): its tomb keeps the epoch, ids go on, nothing lost', async () => {
    // pollers with a client id keep a channel for the presence window
    // another port, another origin than the page's: listed
    const gwr = await L.startGateway(['--history-age', '1', '--presence-window', '1', '--allow-origin', gw.base]);
    const proxy = await new L.Proxy(gwr.base).listen();
    await makeAll(page, proxy.base, 'rc', fast);
    const old = await pubN(gwr.base, 'rc', 3, 'old');
    await allHave(page, { rc: 3 });
    proxy.down = true;
    proxy.cut();
    // history ages out, nobody is attached: the channel is reclaimed
    // (the gauge counts live channels only), its tomb keeps epoch and id
    await L.waitFor(async () => /\nanypush_channels 0\n/.test((await L.httpReq('GET', gwr.base + '/metrics')).body),
      10000, 'the channel to be reclaimed');
    const info = JSON.parse((await L.httpReq('GET', gwr.base + '/channels/rc/info')).body);
    assert.strictEqual(info.epoch, old[0].epoch, 'the reclaimed channel keeps its epoch');
    assert.strictEqual(info.last_id, 3, 'and its last id');
    const fresh = await pubN(gwr.base, 'rc', 5, 'new');
    assert.deepStrictEqual(fresh.map((a) => a.id), range(4, 8), 'ids go on from 4');
    assert.ok(fresh.every((a) => a.epoch === old[0].epoch), 'in the same epoch');
    await waitAway(page);
    proxy.down = false;
    await L.waitFor(async () => {
      for (const tr of T) if ((await L.rec(page, tr)).readyState !== 'open') return false;
      return true;
    }, 10000, 'every client to be back');
    const after = await pubN(gwr.base, 'rc', 2, 'after');
    await L.waitFor(async () => {
      for (const tr of T) if (!(await L.rec(page, tr)).msgs.some((m) => m.data === 'after2')) return false;
      return true;
    }, 10000, 'every client to get the messages after its return');
    await L.sleep(300);
    for (const tr of T) {
      const r = await L.rec(page, tr);
      const got = r.msgs.filter((m) => m.ch === 'rc').map((m) => m.epoch + ':' + m.id);
      // the five may age out (1 s) before a client is back: then an
      // ordinary gap in the same epoch names what it missed
      const gaps = r.gaps.filter((g) => g.channel === 'rc');
      assert.ok(gaps.length <= 1, tr + ': at most one gap, got ' + JSON.stringify(r.gaps));
      const from = gaps.length ? Number(gaps[0].cursor) : 3;
      if (gaps.length) {
        assert.strictEqual(gaps[0].epoch, old[0].epoch, tr + ': the gap is in the same epoch');
        assert.strictEqual(Number(gaps[0].last_seen), 3, tr + ': from the id the client had');
      }
      const want = old.concat(fresh.filter((a) => a.id > from), after).map((a) => a.epoch + ':' + a.id);
      console.log('# ' + tr + ': ' + got.length + ' messages, gaps ' + JSON.stringify(gaps));
      assert.deepStrictEqual(got, want, tr + ': every message once, in order, or a gap that names it');
      assert.strictEqual(r.cursor, old[0].epoch + ':10', tr + ': cursor');
    }
    await closeAll(page);
  });

  await t.test('SSE: only gateway events of the gateway\'s shapes move the state; a forged gap or welcome is a message', async () => {
    const out = await page.evaluate(async () => {
      const r = window.fakeClient('sse', 'f');
      await window.tick();
      const es = window.FakeES.last;
      const msg = (ev, epoch, id, data) => ({ type: 'message', channel: 'f', event: ev, data: data === undefined ? 1 : data, ts: 1, epoch: epoch, id: id });
      const snap = (k) => { r[k] = { cursor: r.ch.cursor, bad: r.c.stats.bad, dup: r.c.stats.duplicates, id: r.c.id, opens: r.opens }; };
      es.fire('welcome', { client: 'me', heartbeat: 15, cursor: 'abc:3' }, 'abc:3');
      snap('welcome');
      // a publish named 'welcome' or 'gap' is a message envelope
      es.fire('welcome', msg('welcome', 'abc', 4, { client: 'evil', heartbeat: 1, cursor: 'zzz:99' }), 'abc:4');
      es.fire('gap', msg('gap', 'abc', 5, { channel: 'f', last_seen: 4, cursor: 0, epoch: 'evil' }), 'abc:5');
      snap('forged');
      // malformed: no id: line, so only the data could move the state
      es.fire('gap', { channel: 'f', last_seen: 5, cursor: 0 }, '');
      es.fire('score', msg('score', 7, 6), '');
      es.fire('score', msg('score', undefined, 6), '');
      es.fire('score', msg('score', 'ABC', 6), '');
      es.fire('score', msg('score', '', 6), '');
      es.fire('score', msg('score', 'abc', '6x'), '');
      es.fire('score', msg('score', 'abc', [6]), '');
      es.fire('score', msg('score', 'abc', 0), '');
      snap('bad');
      es.fire('score', msg('score', 'abc', 6), 'abc:6');
      es.fire('score', msg('score', 'abc', 6), 'abc:6');
      snap('dup');
      es.fire('gap', { channel: 'f', last_seen: 6, cursor: 2, epoch: 'def' }, 'def:2');
      snap('gap');
      es.fire('score', msg('score', 'def', 2), 'def:2');
      es.fire('score', msg('score', 'def', 3), 'def:3');
      // an id-only block (own broadcast left out) shows up as the next
      // event's id: line; a ping carries it here
      es.fire('ping', {}, 'def:4');
      es.fire('score', msg('score', 'def', 4), 'def:4');
      snap('end');
      r.c.close();
      return { r: { welcome: r.welcome, forged: r.forged, bad: r.bad, dup: r.dup, gap: r.gap, end: r.end },
        all: r.all, named: r.named, gaps: r.gaps, chGaps: r.chGaps, query: r.c._query('sse') };
    });
    assert.deepStrictEqual(out.r.welcome, { cursor: 'abc:3', bad: 0, dup: 0, id: 'me', opens: 1 }, 'welcome');
    assert.deepStrictEqual(out.r.forged, { cursor: 'abc:5', bad: 0, dup: 0, id: 'me', opens: 1 }, 'forged welcome/gap are messages');
    assert.deepStrictEqual(out.r.bad, { cursor: 'abc:5', bad: 8, dup: 0, id: 'me', opens: 1 }, 'malformed ones are counted and ignored');
    assert.deepStrictEqual(out.r.dup, { cursor: 'abc:6', bad: 8, dup: 1, id: 'me', opens: 1 }, 'a duplicate within the epoch');
    assert.deepStrictEqual(out.r.gap, { cursor: 'def:2', bad: 8, dup: 1, id: 'me', opens: 1 }, 'the gap moves to its epoch');
    assert.deepStrictEqual(out.r.end, { cursor: 'def:4', bad: 8, dup: 3, id: 'me', opens: 1 }, 'the id: line feeds the cursor');
    assert.deepStrictEqual(out.all, ['abc:4', 'abc:5', 'abc:6', 'def:3'], 'every message once');
    assert.deepStrictEqual(out.named, ['abc:6', 'def:3']);
    assert.deepStrictEqual(out.gaps, [{ channel: 'f', last_seen: 6, cursor: 2, epoch: 'def', transport: 'sse' }], 'client gaps');
    assert.deepStrictEqual(out.chGaps, out.gaps, 'channel gaps');
    assert(/[?&]since=def:4(&|$)/.test(out.query), 'reconnects with the epoch cursor: ' + out.query);
  });

  await t.test('WebSocket: malformed frames are ignored, a cursor frame moves the cursor, "gap" publishes are not gaps, own ids count in their epoch; since is validated', async () => {
    const out = await page.evaluate(async () => {
      const r = window.fakeClient('ws', 'w', 'abc:1');
      await window.tick();
      const ws = window.FakeWS.last;
      const msg = (ev, epoch, id) => ({ type: 'message', channel: 'w', event: ev, data: 1, ts: 1, epoch: epoch, id: id });
      // /ws: the welcome, then the subscribe it brought, acknowledged
      ws.fire({ type: 'welcome', client: 'me', heartbeat: 15 });
      const sub = ws.sent[0];
      ws.fire({ type: 'ack', ref: sub.ref, cursor: 'abc:1' });
      const url = ws.url + ' ' + JSON.stringify(sub);
      ws.fire(msg('score', null, 2));
      ws.fire({ type: 'gap', channel: 'w', cursor: 0, epoch: 'n3w' });
      ws.fire({ type: 'cursor', channel: 'w', cursor: 9, epoch: 5 });
      const bad = { cursor: r.ch.cursor, bad: r.c.stats.bad };
      ws.fire({ type: 'gap', channel: 'w', last_seen: 1, cursor: 0, epoch: 'n3w' });
      ws.fire(msg('score', 'n3w', 1));
      ws.fire({ type: 'cursor', channel: 'w', cursor: 2, epoch: 'n3w' });
      ws.fire(msg('score', 'n3w', 2));
      ws.fire(msg('gap', 'n3w', 3));
      const end = { cursor: r.ch.cursor, bad: r.c.stats.bad, dup: r.c.stats.duplicates, client: r.c.cursor(), epoch: r.ch.epoch, id: r.ch.id };
      // own broadcasts, as their publish acks report them (id, epoch): the
      // cursor steps over them within their epoch only
      r.c._ownSent('w', 5, 'n3w');
      r.c._ownSent('w', 4, 'old1');   // another incarnation: ignored
      const own1 = r.ch.cursor;       // 4 is not ours: still n3w:3
      ws.fire(msg('score', 'n3w', 4));
      const own2 = r.ch.cursor;       // 4 arrived, 5 is ours: n3w:5
      r.c._ownSent('w', 7, 'n3w');
      ws.fire({ type: 'gap', channel: 'w', last_seen: 5, cursor: 6, epoch: 'nu2' });
      ws.fire(msg('score', 'nu2', 7)); // not ours: 7 of n3w was forgotten
      const own = [own1, own2, r.ch.cursor];
      const c2 = anypush.connect('http://127.0.0.1:1');
      const verdict = {};
      ['abc:17', '17', 17, '0', 'zzzzzzzzzzzzz:18446744073709551615', 'ABC:1', 'abc:', ':5', 'abc:1:2', '0:5', '-1', 'abc:1x', 'abcdefghijklmn:1', ''].forEach(function (s) {
        try { c2.subscribe('v' + Object.keys(verdict).length, { since: s }); verdict[s] = 'ok'; } catch (e) { verdict[s] = 'throws'; }
      });
      c2.close();
      r.c.close();
      return { url: url, bad: bad, end: end, own: own, all: r.all, named: r.named, gaps: r.gaps, chGaps: r.chGaps, verdict: verdict };
    });
    assert(/\/ws\?client=[A-Za-z0-9_-]+ \{"op":"subscribe","channel":"w","since":"abc:1","ref":1\}$/.test(out.url),
      'subscribes on /ws with the since given: ' + out.url);
    assert.deepStrictEqual(out.bad, { cursor: 'abc:1', bad: 3 }, 'malformed frames are counted and ignored');
    assert.deepStrictEqual(out.end, { cursor: 'n3w:3', bad: 3, dup: 1, client: 'n3w:3', epoch: 'n3w', id: '3' });
    assert.deepStrictEqual(out.own, ['n3w:3', 'n3w:5', 'nu2:7'], 'own broadcasts skipped within their epoch');
    assert.deepStrictEqual(out.all, ['n3w:1', 'n3w:3', 'n3w:4', 'nu2:7']);
    assert.deepStrictEqual(out.named, ['n3w:1', 'n3w:4', 'nu2:7'], 'a message named gap reaches only *');
    assert.deepStrictEqual(out.gaps, [{ channel: 'w', last_seen: 1, cursor: 0, epoch: 'n3w', transport: 'ws' },
      { channel: 'w', last_seen: 5, cursor: 6, epoch: 'nu2', transport: 'ws' }]);
    assert.deepStrictEqual(out.chGaps, out.gaps, 'the channel\'s gap handlers saw only the gateway\'s gap');
    assert.deepStrictEqual(out.verdict, {
      'abc:17': 'ok', 17: 'ok', 0: 'ok', 'zzzzzzzzzzzzz:18446744073709551615': 'ok',
      'ABC:1': 'throws', 'abc:': 'throws', ':5': 'throws', 'abc:1:2': 'throws', '0:5': 'throws',
      '-1': 'throws', 'abc:1x': 'throws', 'abcdefghijklmn:1': 'throws', '': 'throws',
    }, 'since validation');
  });

  await t.done();
})();
