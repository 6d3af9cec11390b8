'use strict';
// The chat example (web/examples/chat.html) with several people in
// separate browser contexts, each on its own transport: broadcast reaches
// everyone but the sender exactly once, acks carry increasing ids,
// presence join/leave lines, two rooms on one connection stay apart, the
// transport picker keeps the client id. Then ch.broadcast() at the API
// level, also after a fallback. Screenshots in test-artifacts/
// (chat-1280.png, chat-phone.png).
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const L = require('./lib');

const t = L.tap(9, 80000);
const PEOPLE = [
  { nick: 'alice', transport: 'sse' },
  { nick: 'bob', transport: 'poll' },
  { nick: 'carol', transport: 'ws' },
  { nick: 'dave', transport: 'longpoll' },
];

(async () => {
  let gw, browser;
  const pages = {};           // nick -> {page, context}
  const snap = (nick) => pages[nick].page.evaluate(() => window.chat.snapshot());
  const fromOthers = (s, room) => s.rooms[room].filter((m) => m.kind === 'msg' && !m.mine);
  const mine = (s, room) => s.rooms[room].filter((m) => m.kind === 'msg' && m.mine);
  const lines = (s, room, kind) => s.rooms[room].filter((m) => m.kind === kind);

  async function open(p, viewport) {
    const context = await browser.newContext({ viewport: viewport || { width: 1000, height: 700 } });
    L.onCleanup(() => context.close());
    const page = await context.newPage();
    page.on('pageerror', (e) => console.log('# page error (' + p.nick + '): ' + e.message));
    if (process.env.ANYPUSH_CONSOLE) page.on('console', (m) => console.log('# console (' + p.nick + '): ' + m.text()));
    await page.goto(gw.base + '/examples/chat.html?nick=' + p.nick + '&transport=' + p.transport +
      '&rooms=lobby,dev&room=lobby&pollInterval=250');
    pages[p.nick] = { page, context };
    await L.waitFor(async () => {
      const s = await snap(p.nick);
      return s.state === 'open' && s.transport === p.transport;
    }, 20000, p.nick + ' to be open on ' + p.transport);
    return page;
  }

  async function say(nick, text) {
    const page = pages[nick].page;
    await page.fill('#text', text);
    await page.press('#text', 'Enter');
  }

  async function joined(observer, who, room) {
    await L.waitFor(async () => lines(await snap(observer), room, 'join').some((l) => l.client.indexOf(who + '-') === 0),
      15000, observer + ' to see ' + who + ' join ' + room);
  }

  try {
    fs.mkdirSync(L.ARTIFACTS, { recursive: true });
    // pollers leave 2 s after their last poll (the default is 30)
    gw = await L.startGateway(['--presence-window', '2']);
    browser = await L.launch();
  } catch (e) {
    console.log('# setup failed: ' + (e && e.stack || e));
  }

  await t.test('chat page served at /examples/chat.html; each person has both rooms on one connection', async () => {
    const r = await L.httpReq('GET', gw.base + '/examples/chat.html');
    assert.strictEqual(r.status, 200);
    assert(/text\/html/.test(r.headers['content-type']), 'content type ' + r.headers['content-type']);
    await open(PEOPLE[0]);
    await open(PEOPLE[1]);
    for (const nick of ['alice', 'bob']) {
      const c = await pages[nick].page.evaluate(() => {
        const c = window.chat.client();
        return { channels: c.channelList, requests: c.stats.requests, cursor: c.cursor(), id: c.id };
      });
      assert.deepStrictEqual(c.channels, ['chat:lobby', 'chat:dev'], nick + ' channels');
      assert(/^[0-9a-z]{1,13}:[0-9]+,[0-9a-z]{1,13}:[0-9]+$/.test(c.cursor), nick + ' composite cursor ' + c.cursor);
      assert(c.id.indexOf(nick + '-') === 0, 'client id carries the nick: ' + c.id);
      const shown = await pages[nick].page.textContent('#clientid');
      assert.strictEqual(shown, c.id, 'client id shown');
    }
    const sse = await pages.alice.page.evaluate(() => window.chat.client().stats.requests);
    assert.strictEqual(sse, 1, 'sse: one request for both rooms');
    assert.strictEqual(await pages.alice.page.textContent('#transport'), 'sse');
  });

  await t.test('presence: a newly arrived peer is announced (in every room) to those already there', async () => {
    await open(PEOPLE[2]);
    for (const obs of ['alice', 'bob']) {
      await joined(obs, 'carol', 'lobby');
      await joined(obs, 'carol', 'dev');
    }
    const j = lines(await snap('alice'), 'lobby', 'join').find((l) => l.client.indexOf('carol-') === 0);
    assert.strictEqual(j.transport, 'ws');
    await open(PEOPLE[3]);
    for (const obs of ['alice', 'bob', 'carol']) await joined(obs, 'dave', 'lobby');
    const shown = await pages.bob.page.$$eval('#logs .log[data-room=lobby] li.sys.join', (ls) => ls.map((l) => l.textContent));
    assert(shown.some((l) => /dave joined via longpoll/.test(l)), 'join lines: ' + JSON.stringify(shown));
    // nobody sees their own join
    for (const p of PEOPLE) {
      const s = await snap(p.nick);
      assert(!lines(s, 'lobby', 'join').some((l) => l.client === s.id), p.nick + ' sees its own join');
    }
  });

  const K = 3;
  const sentIds = {};
  await t.test('broadcast: each message reaches every other person exactly once, the sender only by its ack', async () => {
    // everyone talks at once
    await Promise.all(PEOPLE.map(async (p) => {
      for (let i = 1; i <= K; i++) await say(p.nick, p.nick + ' says ' + i + ' ✓');
    }));
    // acks: every own message ends "sent" with an id, ids increasing
    for (const p of PEOPLE) {
      const s = await L.waitFor(async () => {
        const s = await snap(p.nick);
        return mine(s, 'lobby').length === K && mine(s, 'lobby').every((m) => m.status === 'sent') ? s : null;
      }, 15000, p.nick + "'s messages to be acknowledged");
      const ids = mine(s, 'lobby').map((m) => m.id);
      for (let i = 1; i < ids.length; i++) assert(ids[i] > ids[i - 1], p.nick + ' ack ids increase: ' + ids);
      assert.deepStrictEqual(mine(s, 'lobby').map((m) => m.text), [1, 2, 3].map((i) => p.nick + ' says ' + i + ' ✓'));
      sentIds[p.nick] = ids;
      const meta = await pages[p.nick].page.evaluate(() => {
        const all = document.querySelectorAll('#logs .log[data-room=lobby] li.msg.mine .meta');
        return all[all.length - 1].textContent;
      });
      assert(meta.indexOf('✓ #' + ids[K - 1]) >= 0, 'ack shown: ' + meta);
    }
    const total = PEOPLE.length * K;
    for (const p of PEOPLE) {
      await L.waitFor(async () => fromOthers(await snap(p.nick), 'lobby').length >= total - K, 15000,
        p.nick + ' to get ' + (total - K) + ' messages');
    }
    await L.sleep(800); // a duplicate or an own copy would show up now
    for (const p of PEOPLE) {
      const s = await snap(p.nick);
      const got = fromOthers(s, 'lobby');
      assert.strictEqual(got.length, total - K, p.nick + ' got ' + got.length);
      assert.strictEqual(s.own, 0, p.nick + ' received its own message');
      assert(!got.some((m) => m.nick === p.nick || m.from === s.id), p.nick + ' got its own copy');
      for (const q of PEOPLE) {
        if (q === p) continue;
        const theirs = got.filter((m) => m.nick === q.nick);
        assert.deepStrictEqual(theirs.map((m) => m.text), [1, 2, 3].map((i) => q.nick + ' says ' + i + ' ✓'),
          p.nick + ' got ' + q.nick + "'s, once each, in order");
        assert.deepStrictEqual(theirs.map((m) => m.id), sentIds[q.nick], 'ids are the acked ones');
      }
      assert.strictEqual(fromOthers(s, 'dev').length, 0, p.nick + ': nothing in dev');
    }
  });

  await t.test('two rooms on one connection stay separate; unread badge on the other room', async () => {
    await pages.alice.page.evaluate(() => window.chat.show('dev'));
    await say('alice', 'only in dev');
    for (const p of PEOPLE.slice(1)) {
      await L.waitFor(async () => fromOthers(await snap(p.nick), 'dev').length === 1, 10000, p.nick + ' to get the dev message');
      const s = await snap(p.nick);
      assert.strictEqual(fromOthers(s, 'dev')[0].text, 'only in dev');
      assert.strictEqual(fromOthers(s, 'lobby').length, PEOPLE.length * K - K, p.nick + ': lobby unchanged');
    }
    assert.strictEqual(await pages.bob.page.textContent('#rooms button[data-room=dev] .badge'), '1', 'bob: dev unread');
    assert.strictEqual(await pages.bob.page.textContent('#rooms button[data-room=lobby] .badge'), '', 'bob: lobby read');
    await pages.alice.page.evaluate(() => window.chat.show('lobby'));
    // a room added on the fly joins the running connection
    await pages.bob.page.evaluate(() => window.chat.addRoom('extra'));
    await L.waitFor(async () => (await pages.bob.page.evaluate(() => window.chat.client().channelList.length)) === 3 &&
      (await snap('bob')).state === 'open', 10000, 'bob on three rooms');
    await pages.bob.page.evaluate(() => window.chat.show('lobby'));
    await say('carol', 'back in the lobby');
    await L.waitFor(async () => fromOthers(await snap('bob'), 'lobby').some((m) => m.text === 'back in the lobby'),
      10000, 'bob to get the lobby message after adding a room');
  });

  await t.test('presence: leave lines when a ws person closes the tab and when a poller stops polling', async () => {
    await pages.carol.context.close();
    await L.waitFor(async () => lines(await snap('alice'), 'lobby', 'leave').some((l) => l.client.indexOf('carol-') === 0),
      10000, 'alice to see carol leave');
    await pages.dave.context.close();   // long poller: gone after the presence window
    await L.waitFor(async () => lines(await snap('alice'), 'lobby', 'leave').some((l) => l.client.indexOf('dave-') === 0),
      15000, 'alice to see dave leave');
    const text = await pages.alice.page.textContent('#logs .log[data-room=lobby]');
    assert(/carol left/.test(text) && /dave left/.test(text), 'leave lines shown');
    delete pages.carol; delete pages.dave;
  });

  await t.test('transport picker: recreates the client on another transport, same id, cursors carried over', async () => {
    const before = await snap('alice');
    // messages published while alice switches are not lost
    await pages.alice.page.click('#transports button[data-transport=longpoll]');
    await say('bob', 'during the switch');
    await L.waitFor(async () => {
      const s = await snap('alice');
      return s.state === 'open' && s.transport === 'longpoll';
    }, 15000, 'alice on longpoll');
    const after = await snap('alice');
    assert.strictEqual(after.id, before.id, 'same client id');
    try {
      await L.waitFor(async () => fromOthers(await snap('alice'), 'lobby').some((m) => m.text === 'during the switch'),
        10000, 'alice to get the message sent during the switch');
    } catch (e) {
      console.log('# alice: ' + JSON.stringify(await snap('alice')));
      console.log('# bob: ' + JSON.stringify(await snap('bob')));
      console.log('# alice client: ' + JSON.stringify(await pages.alice.page.evaluate(() => {
        const c = window.chat.client(); return { cursor: c.cursor(), stats: c.stats, failed: c.failed };
      })));
      console.log('# poll: ' + (await L.httpReq('GET', gw.base + '/channels/chat:lobby?transport=poll&since=0')).body);
      throw e;
    }
    await say('alice', 'now on long polling');
    await L.waitFor(async () => fromOthers(await snap('bob'), 'lobby').some((m) => m.text === 'now on long polling'),
      10000, 'bob to get it');
    await L.sleep(600);
    const s = await snap('alice');
    assert.strictEqual(s.own, 0, 'alice never gets her own copy');
    assert.strictEqual(fromOthers(s, 'lobby').filter((m) => m.text === 'during the switch').length, 1, 'once');
    const m = mine(s, 'lobby').pop();
    assert.strictEqual(m.status, 'sent');
    assert(m.id > sentIds.alice[K - 1], 'ack id still increasing');
    // screenshots: desktop and phone
    await pages.bob.page.evaluate(() => window.chat.show('lobby'));
    await pages.bob.page.fill('#text', '');
    await L.sleep(300);
    await pages.bob.page.screenshot({ path: path.join(L.ARTIFACTS, 'chat-1280.png') });
    await pages.alice.page.setViewportSize({ width: 390, height: 760 });
    await L.sleep(300);
    const w = await pages.alice.page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth,
    }));
    assert(w.scroll <= w.client, 'phone: no horizontal scroll ' + JSON.stringify(w));
    await pages.alice.page.screenshot({ path: path.join(L.ARTIFACTS, 'chat-phone.png') });
  });

  await t.test('API: ch.broadcast from an SSE client reaches ws and poll clients, not the sender; publish does', async () => {
    for (const p of Object.values(pages)) await p.context.close();
    const { page } = await L.clientPage(browser, gw.base);
    await L.installRecorder(page);
    const fast = { pollInterval: 200 };
    await page.evaluate(([b, o]) => {
      window.mk('sender', b, 'bc', Object.assign({ transports: ['sse'] }, o));
      window.mk('ws', b, 'bc', Object.assign({ transports: ['ws'] }, o));
      window.mk('poll', b, 'bc', Object.assign({ transports: ['poll'] }, o));
    }, [gw.base, fast]);
    await L.waitFor(async () => {
      for (const k of ['sender', 'ws', 'poll']) if ((await L.rec(page, k)).readyState !== 'open') return false;
      return true;
    }, 15000, 'three clients open');
    const acks = await page.evaluate(() => new Promise((resolve) => {
      const ch = window.R.sender.chs.bc, out = [];
      let n = 0;
      for (let i = 1; i <= 5; i++) {
        // both signatures: (event, data, ack) and (event, data, opts, ack)
        const ack = function (err, id) { out[i - 1] = err ? 'err:' + err.code : id; if (++n === 5) resolve(out); };
        if (i % 2) ch.broadcast('note', { i: i }, ack); else ch.broadcast('note', { i: i }, { timeout: 5000 }, ack);
      }
    }));
    assert(acks.every((x) => typeof x === 'number'), 'acks: ' + acks);
    const sorted = acks.slice().sort((a, b) => a - b);
    for (const k of ['ws', 'poll']) {
      await L.waitFor(async () => (await L.rec(page, k)).msgs.length >= 5, 10000, k + ' to get 5');
    }
    await L.sleep(800);
    const senderId = (await L.rec(page, 'sender')).id;
    for (const k of ['ws', 'poll']) {
      const r = await L.rec(page, k);
      assert.deepStrictEqual(r.msgs.map((m) => m.id), sorted, k + ' got each broadcast once');
      assert.deepStrictEqual(r.msgs.map((m) => m.data.i).sort(), [1, 2, 3, 4, 5], k + ' data');
    }
    assert.strictEqual((await L.rec(page, 'sender')).msgs.length, 0, 'the sender got none of its broadcasts');
    // control: a plain publish does come back to the sender, with from = its id
    const back = await page.evaluate(() => new Promise((resolve) => {
      window.R.sender.chs.bc.on('*', function (m) { resolve({ from: m.from, id: m.id }); });
      window.R.sender.c.publish('bc', 'note', 'plain');
    }));
    assert.strictEqual(back.from, senderId, 'from is the sender id');
    await L.waitFor(async () => (await L.rec(page, 'poll')).msgs.length === 6, 10000, 'poll to get the plain publish');
    const last = (await L.rec(page, 'ws')).msgs;
    assert.strictEqual(last.length, 6, 'ws got the plain publish');
    await page.evaluate(() => { Object.keys(window.R).forEach(function (k) { window.R[k].c.close(); }); });
    L.onCleanup(() => page.context().close());
  });

  await t.test('API: broadcast after a fallback (ws disabled, client falls back to SSE) still excludes the sender', async () => {
    const gw2 = await L.startGateway(['--transports', 'sse,longpoll,poll']);
    const { page } = await L.clientPage(browser, gw2.base);
    await L.installRecorder(page);
    await page.evaluate((b) => {
      window.mk('auto', b, 'fb', { openTimeout: 4000, reconnectDelay: 200 });
      window.mk('lp', b, 'fb', { transports: ['longpoll'] });
    }, gw2.base);
    await L.waitFor(async () => {
      const a = await L.rec(page, 'auto');
      return a.readyState === 'open' && (await L.rec(page, 'lp')).readyState === 'open' ? a : null;
    }, 20000, 'auto (fallen back) and longpoll clients open');
    const a = await L.rec(page, 'auto');
    assert.strictEqual(a.transport, 'sse', 'fell back to sse: ' + JSON.stringify(a.transports));
    assert(a.failed.ws, 'ws left for good: ' + JSON.stringify(a.failed));
    const id = await page.evaluate(() => new Promise((resolve) => {
      window.R.auto.c.broadcast('fb', 'note', 'after fallback', function (err, id) { resolve(err ? err.code : id); });
    }));
    assert.strictEqual(typeof id, 'number', 'ack ' + id);
    await L.waitFor(async () => (await L.rec(page, 'lp')).msgs.length === 1, 10000, 'longpoll to get it');
    await L.sleep(600);
    assert.strictEqual((await L.rec(page, 'auto')).msgs.length, 0, 'the fallen-back sender got its own broadcast');
    const r = await L.httpReq('GET', gw2.base + '/channels/fb?transport=poll&since=0');
    const env = JSON.parse(r.body).messages.find((m) => m.event === 'note');
    assert.strictEqual(env.from, a.id, 'from is the client id');
  });

  await t.test('API: own broadcasts that left the history cause no gap (sse reconnecting, poll)', async () => {
    // messages live 2 s here; the senders' own broadcasts never reach them,
    // so only the acks can tell them their cursor may move past them
    const gw3 = await L.startGateway(['--history-age', '2']);
    const proxy = await new L.Proxy(gw3.base).listen();
    const { page } = await L.clientPage(browser, gw3.base);
    await L.installRecorder(page);
    await page.evaluate(([b, o]) => {
      window.mk('sse', b, ['quiet', 'other'], Object.assign({ transports: ['sse'] }, o));
      window.mk('poll', b, ['quiet', 'other'], Object.assign({ transports: ['poll'] }, o));
    }, [proxy.base, { pollInterval: 200, reconnectDelay: 100, reconnectDelayMax: 300 }]);
    await L.waitFor(async () => (await L.rec(page, 'sse')).readyState === 'open' &&
      (await L.rec(page, 'poll')).readyState === 'open', 15000, 'clients open');
    await L.publish(gw3.base, 'quiet', 'note', 'before');
    await L.publish(gw3.base, 'other', 'note', 'before');
    await L.waitFor(async () => (await L.rec(page, 'sse')).msgs.length === 2 &&
      (await L.rec(page, 'poll')).msgs.length === 2, 10000, 'both to get the first messages');
    // on each channel, one sender's own broadcast is the last message
    const acks = await page.evaluate(async () => {
      const out = [];
      for (const [k, ch] of [['poll', 'quiet'], ['sse', 'quiet'], ['sse', 'other'], ['poll', 'other']]) {
        out.push(await new Promise((resolve) => {
          window.R[k].chs[ch].broadcast('note', 'mine ' + k, function (err, id) { resolve(err ? err.code : id); });
        }));
      }
      return out;
    });
    assert(acks.every((x) => typeof x === 'number'), 'acks ' + acks);
    await L.waitFor(async () => (await L.rec(page, 'sse')).msgs.length === 4 &&
      (await L.rec(page, 'poll')).msgs.length === 4, 10000, 'each to get the other\'s broadcasts');
    const cur = await page.evaluate(() => [window.R.sse.c.cursor(), window.R.poll.c.cursor()]);
    // everything leaves the history (--history-age 2): waited for, not slept for
    await L.waitFor(async () => {
      for (const ch of ['quiet', 'other']) {
        const r = await L.httpReq('GET', gw3.base + '/channels/' + ch + '/info');
        if (JSON.parse(r.body).retained !== 0) return false;
      }
      return true;
    }, 10000, 'the messages of quiet and other to age out of history');
    const opens = (await L.rec(page, 'sse')).opens;
    proxy.cut();                    // the sse client reconnects with its cursor
    // its next open, waited for (a fixed sleep hoped it had left 'open')
    await L.waitFor(async () => {
      const r = await L.rec(page, 'sse');
      return r.opens > opens && r.readyState === 'open';
    }, 10000, 'sse open again');
    await L.publish(gw3.base, 'quiet', 'note', 'after');
    await L.waitFor(async () => (await L.rec(page, 'sse')).msgs.length === 5 &&
      (await L.rec(page, 'poll')).msgs.length === 5, 10000, 'both to get the last message');
    for (const k of ['sse', 'poll']) {
      const r = await L.rec(page, k);
      assert.deepStrictEqual(r.gaps, [], k + ': no gap (cursors ' + JSON.stringify(cur) + ')');
      assert.strictEqual(r.msgs.filter((m) => m.data === 'mine ' + k).length, 0, k + ' got its own broadcast');
    }
    assert((await L.rec(page, 'sse')).opens >= 2, 'the sse client did reconnect');
    await page.evaluate(() => { Object.keys(window.R).forEach(function (k) { window.R[k].c.close(); }); });
  });

  await t.done();
})();
