// Uses every part of web/anypush.d.ts the way an app would; t_types.js
// checks it with `tsc --noEmit --strict`. It is never run.
import anypush = require('anypush-client');

interface Chat { nick: string; text: string; }

const c: anypush.Client = anypush.connect('http://localhost:8080', {
  transports: ['ws', 'sse', 'longpoll'],
  presence: true,
  clientId: 'ann-1',
  ackTimeout: 5000,
  upgradeDelay: 60000,
});
const pinned = new anypush.Client('', { transports: 'poll', env: { XMLHttpRequest: {} } });
const tabs = anypush.connect('', { transports: 'sse', shared: true, worker: '/anypush.js' });

const ch: anypush.Channel = c.subscribe('chat:lobby', { since: 'k3x9a2bq:17' });
ch.on<Chat>('chat', (data, msg) => {
  const line: string = data.nick + ': ' + data.text + ' #' + String(msg.id) + '@' + msg.epoch;
  void line;
});
ch.on('*', (msg) => { const e: string = msg.event; void e; });
ch.on('join', (who) => { const t: anypush.TransportName = who.transport; void t; });
ch.on('gap', (info) => { const at: string | number = info.cursor; void at; });
ch.once('leave', (who, msg) => { void who.client; void msg.channel; });
ch.on('subscribed', (info) => { const r: boolean | undefined = info.recovered; void r; });
ch.on('subscribing', (info) => { void info.closeCode; void info.code; });
ch.once('unsubscribed', (info) => { void info.reason; });
const sub: anypush.SubscriptionState = ch.state;
void sub;
ch.off('chat');

ch.broadcast('chat', { nick: 'ann', text: 'hi' }, (err, id, epoch) => {
  if (err) { const code: string = err.code; void code; return; }
  void id; void epoch;
});
ch.publish('chat', { nick: 'ann', text: 'again' }, (err, id, epoch, info) => {
  if (!err && info) { const again: boolean = info.replayed; void again; void info.key; void info.tries; }
});
c.publish('news', null, 'plain text', { text: true, timeout: 2000 });
c.publish('news', 'bin', new ArrayBuffer(4), null, (err) => { void err; });

c.on('open', (e) => { const r: boolean = e.reconnect; void r; void e.cursor; });
c.on('close', (e) => { void e.closeCode; void e.code; void e.status; });
c.on('transport', (name, previous) => { void name; void previous; });
c.on('reconnecting', (e) => { void (e.attempt + e.delay); void e.offline; });
c.on('message', (msg) => { void msg.data; });
c.on('error', (e) => { void e.message; });

const saved: string = c.cursor();
const state: anypush.ReadyState = c.readyState;
const n: number = c.stats.messages + c.stats.gaps;
const ok: boolean = anypush.supported('sse');
const v: string = anypush.version;
const all: anypush.TransportName[] = anypush.transports;
void saved; void state; void n; void ok; void v; void all; void pinned; void tabs;
ch.unsubscribe();
c.close();
c.connect().subscribe('again');
