/*!
 * anypush.js: the browser client of the anypush gateway.
 *
 * One file, ES5, no build step, no dependencies. Loads with a <script> tag
 * (global `anypush`), as a CommonJS module or as an AMD module.
 *
 * API
 *
 *   var c = anypush.connect(url, options);
 *     url: the gateway ('http://host:8080'); '' means this page's origin.
 *     options (all optional):
 *       transports   ['ws', 'sse', 'longpoll', 'poll'], the order to try;
 *                    one name pins the client to that transport
 *       presence     true: announce this client on every channel it
 *                    subscribes to (?presence=1): the gateway publishes
 *                    'join' / 'leave' messages {client, transport}
 *       clientId     this client's id, [A-Za-z0-9_-]{1,64}; default: made
 *                    up here (22 random characters), or with a token the
 *                    gateway's (the token's sub)
 *       token        a JWT for a gateway with --token-secret-file
 *                    (docs/security.md): a string, or function (cb) that
 *                    calls cb(err, token) with a fresh one; asked before
 *                    every (re)connect, sent as ?token= and, on HTTP
 *                    publishes and /info lookups, as Authorization:
 *                    Bearer. A failure is an
 *                    'error' with code 'token_failed', then a retry.
 *                    shared is ignored with a token
 *       ackTimeout   ms a publish may take, its retries included, from
 *                    its first sending to its ack (10000)
 *       upgradeDelay ms on a fallback transport before the better ones are
 *                    tried again (30000; doubles while they still fail,
 *                    up to 16 times; back to it once on the best one)
 *       shared       true: one connection per origin for every tab of the
 *                    browser (below); ignored with presence or env
 *       worker       the SharedWorker script for shared: the URL of this
 *                    file (default: its <script>'s src, when the file is
 *                    named anypush*.js)
 *       openTimeout, pollInterval, longpollTimeout, requestTimeout,
 *       reconnectDelay, reconnectDelayMax, heartbeat, env: see DEFAULTS
 *
 *   c.id           the client id. Sent as ?client= on every transport (and
 *                  again after every reconnect and fallback) and as
 *                  X-Client-Id on publishes: it is `from` of what this
 *                  client publishes, and what broadcast() excludes.
 *   c.transport    the transport in use: 'ws', 'sse', 'longpoll', 'poll'
 *   c.readyState   'connecting', 'open', 'reconnecting', 'idle', 'closed'
 *
 *   var ch = c.subscribe('news');                  // from now on
 *   var ch = c.subscribe('news', {since: saved});  // resume: saved = an
 *                                                  // earlier ch.cursor
 *   var ch = c.subscribe('news', {since: '17'});   // messages after id 17
 *   var ch = c.subscribe('news', {since: '0'});    // all the history kept
 *     A cursor is 'EPOCH:ID' ('k3x9a2bq:17'): the id of the last message
 *     seen and the epoch, the channel's incarnation, that id belongs to.
 *     Ids start again at 1 when the gateway restarts or forgets an idle
 *     channel, with a new epoch: a cursor of an old epoch gets 'gap', then
 *     everything the channel keeps. A plain 'ID' means the current epoch.
 *     since: either form, /^([0-9a-z]{1,13}:)?[0-9]{1,20}$/, else throws.
 *     Several channels on one connection. On ws it is the multiplexed
 *     /ws: one socket, each channel a subscribe operation with its cursor
 *     as since, so a subscribe() or unsubscribe() later is one operation
 *     on the open socket. On the others, subscribe() calls made in the
 *     same tick share one connection (`/channels/a,b` with the composite
 *     cursor "k3x9a2bq:17,p0ab12cd:4"), and a subscribe() or
 *     unsubscribe() later replaces the connection by one with the new
 *     channel list and every channel's cursor. Either way nothing is
 *     lost; the app sees no 'close' or 'open' for it and readyState stays
 *     'open' (if a new connection fails, that is a 'close' as usual). On
 *     ws, poll and longpoll presence announces only the channels added
 *     or left; on sse the new connection joins every channel again and
 *     the old one leaves them, in either order.
 *     At most 32 channels per client. subscribe() on a closed client
 *     throws: c.connect() first.
 *     ch.cursor  'EPOCH:ID' ('ID' while the epoch is unknown); null before
 *                the gateway said where the channel is. Read-only, as
 *                are ch.epoch (string or null) and ch.id (decimal string
 *                or null), its two parts.
 *     ch.state   'subscribing' (until the gateway has the subscription,
 *                and again while the connection is away), 'subscribed',
 *                'unsubscribed' (unsubscribe(), c.close(), or refused);
 *                each change is an event of the channel, below.
 *
 *   ch.on('score', function (data, msg) { ... });  // one event name
 *   ch.on('*', function (msg) { ... });            // every message
 *   ch.on('join', function (who, msg) { ... });    // presence: {client, transport}
 *   ch.on('leave', function (who, msg) { ... });
 *   ch.on('gap', function (info) { ... });         // messages were lost
 *   ch.on('subscribing' | 'subscribed' | 'unsubscribed', function (info) { ... });
 *     info of 'subscribed': {recovered, cursor, transport}; recovered is
 *     true when it resumed from the channel's cursor (a reconnect, or a
 *     since), false when it started at the tail. What could not be
 *     recovered (history too short, a new epoch) is a 'gap' right after
 *     it, before any message of the channel: the gateway says so only
 *     after its acknowledgement. info of 'subscribing' after a lost
 *     connection and of 'unsubscribed': {code, reason, closeCode,
 *     closeReason, status} as in 'close' ('unsubscribe' for
 *     unsubscribe(), 'client' for c.close(), the gateway's error code for
 *     a refused /ws subscribe).
 *   ch.once(name, fn), ch.off(name[, fn])          // as usual (off(name,
 *                                                  // fn) removes once(name, fn) too)
 *     msg is the envelope {type, channel, event, data, ts, from, epoch,
 *     id}: msg.epoch + ':' + msg.id is the channel's cursor after it. A
 *     message published under the event name 'gap' reaches only '*'.
 *     Any valid name works, 'constructor' or '__proto__' too, for events
 *     and channels. A handler that throws does not stop delivery: the
 *     error is rethrown from a setTimeout.
 *     Messages are delivered once: one of the channel's epoch with an id
 *     not past its cursor is a duplicate (c.stats.duplicates); one without
 *     a valid id or epoch is ignored (c.stats.bad).
 *
 *   ch.publish(event, data, [opts], [ack])
 *   c.publish(channel, event, data, [opts], [ack])
 *     Everyone on the channel gets it, this client too.
 *   ch.broadcast(event, data, [opts], [ack])
 *   c.broadcast(channel, event, data, [opts], [ack])
 *     Everyone on the channel but this client (every connection whose
 *     client id is c.id, whatever its transport) gets it. Its ack lets the
 *     channel's cursor step over it, so that a resume (or a request that
 *     was on its way before the ack) does not report a gap for own
 *     messages that have left the history.
 *     data: any JSON value; an ArrayBuffer (binary); a string with
 *     {text: true} (sent as text/plain). opts.timeout: ms for the ack
 *     (default ackTimeout).
 *     ack(err, id, epoch, info): id is the message's id in the channel
 *     (they increase within the epoch); info {replayed, key, tries}:
 *     replayed is true when the gateway answered a retry with the
 *     message it had already stored under the key.
 *     err {code, message[, status]}: 'timeout' when opts.timeout passed
 *     without an ack, 'network' (or the gateway's 5xx code) when the last
 *     try could not reach it, 'queue_full' (1000 publishes wait
 *     already), or the gateway's error code ('too_large', 'bad_channel',
 *     ...). After 'timeout' or 'network' the message may still be stored,
 *     once.
 *     Where they go: over the /ws socket while the client is on ws
 *     (several in flight, answered in order), and buffered while that
 *     socket is away (reconnecting); over HTTP otherwise (another
 *     transport, no channel, or a closed client), one at a time, the next
 *     once the previous one is answered. Either way a client's publishes
 *     are stored in call order (on every channel).
 *     Retries: every publish has an idempotency key (22 random
 *     characters), sent as the Idempotency-Key header or the "key" field
 *     on every try. One that is not answered (the socket was lost, no ack
 *     within a third of ackTimeout, a network error, a 5xx) is sent again
 *     with the same key, in order, until acked or until opts.timeout has
 *     passed since its first sending; a gateway that honours keys stores
 *     it once (a gateway that does not may store a retry twice). A
 *     publish buffered while the socket is away has not been sent: its
 *     time starts when it is. A /ws socket closed with 1009 (a frame over
 *     the gateway's --max-message) sends its unanswered publishes over
 *     HTTP, where the one too big gets 'too_large', and publishes as big
 *     go over HTTP from then on.
 *
 *   ch.unsubscribe();
 *   c.close()    stops every request (the connection, a /healthz probe,
 *                /info lookups; a publish in flight still gets its ack)
 *                and keeps the channels and their cursors;
 *   c.connect()  opens a closed client again with them.
 *   c.cursor()   the composite cursor, every channel's ch.cursor joined
 *                with ',' in subscription order ('' for an unknown one)
 *
 *   Events of the client, c.on(name, fn):
 *     'open'         {transport, reconnect, cursor}: connected; reconnect
 *                    is true when a 'close' (lost) came since the last open
 *     'close'        {transport, code, reason, closeCode, closeReason,
 *                    status}: the connection was lost (code: why, the
 *                    gateway's JSON error code for an HTTP error, with its
 *                    status; 'offline' when the browser went offline),
 *                    closed by c.close() (code 'client'), or the last
 *                    channel was unsubscribed (code 'idle'); closeCode /
 *                    closeReason: the WebSocket close frame's (also on
 *                    'error'), 1001 'restarting' for a gateway restart
 *     'reconnecting' {attempt, delay, transport[, offline]}
 *     'transport'    (name, previous): the transport changed (fallback)
 *     'message'      (msg): every message of every channel
 *     'gap'          {channel, last_seen, cursor, epoch, transport}: the
 *                    messages after last_seen (an id of the old cursor)
 *                    are gone: history was too short to resume, or the
 *                    channel is a new incarnation (epoch). Those after
 *                    epoch:cursor follow. Reload your state.
 *     'error'        {code, message, transport[, channel]}: channel for a
 *                    /ws subscribe the gateway refused
 *
 *   var c = anypush.connect('http://localhost:8080', {presence: true});
 *   var ch = c.subscribe('chat:lobby');
 *   ch.on('chat', function (data, msg) { show(data.nick, data.text); });
 *   ch.on('join', function (who) { show(who.client + ' joined'); });
 *   ch.broadcast('chat', {nick: 'ann', text: 'hi'}, function (err, id) { ... });
 *
 * Transports, by the protocol's names: 'ws' (WebSocket), 'sse' (EventSource),
 * 'longpoll' and 'poll' (XMLHttpRequest). By default the client tries them in
 * that order, skips what the browser lacks, and moves down the list at run
 * time when one does not work here (a WebSocket that never opens, a stream
 * that delivers nothing within `openTimeout`, `404 transport_disabled`).
 * A WebSocket the gateway closes with 1013 (over capacity), 1012 or 1001
 * is retried, not left. 'ws' is the multiplexed /ws (the per-channel
 * WebSocket URL is not used: /ws is there whenever ws is). On a fallback it tries the better transports
 * again after `upgradeDelay` (socket.io's upgrade), so a brief refusal
 * does not demote for ever. On SSE it asks for messages as unnamed events
 * (`?sse_events=0`): EventSource has no wildcard, and '*' / 'message'
 * handlers must get every name. A server event named 'error' reaches
 * EventSource's onerror; it has data, so it is read as an event.
 *
 * Old browsers: IE 8 and 9's XMLHttpRequest has no CORS, so with the
 * gateway on another origin polling is not tried there: 'error' with code
 * 'no_transport' says so at once (serve the page from the gateway's
 * origin). Every GET carries a parameter of its own ('_='), so a browser
 * that caches GETs never answers a poll from its cache.
 *
 * It keeps a cursor per channel and resumes with it after every reconnect
 * and every transport switch, drops duplicates, and reports `gap` when the
 * gateway says messages were lost.
 *
 * Shared (options.shared): a browser opens six HTTP/1.1 connections per
 * host, and every SSE or long-poll client holds one. The clients of every
 * tab with the same url and connection options (transports and the
 * timings) then use one connection, held by a hub: a SharedWorker running
 * this file (options.worker) where the browser has one and it answers
 * within 3 s, else a tab elected leader over BroadcastChannel (or
 * `storage` events), which hands over on pagehide or is replaced when its
 * heartbeat stops for 3.5 s (130 s for a hidden page). The hub holds the
 * union of the tabs' channels and relays each channel's messages, gaps and
 * cursors to the tabs on it; a tab coming with an older cursor moves the
 * hub back to it, and a new hub gets every tab's cursor, so a takeover
 * loses nothing (the tabs see 'close' with code 'leader_lost',
 * 'leader_changed' or 'leader_gone', then 'open'). Each tab keeps its own
 * client: c.id, channels, cursors, duplicates, gaps, states, handlers. Its
 * publishes go over HTTP with its X-Client-Id, so `from` and the acks are
 * its own; its broadcasts, which the gateway cannot leave out of the
 * hub's connection, are dropped by the tab. A tab silent for 5 s (130 s
 * hidden) is forgotten with its channels.
 *
 * Network: where the browser has them, window 'online' reconnects at once
 * (no backoff left to wait), 'offline' drops the connection ('close' with
 * code 'offline', readyState 'reconnecting') and waits for 'online'
 * without spending reconnect attempts (one try per reconnectDelayMax
 * meanwhile), and a page that becomes visible ('visibilitychange') while
 * a reconnect waits out its backoff tries at once.
 */
(function (root, factory) {
  if (typeof define === 'function' && define.amd) {
    define([], factory);
  } else if (typeof module === 'object' && module.exports) {
    module.exports = factory();
  } else {
    root.anypush = factory();
  }
}(typeof self !== 'undefined' ? self : this, function () {
  'use strict';

  var VERSION = '1.0.0';
  var ORDER = ['ws', 'sse', 'longpoll', 'poll'];
  var CHANNEL_RE = /^[A-Za-z0-9_.:~-]{1,200}$/;
  var EVENT_RE = /^[A-Za-z0-9_.:-]{1,64}$/;
  var ID_RE = /^[0-9]{1,20}$/;
  /* a channel's incarnation, as the gateway writes it (base 36 of a u64) */
  var EPOCH_RE = /^[0-9a-z]{1,13}$/;
  /* one channel's cursor: 'EPOCH:ID', or a plain 'ID' of the current epoch */
  var CURSOR_RE = /^([0-9a-z]{1,13}:)?[0-9]{1,20}$/;
  var CLIENT_RE = /^[A-Za-z0-9_-]{1,64}$/;
  var MAX_CHANNELS = 32;
  /* publishes not answered yet, per client */
  var MAX_QUEUED = 1000;
  /* publishes in flight on the /ws socket at once */
  var PUB_WINDOW = 32;

  var DEFAULTS = {
    transports: null,       // null: ORDER
    openTimeout: 8000,      // ms for a ws/sse connection to deliver its welcome
    pollInterval: 1000,     // ms between short polls, counted after each reply
    longpollTimeout: 25,    // s the gateway holds a long poll
    requestTimeout: 15000,  // ms for a poll request / a probe
    ackTimeout: 10000,      // ms for a publish acknowledgement
    reconnectDelay: 500,    // ms, first backoff ceiling
    reconnectDelayMax: 15000,
    upgradeDelay: 30000,    // ms on a fallback before trying the better
                            // transports again (doubles while they fail)
    heartbeat: 15,          // s; until a welcome says otherwise
    clientId: null,         // null: made here, sent as ?client=
    token: null,            // a JWT, or function (cb) giving cb(err, jwt)
    presence: false,        // true: ?presence=1, join/leave on the channels
    shared: false,          // true: one connection per origin for every tab
                            // (not with presence or env)
    worker: null,           // the SharedWorker script (this file's URL);
                            // null: this <script>'s src
    env: null               // where WebSocket, EventSource, XMLHttpRequest
                            // are looked up; null: the global object. The
                            // demo passes {XMLHttpRequest: ...} to play an
                            // old browser.
  };

  /* ------------------------------------------------------------------ */
  /* small helpers                                                       */

  function now() { return new Date().getTime(); }

  function hasOwn(o, k) { return Object.prototype.hasOwnProperty.call(o, k); }

  function extend(dst, src) {
    var k;
    if (src) {
      for (k in src) {
        if (hasOwn(src, k) && src[k] !== undefined) { dst[k] = src[k]; }
      }
    }
    return dst;
  }

  function isArray(a) { return Object.prototype.toString.call(a) === '[object Array]'; }

  function indexOf(list, x) {
    var i;
    for (i = 0; i < list.length; i++) { if (list[i] === x) { return i; } }
    return -1;
  }

  function trim(s) { return s.replace(/^\s+|\s+$/g, ''); }

  /* Ids are unsigned 64-bit decimals: compare them as strings, so ids past
     2^53 keep their order. */
  function normId(x) {
    var s = String(x).replace(/^0+(?=[0-9])/, '');
    return s;
  }
  function cmpId(a, b) {
    a = normId(a); b = normId(b);
    if (a.length !== b.length) { return a.length < b.length ? -1 : 1; }
    return a === b ? 0 : (a < b ? -1 : 1);
  }
  function incId(a) {
    var d = normId(a).split(''), i = d.length - 1;
    while (i >= 0) {
      if (d[i] === '9') { d[i] = '0'; i--; } else { d[i] = String.fromCharCode(d[i].charCodeAt(0) + 1); break; }
    }
    if (i < 0) { d.unshift('1'); }
    return d.join('');
  }

  /* An id as the gateway writes it: a JSON number (or a decimal string). A
     value of another type could pass ID_RE through String() ([5] is '5'). */
  function validId(x) {
    return (typeof x === 'number' || typeof x === 'string') && ID_RE.test(String(x));
  }

  /* The gateway never makes epoch 0: it is what a missing epoch parses to. */
  function validEpoch(e) {
    return typeof e === 'string' && EPOCH_RE.test(e) && !/^0+$/.test(e);
  }

  /* 'EPOCH:ID' -> {epoch, id}; 'ID' -> {epoch: null, id}; null when
     malformed. The id comes back normalised (a decimal string). */
  function parseCursor(x) {
    var s = String(x), i;
    if (!CURSOR_RE.test(s)) { return null; }
    i = s.indexOf(':');
    if (i < 0) { return {epoch: null, id: normId(s)}; }
    if (!validEpoch(s.slice(0, i))) { return null; }
    return {epoch: s.slice(0, i), id: normId(s.slice(i + 1))};
  }

  function formatCursor(epoch, id) {
    if (id === null) { return null; }
    return epoch === null ? id : epoch + ':' + id;
  }

  /* UTF-8 length of a string, for the byte counters. */
  function utf8len(s) {
    var n = 0, i, c;
    if (typeof s !== 'string') {
      return s && s.byteLength !== undefined ? s.byteLength : 0;
    }
    for (i = 0; i < s.length; i++) {
      c = s.charCodeAt(i);
      if (c < 0x80) { n += 1; } else if (c < 0x800) { n += 2; } else if (c >= 0xd800 && c < 0xdc00) { n += 4; i++; } else { n += 3; }
    }
    return n;
  }

  var ALPHA = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  function makeId() {
    var out = '', i, bytes = null, g = typeof self !== 'undefined' ? self : null;
    var cr = g && (g.crypto || g.msCrypto);
    if (cr && cr.getRandomValues && typeof Uint8Array !== 'undefined') {
      bytes = new Uint8Array(22);
      cr.getRandomValues(bytes);
    }
    for (i = 0; i < 22; i++) {
      out += ALPHA.charAt(bytes ? bytes[i] & 63 : Math.floor(Math.random() * 64));
    }
    return out;
  }

  function parseJSON(text) {
    try { return JSON.parse(text); } catch (e) { return undefined; }
  }

  function global() {
    if (typeof self !== 'undefined') { return self; }
    if (typeof window !== 'undefined') { return window; }
    return {};
  }

  /* Which transports this browser has, looked up when needed (so a page
     that removes WebSocket before connecting is honoured). env: where to
     look (default the global object). */
  function supported(name, env) {
    var g = env || global();
    switch (name) {
    case 'ws': return typeof g.WebSocket === 'function' || typeof g.WebSocket === 'object';
    case 'sse': return typeof g.EventSource === 'function' || typeof g.EventSource === 'object';
    case 'longpoll':
    case 'poll': return typeof g.XMLHttpRequest !== 'undefined';
    }
    return false;
  }

  /* A map whose keys cannot collide with Object.prototype's: event and
     channel names are the publisher's choice, and 'constructor',
     'toString' or '__proto__' are valid ones. */
  function newMap() { return Object.create(null); }

  /* A tiny event emitter. */
  function Emitter() { this._handlers = newMap(); }
  Emitter.prototype.on = function (name, fn) {
    (this._handlers[name] = this._handlers[name] || []).push(fn);
    return this;
  };
  Emitter.prototype.off = function (name, fn) {
    var list = this._handlers[name], i;
    if (!list) { return this; }
    if (!fn) { delete this._handlers[name]; return this; }
    /* a once() handler is a wrapper that knows the function it wraps */
    for (i = 0; i < list.length; i++) {
      if (list[i] === fn || list[i].listener === fn) { list.splice(i, 1); break; }
    }
    return this;
  };
  Emitter.prototype.once = function (name, fn) {
    var self = this;
    function once() { self.off(name, once); fn.apply(this, arguments); }
    once.listener = fn;
    return this.on(name, once);
  };
  Emitter.prototype.emit = function (name) {
    var list = this._handlers[name], args = Array.prototype.slice.call(arguments, 1), i;
    if (!list) { return false; }
    list = list.slice();
    for (i = 0; i < list.length; i++) {
      try {
        list[i].apply(this, args);
      } catch (e) {
        /* a throwing handler must not break delivery to the next one */
        if (typeof setTimeout === 'function') {
          (function (err) { setTimeout(function () { throw err; }, 0); }(e));
        }
      }
    }
    return true;
  };

  function inherit(Child, Parent) {
    function F() {}
    F.prototype = Parent.prototype;
    Child.prototype = new F();
    Child.prototype.constructor = Child;
  }

  /* ------------------------------------------------------------------ */
  /* HTTP                                                                */

  /* One XHR. cb(err, status, body, xhr); err is set only for network
     errors and timeouts (status 0). */
  /* Old IE answers a repeated GET from its cache, and a poll repeats its
     URL while nothing is new: every GET carries a parameter of its own
     (the gateway ignores parameters it does not know). */
  var getSeq = 0;

  function request(client, method, url, opts, cb) {
    var G = client.options.env || global(), xhr = new G.XMLHttpRequest(), done = false, timer = null, k;
    if (method === 'GET') {
      getSeq++;
      url += (url.indexOf('?') < 0 ? '?' : '&') + '_=' + now().toString(36) + getSeq.toString(36);
    }
    function finish(err, status, text) {
      if (done) { return; }
      done = true;
      if (timer) { clearTimeout(timer); }
      xhr.onreadystatechange = null;
      if (text) { client.stats.bytes += utf8len(text); }
      cb(err, status, text, xhr);
    }
    client.stats.requests++;
    try {
      xhr.open(method, url, true);
      if (opts.headers) {
        for (k in opts.headers) {
          if (hasOwn(opts.headers, k)) { xhr.setRequestHeader(k, opts.headers[k]); }
        }
      }
      xhr.onreadystatechange = function () {
        if (xhr.readyState !== 4) { return; }
        /* IE reports a lost connection as a WinINet code (12029, 12030,
           12031, 12152, ...), not as 0 */
        if (xhr.status === 0 || (xhr.status >= 12000 && xhr.status < 13000)) {
          finish({code: 'network', message: 'network error'}, 0, '');
        } else {
          finish(null, xhr.status, xhr.responseText);
        }
      };
      if (opts.timeout) {
        timer = setTimeout(function () {
          timer = null;
          /* finish first: abort() fires readystatechange (status 0) at
             once, which would report the timeout as 'network' */
          finish({code: 'timeout', message: 'no answer within ' + opts.timeout + ' ms'}, 0, '');
          try { xhr.abort(); } catch (e) { /* ignore */ }
        }, opts.timeout);
      }
      xhr.send(opts.body === undefined ? null : opts.body);
    } catch (e) {
      setTimeout(function () { finish({code: 'network', message: String(e && e.message || e)}, 0, ''); }, 0);
    }
    return {
      abort: function () {
        if (done) { return; }
        done = true;
        if (timer) { clearTimeout(timer); }
        xhr.onreadystatechange = null;
        try { xhr.abort(); } catch (e) { /* ignore */ }
      }
    };
  }

  function errorOf(status, text) {
    var j = parseJSON(text);
    if (j && j.error && j.error.code) {
      return {code: j.error.code, message: j.error.message || j.error.code, status: status};
    }
    return {code: 'http_' + status, message: 'HTTP ' + status, status: status};
  }

  /* ------------------------------------------------------------------ */
  /* Channel                                                             */

  function Channel(client, name, since) {
    var p = since === undefined || since === null ? null : parseCursor(since);
    Emitter.call(this);
    this.client = client;
    this.name = name;
    /* Where the channel is. id: the id of the last message seen, a decimal
       string; null: not known yet (start at the tail). epoch: the channel's
       incarnation that id belongs to (ids start again at 1 in a new one);
       null: not known (a plain `since`, or a channel that did not exist),
       and the gateway takes the id as of its current incarnation. cursor:
       the two as the gateway reads them, 'EPOCH:ID' or 'ID'. Only
       Client._setPos changes them. */
    this.epoch = p ? p.epoch : null;
    this.id = p ? p.id : null;
    this.cursor = p ? formatCursor(p.epoch, p.id) : null;
    this.subscribed = true;
    /* 'subscribing' until the gateway has the subscription, 'subscribed',
       'subscribing' again while the connection is away, 'unsubscribed'
       after unsubscribe(), close() or a refusal (Client._chState) */
    this.state = 'subscribing';
    /* ids of this client's own broadcasts on the channel, past the cursor,
       all of epoch _ownEpoch: the gateway never sends them here, so the
       cursor steps over them */
    this._own = {};
    this._nown = 0;
    this._ownEpoch = null;
  }
  inherit(Channel, Emitter);

  /* ch.on(event, fn): fn(data, envelope) for messages with that event name;
     '*' gets every message of the channel. */
  Channel.prototype.on = function (name, fn) {
    Emitter.prototype.on.call(this, name, fn);
    this.client._listen(name);
    return this;
  };

  Channel.prototype.publish = function (event, data, opts, ack) {
    return this.client.publish(this.name, event, data, opts, ack);
  };

  /* Like publish, but not to this client: see Client.broadcast. */
  Channel.prototype.broadcast = function (event, data, opts, ack) {
    return this.client.broadcast(this.name, event, data, opts, ack);
  };

  Channel.prototype.unsubscribe = function () {
    this.client._unsubscribe(this);
  };

  /* ------------------------------------------------------------------ */
  /* Client                                                              */

  function Client(baseUrl, opts) {
    var list, i, t;
    Emitter.call(this);
    this.options = extend(extend({}, DEFAULTS), opts || {});
    this.url = String(baseUrl || '').replace(/\/+$/, '');
    if (!this.url && typeof location !== 'undefined') {
      this.url = location.protocol + '//' + location.host;
    }
    if (this.options.clientId !== null && !CLIENT_RE.test(String(this.options.clientId))) {
      throw new Error('anypush: clientId must match [A-Za-z0-9_-]{1,64}, got ' + this.options.clientId);
    }
    this.id = this.options.clientId || makeId();
    this.transport = null;
    this.readyState = 'connecting';
    this.channels = newMap();
    this.channelList = [];
    this.heartbeat = this.options.heartbeat;
    /* bad: frames that claimed to be a message or a gap without the shape
       of one (no valid id or epoch), ignored */
    this.stats = {requests: 0, bytes: 0, messages: 0, duplicates: 0, gaps: 0,
                  reconnects: 0, fallbacks: 0, bad: 0};

    list = this.options.transports || ORDER;
    if (typeof list === 'string') { list = [list]; }
    this.order = [];
    for (i = 0; i < list.length; i++) {
      t = list[i];
      if (indexOf(ORDER, t) < 0) { throw new Error('anypush: unknown transport ' + t); }
      if (indexOf(this.order, t) < 0) { this.order.push(t); }
    }
    this.skipped = [];      // transports the browser lacks
    this.failed = {};       // transport -> why it was left
    this._events = newMap();
    this._events.message = this._events.welcome = this._events.gap = true;
    this._gen = 0;          // connection generation, to drop stale callbacks
    this._conn = null;
    this._timer = null;     // reconnect / poll timer
    this._attempt = 0;
    this._ti = 0;
    this._pendingConnect = null;
    this._closed = false;
    this._worked = {};      // transport -> it delivered a welcome / reply here
    this._strikes = {};     // transport -> failed opens since it last worked
    this._upTimer = null;   // the next try of the transports left
    this._upDelay = this.options.upgradeDelay;
    this._pubq = [];        // publishes waiting for their turn
    this._aux = null;       // a /healthz probe or /info tail request
    this._lost = false;     // a 'close' was emitted: the next open is a reconnect
    this._resub = false;    // an open connection is being replaced by one
                            // with the new channel list
    this._mux = null;       // the /ws connection, from its welcome on
    this._mux1009 = false;  // it was closed for a frame too big
    this._wsBig = Infinity; // publish frames this long go over HTTP
    this._pumping = false;
    this._offline = false;  // the browser said 'offline', not 'online' yet
    this._net = null;       // the window / document listeners
    this._listenNetwork(true);
    this._xhrCors = undefined; // this browser's XHR reaches this.url
    this._noCors = false;   // polling was skipped for that
    /* the tab's side of a connection shared by the tabs (TabLink) */
    this._shared = null;
    if (this.options.shared && !this.options.presence && !this.options.env && !this.options.token) { this._shared = shareLink(this); }
  }
  inherit(Client, Emitter);

  Client.prototype._available = function () {
    var out = [], i, t;
    this.skipped = [];
    for (i = 0; i < this.order.length; i++) {
      t = this.order[i];
      if (!supported(t, this.options.env) || ((t === 'poll' || t === 'longpoll') && !this._xhrReaches())) {
        this.skipped.push(t);
      } else if (!this.failed[t]) {
        out.push(t);
      }
    }
    return out;
  };

  /* IE 8 and 9's XMLHttpRequest has no CORS (no withCredentials): it can
     only reach this page's own origin. Polling another origin there would
     fail for ever, so it is not tried, and 'no_transport' says why. */
  Client.prototype._xhrReaches = function () {
    var G = this.options.env || global(), page, xhr, m;
    if (this._xhrCors !== undefined) { return this._xhrCors; }
    page = typeof location !== 'undefined' && location.protocol && location.host ?
      (location.protocol + '//' + location.host).toLowerCase() : null;
    m = /^[a-z][a-z0-9+.-]*:\/\/[^\/?#]+/i.exec(this.url);
    if (page === null || !m || m[0].toLowerCase() === page) {
      this._xhrCors = true;
    } else {
      try { xhr = new G.XMLHttpRequest(); this._xhrCors = 'withCredentials' in xhr; } catch (e) { this._xhrCors = false; }
    }
    if (!this._xhrCors) { this._noCors = true; }
    return this._xhrCors;
  };

  Client.prototype.subscribe = function (name, opts) {
    var ch;
    if (typeof name !== 'string' || !CHANNEL_RE.test(name) || name === '.' || name === '..') {
      throw new Error('anypush: bad channel name ' + name);
    }
    opts = opts || {};
    if (opts.since !== undefined && opts.since !== null && !parseCursor(opts.since)) {
      throw new Error('anypush: since must be a cursor (EPOCH:ID or ID), got ' + opts.since);
    }
    if (hasOwn(this.channels, name)) { return this.channels[name]; }
    if (this._closed) {
      throw new Error('anypush: the client is closed; c.connect() opens it again');
    }
    if (this.channelList.length >= MAX_CHANNELS) {
      throw new Error('anypush: at most ' + MAX_CHANNELS + ' channels per client');
    }
    ch = new Channel(this, name, opts.since);
    this.channels[name] = ch;
    this.channelList.push(name);
    /* on /ws a channel is one operation on the socket */
    if (this._conn && this._conn.mux) {
      this._conn.sub(ch);
    } else {
      this._schedule('subscribe');
    }
    return ch;
  };

  /* info: why, for the 'unsubscribed' event ({code: 'unsubscribe'} when
     the app asked, else the gateway's refusal). */
  Client.prototype._unsubscribe = function (ch, info) {
    var i = indexOf(this.channelList, ch.name);
    if (i < 0 || this.channels[ch.name] !== ch) { return; }
    this.channelList.splice(i, 1);
    delete this.channels[ch.name];
    ch.subscribed = false;
    if (this._conn && this._conn.mux) {
      this._conn.unsub(ch.name);
      /* the last one: the socket goes (a 'close' with code 'idle') */
      if (!this.channelList.length) { this._schedule('unsubscribe'); }
    } else {
      this._schedule('unsubscribe');
    }
    this._chState(ch, 'unsubscribed', info || {code: 'unsubscribe', reason: 'unsubscribe() was called'});
  };

  /* (Re)connect soon with the current channel list: several subscribe()
     calls in one tick make one connection. */
  Client.prototype._schedule = function (why) {
    var self = this;
    if (this._shared) {
      if (!this._closed) { this._shared.sync(); }
      return;
    }
    if (this._closed || this._pendingConnect) { return; }
    this._pendingConnect = setTimeout(function () {
      self._pendingConnect = null;
      if (self._closed) { return; }
      /* /ws took the change as operations on the open socket */
      if (self._conn && self._conn.mux && self.channelList.length) { return; }
      /* the channel set changed under an open connection: the new one
         replaces it without a close or an open for the app */
      if (self.readyState === 'open') { self._resub = true; }
      self._drop();
      self._attempt = 0;
      if (self._timer) { clearTimeout(self._timer); self._timer = null; }
      self._connect();
    }, 0);
  };

  /* Register an event name for EventSource, which delivers only named
     events someone listens to. */
  Client.prototype._listen = function (name) {
    if (name === '*' || hasOwn(this._events, name)) { return; }
    if (!EVENT_RE.test(name)) { return; }
    this._events[name] = true;
    if (this._conn && this._conn.listen) { this._conn.listen(name); }
  };

  /* The composite cursor: each channel's 'EPOCH:ID' (or 'ID'), in
     subscription order; an empty slot for a channel without one. */
  Client.prototype.cursor = function () {
    var out = [], i, c;
    for (i = 0; i < this.channelList.length; i++) {
      c = this.channels[this.channelList[i]].cursor;
      out.push(c === null ? '' : c);
    }
    return out.join(',');
  };

  /* Move ch to (epoch, id). Own broadcast ids of another epoch name other
     messages now: forget them. */
  Client.prototype._setPos = function (ch, epoch, id) {
    ch.epoch = epoch;
    ch.id = id;
    ch.cursor = formatCursor(epoch, id);
    if (ch._ownEpoch !== null && epoch !== null && epoch !== ch._ownEpoch) {
      ch._own = {};
      ch._nown = 0;
      ch._ownEpoch = null;
    }
  };

  /* A position the gateway handed out for ch: a welcome's or ack's cursor,
     a poll's next, an SSE id: line, a cursor frame. Within the channel's
     epoch it only moves forward. Another epoch replaces ours: a plain
     cursor of ours came back with the current epoch attached. A plain one
     (/info of a channel that does not exist) only fills an unknown id. */
  Client.prototype._at = function (ch, epoch, id) {
    if (epoch === null) {
      if (ch.id === null) { this._setPos(ch, null, id); }
      return;
    }
    if (epoch === ch.epoch && ch.id !== null && cmpId(id, ch.id) <= 0) { return; }
    this._setPos(ch, epoch, id);
    this._skipOwn(ch);
  };

  /* A composite cursor from the gateway, for the channels of ctx in URL
     order. Several channels may have changed since that connection was
     opened: its own list says which slot is which. */
  Client.prototype._cursorText = function (ctx, text) {
    var parts, i, p, name;
    if (!ctx.live() || typeof text !== 'string' || text === '') { return; }
    parts = text.split(',');
    if (parts.length !== ctx.names.length) { return; }
    for (i = 0; i < parts.length; i++) {
      name = ctx.names[i];
      p = parseCursor(parts[i]);
      if (p && hasOwn(this.channels, name)) { this._at(this.channels[name], p.epoch, p.id); }
    }
  };

  /* Publishes may go another way in another state (_pubPath). */
  Client.prototype._setState = function (s) {
    this.readyState = s;
    this._pump();
  };

  Client.prototype._setTransport = function (t) {
    var prev = this.transport;
    if (prev === t) { return; }
    this.transport = t;
    this._pump();
    this.emit('transport', t, prev);
  };

  /* Stop the current connection without telling anyone. */
  Client.prototype._drop = function () {
    this._gen++;
    if (this._aux) { this._aux.abort(); this._aux = null; }
    if (this._mux) {
      this._mux = null;
      this._pubLost(this._mux1009);
    }
    this._mux1009 = false;
    if (this._conn) {
      var c = this._conn;
      this._conn = null;
      c.close();
    }
    this._pump();
  };

  /* A channel's state: 'subscribing', 'subscribed' or 'unsubscribed'; the
     channel emits the new one with info. */
  Client.prototype._chState = function (ch, state, info) {
    if (ch.state === state) { return; }
    ch.state = state;
    ch.emit(state, info || {});
  };

  /* The welcome of a ws or sse connection: who we are, how often it pings. */
  Client.prototype._welcomed = function (info) {
    if (info && info.heartbeat) { this.heartbeat = info.heartbeat; }
    if (info && typeof info.client === 'string' && CLIENT_RE.test(info.client)) { this.id = info.client; }
  };

  /* Refusals that pass by themselves: the gateway is busy or stopping, or
     a rate limit of the client's (it refills within seconds), or its
     Redis unreachable for a while (--redis). Anything
     else will not change by trying again. */
  function busyCode(code) {
    return code === 'shutting_down' || code === 'over_capacity' || code === 'rate_limited' ||
      code === 'channel_rate_limited' || code === 'too_many_connections' || code === 'redis_unavailable';
  }

  /* Retry-After of a 429, in ms (1 s when absent or unreadable). */
  function retryAfterMs(xhr) {
    var v = null;
    try { v = parseInt(xhr.getResponseHeader('Retry-After'), 10); } catch (e) { /* ignore */ }
    return (v > 0 && v < 3600 ? v : 1) * 1000;
  }

  /* The gateway refused a /ws subscribe. Busy (shutting down, too many
     channels, a rate limit: busyCode): again after a while, as a reconnect would. Anything else
     will not change: the channel is left, with the gateway's code. */
  Client.prototype._subRefused = function (ch, f) {
    var self = this, conn, err = {code: typeof f.code === 'string' ? f.code : 'error', message: f.message || f.code,
                            channel: ch.name, transport: 'ws'};
    if (this.channels[ch.name] !== ch) { return; }
    this.emit('error', err);
    if (busyCode(err.code)) {
      ch._retries = (ch._retries || 0) + 1;
      conn = this._conn;
      setTimeout(function () {
        if (self.channels[ch.name] === ch && self._conn === conn && conn) { conn.sub(ch); }
      }, Math.min(this.options.reconnectDelayMax, this.options.reconnectDelay * Math.pow(2, ch._retries)));
      return;
    }
    this._unsubscribe(ch, err);
  };

  Client.prototype._connect = function () {
    var avail, t;
    if (this._closed) { return; }
    if (this._shared) { this._shared.sync(); return; }
    if (!this.channelList.length) {
      this._resub = false;
      if (this.readyState === 'open') {
        this.emit('close', {transport: this.transport, code: 'idle', reason: 'no channel left'});
      }
      this._setState('idle');
      return;
    }
    avail = this._available();
    if (!avail.length) {
      this._setState('closed');
      this.emit('error', {code: 'no_transport', message: 'no usable transport (skipped: ' +
        this.skipped.join(',') + '; failed: ' + this._failedList() + ')' + (this._noCors ?
        '; this browser cannot poll another origin (no CORS): serve the page from ' + this.url : '')});
      return;
    }
    if (this._ti >= avail.length) { this._ti = avail.length - 1; }
    t = avail[this._ti];
    this._setTransport(t);
    if (!this._resub && this.readyState !== 'reconnecting') { this._setState('connecting'); }
    this._open(t);
  };

  /* A composite cursor needs an id for every channel. When some channels
     have one and others do not (a channel added to a running
     subscription), learn where the others' tails are first: after the
     token, which /info needs as a subscribe does. */
  Client.prototype._tailsThenOpen = function (t) {
    var self = this, missing = [], i, gen;
    for (i = 0; i < this.channelList.length; i++) {
      if (this.channels[this.channelList[i]].id === null) { missing.push(this.channelList[i]); }
    }
    if (t === 'ws' || !missing.length || missing.length === this.channelList.length) {
      this._openNow(t);
      return;
    }
    gen = ++this._gen;
    this._tails(missing, function (err) {
      if (gen !== self._gen) { return; }
      self._aux = null;
      if (err) {
        /* the gateway is away, not this transport: try again later */
        self._lostConn(t, err);
        self.emit('error', err);
        self._retry();
        return;
      }
      self._openNow(t);
    });
  };

  Client.prototype._tails = function (names, cb) {
    var self = this, i = 0;
    function next() {
      var name;
      if (i >= names.length) { cb(null); return; }
      name = names[i++];
      self._aux = request(self, 'GET', self.url + '/channels/' + name + '/info',
                          {timeout: self.options.requestTimeout, headers: self._authorize({})},
        function (err, status, text) {
          var j;
          if (err) { cb(err); return; }
          j = parseJSON(text);
          if (status !== 200 || !j || !validId(j.last_id)) { cb(errorOf(status, text)); return; }
          /* epoch null: the channel does not exist, and a plain last id
             (0) is right for whatever incarnation comes */
          if (hasOwn(self.channels, name) && self.channels[name].id === null) {
            self._setPos(self.channels[name], validEpoch(j.epoch) ? j.epoch : null, normId(j.last_id));
          }
          next();
        });
    }
    next();
  };

  Client.prototype._failedList = function () {
    var out = [], k;
    for (k in this.failed) { if (hasOwn(this.failed, k)) { out.push(k + ':' + this.failed[k]); } }
    return out.join(',');
  };

  Client.prototype._query = function (t) {
    var q = '?transport=' + t, cur = this.cursor();
    /* cursor() has an empty slot for a channel without a cursor; with
       every slot empty we start at the tail */
    if (cur.replace(/,/g, '') !== '') { q += '&since=' + cur; }
    q += this._who();
    if (this.options.presence) { q += '&presence=1'; }
    return q;
  };

  /* '&token=...', and '&client=' unless a token names the client: the
     gateway then takes the token's sub, and its welcome tells us. */
  Client.prototype._who = function () {
    if (!this._token) { return '&client=' + this.id; }
    return '&token=' + encodeURIComponent(this._token) + (this.options.clientId ? '&client=' + this.id : '');
  };

  Client.prototype._path = function () {
    return '/channels/' + this.channelList.join(',');
  };

  /* The token first: a function is asked for a fresh one on every
     (re)connect, since the last one may have expired. */
  Client.prototype._open = function (t) {
    var self = this, tok = this.options.token, gen;
    if (typeof tok !== 'function') {
      this._token = typeof tok === 'string' && tok ? tok : null;
      this._tailsThenOpen(t);
      return;
    }
    gen = ++this._gen;
    tok(function (err, value) {
      var e;
      if (gen !== self._gen || self._closed) { return; }
      if (err || typeof value !== 'string' || !value) {
        e = {code: 'token_failed', message: 'the token option gave no token: ' + String(err && err.message || err),
             transport: t};
        self._lostConn(t, e);
        self.emit('error', e);
        self._retry();
        return;
      }
      self._token = value;
      self._tailsThenOpen(t);
    });
  };

  Client.prototype._openNow = function (t) {
    var gen = ++this._gen, self = this, i;
    var ctx = {
      gen: gen,
      transport: t,
      names: this.channelList.slice(),  // the URL's order, for its cursors
      resume: [],                       // channels opened with a cursor
      live: function () { return gen === self._gen && !self._closed; }
    };
    for (i = 0; i < ctx.names.length; i++) {
      if (this.channels[ctx.names[i]].cursor !== null) { ctx.resume.push(ctx.names[i]); }
    }
    this._conn = TRANSPORTS[t](this, ctx);
  };

  /* The connection is up (a welcome, or a first poll reply). */
  Client.prototype._opened = function (ctx, info) {
    if (!ctx.live()) { return; }
    /* a reconnect: the app was told of a 'close' since the last open */
    var wasReconnect = this._lost, resub = this._resub, i, ch;
    this._attempt = 0;
    this._worked[ctx.transport] = true;
    this._strikes[ctx.transport] = 0;
    this._lost = false;
    this._resub = false;
    this._welcomed(info);
    this._setState('open');
    this._planUpgrade(ctx.transport);
    /* on /ws each channel says so with its ack; here the connection is
       every channel's */
    if (ctx.transport !== 'ws') {
      for (i = 0; i < ctx.names.length; i++) {
        ch = hasOwn(this.channels, ctx.names[i]) ? this.channels[ctx.names[i]] : null;
        if (ch) {
          this._chState(ch, 'subscribed', {recovered: indexOf(ctx.resume, ch.name) >= 0, cursor: ch.cursor,
                                           transport: ctx.transport});
        }
      }
    }
    if (resub) { return; }
    this.emit('open', {transport: ctx.transport, reconnect: wasReconnect, cursor: this.cursor()});
  };

  /* Open on t, a fallback: a transport above it was left (a refusal while
     the gateway was full, a proxy in the way) may work now. Try the best
     again after upgradeDelay, twice as long after each try that ended
     here again; on the best one, start over. The cursor makes the switch
     lose nothing. */
  Client.prototype._planUpgrade = function (t) {
    var self = this, i, better = false;
    if (this._upTimer) { clearTimeout(this._upTimer); this._upTimer = null; }
    for (i = 0; i < this.order.length && this.order[i] !== t; i++) {
      if (this.failed[this.order[i]] && supported(this.order[i], this.options.env)) { better = true; }
    }
    if (!better) {
      this._upDelay = this.options.upgradeDelay;
      return;
    }
    this._upTimer = setTimeout(function () {
      var k;
      self._upTimer = null;
      if (self._closed || self.readyState !== 'open' || self.transport !== t) { return; }
      self._upDelay = Math.min(self._upDelay * 2, self.options.upgradeDelay * 16);
      for (k = 0; k < self.order.length && self.order[k] !== t; k++) { delete self.failed[self.order[k]]; }
      self._drop();
      self._ti = 0;
      self._attempt = 0;
      self._setState('reconnecting');
      self._connect();
    }, this._upDelay);
  };

  /* One message envelope from any transport. Without a valid id and epoch
     it would poison the channel's cursor (and every resume after it):
     ignore it. */
  Client.prototype._message = function (ctx, m) {
    var ch = null, id;
    if (!ctx.live() || !m) { return; }
    if (hasOwn(this.channels, m.channel)) {
      ch = this.channels[m.channel];
    } else if (this.channelList.length === 1 && m.channel === undefined) {
      /* a single-channel stream may omit nothing, but be lenient */
      ch = this.channels[this.channelList[0]];
    }
    if (!ch) { return; }
    if (!validId(m.id) || normId(m.id) === '0' || !validEpoch(m.epoch)) {
      this.stats.bad++;
      return;
    }
    id = normId(m.id);
    if (m.epoch === ch.epoch && ch.id !== null && cmpId(id, ch.id) <= 0) {
      this.stats.duplicates++;
      return;
    }
    this._setPos(ch, m.epoch, id);
    this._skipOwn(ch);
    this.stats.messages++;
    /* 'gap' on a channel is the gateway's signal: a message published
       under that name reaches '*' and 'message' handlers only */
    if (m.event !== 'gap') { ch.emit(m.event || 'message', m.data, m); }
    ch.emit('*', m);
    this.emit('message', m);
  };

  /* The shape of the gateway's gap object: anything else claiming to be
     one (a message envelope under the event name 'gap') is not. */
  function isGap(g) {
    return !!g && typeof g === 'object' && (g.type === undefined || g.type === 'gap') &&
      typeof g.channel === 'string' && validId(g.last_seen) && validId(g.cursor) && validEpoch(g.epoch);
  }

  /* A gap: the messages after the channel's cursor are gone (evicted, or
     a new incarnation of the channel); those after g.cursor of g.epoch
     follow. */
  Client.prototype._gap = function (ctx, g) {
    var ch, info;
    if (!ctx.live()) { return; }
    if (!isGap(g)) {
      this.stats.bad++;
      return;
    }
    if (!hasOwn(this.channels, g.channel)) { return; }
    ch = this.channels[g.channel];
    if (this._ownGap(ch, g)) { return; }
    this._setPos(ch, g.epoch, normId(g.cursor));
    this._skipOwn(ch);
    this.stats.gaps++;
    info = {channel: g.channel, last_seen: g.last_seen, cursor: g.cursor, epoch: g.epoch, transport: ctx.transport};
    ch.emit('gap', info);
    this.emit('gap', info);
  };

  /* A gap that lost nothing of ours to see: a request sent before this
     client's own broadcasts were acknowledged comes back with a gap over
     them once they have left the history. Within the channel's epoch,
     when the gap starts before our cursor and every id up to its cursor
     is at or before ours, or one of our own broadcasts, step over them
     quietly. A gap from our very cursor back to an older id (a cursor
     the gateway never issued) is a real one. */
  Client.prototype._ownGap = function (ch, g) {
    var to = normId(g.cursor), from = normId(g.last_seen), n, own = [], i;
    if (g.epoch !== ch.epoch || ch.id === null || cmpId(to, from) < 0) { return false; }
    if (cmpId(from, ch.id) < 0 && cmpId(to, ch.id) <= 0) { return true; }
    if (ch._ownEpoch !== ch.epoch) { return false; }
    /* at most _nown (256) steps: each one must be an own id */
    for (n = incId(ch.id); cmpId(n, to) <= 0; n = incId(n)) {
      if (!hasOwn(ch._own, n)) { return false; }
      own.push(n);
    }
    for (i = 0; i < own.length; i++) { delete ch._own[own[i]]; ch._nown--; }
    this._setPos(ch, ch.epoch, to);
    this._skipOwn(ch);
    return true;
  };

  /* A WebSocket cursor frame: the gateway left out this client's own
     broadcast and moved the channel's cursor past it. */
  Client.prototype._cursorFrame = function (ctx, f) {
    if (!ctx.live()) { return; }
    if (typeof f.channel !== 'string' || !validId(f.cursor) || !validEpoch(f.epoch)) {
      this.stats.bad++;
      return;
    }
    if (hasOwn(this.channels, f.channel)) { this._at(this.channels[f.channel], f.epoch, normId(f.cursor)); }
  };

  /* Something went wrong with the connection of ctx.
     opened: it had opened (a welcome or reply arrived) at some point.
     err.code 'transport_disabled' / 'upgrade_required': this transport is
     turned off here; move down for good. */
  Client.prototype._fail = function (t, err, opened, ctx) {
    var self = this;
    if (ctx && !ctx.live()) { return; }
    if (this._closed) { return; }
    this._drop();
    if (err) { err.transport = t; }
    this._lostConn(t, err);
    if (err && err.code !== 'silence' && err.code !== 'closed') { this.emit('error', err); }

    if (err && (err.code === 'transport_disabled' || err.code === 'upgrade_required' || err.code === 'bad_transport')) {
      this._demote(t, err.code);
      return;
    }
    /* The gateway closed the WebSocket itself, saying "later" (1013 over
       capacity, 1012 restarting, 1001 going away): the transport works
       here, the gateway is busy. */
    if (err && (err.closeCode === 1013 || err.closeCode === 1012 || err.closeCode === 1001)) {
      this._retry();
      return;
    }
    if (opened || t === 'poll' || t === 'longpoll') {
      /* it worked here before, or it is plain HTTP, whose errors we can
         read: the network or the gateway is away; retry the same */
      this._retry();
      return;
    }
    /* A ws/sse connection that never delivered its welcome. A proxy that
       blocks upgrades or buffers streams, or the gateway being away: ask
       the gateway something plain to tell them apart. */
    this._setState('reconnecting');
    var gen = ++this._gen;
    this._aux = request(this, 'GET', this.url + '/healthz', {timeout: this.options.requestTimeout}, function (perr, status) {
      if (gen !== self._gen || self._closed) { return; }
      self._aux = null;
      if (perr || status === 0 || status >= 500) {
        self._retry();
        return;
      }
      /* The gateway answers plain HTTP, so this transport is what fails
         here. One that worked before gets a second chance. */
      self._strikes[t] = (self._strikes[t] || 0) + 1;
      if (self._worked[t] && self._strikes[t] < 2) {
        self._retry();
      } else {
        self._demote(t, err && err.code || 'failed');
      }
    });
  };

  /* The connection the app knows as open is gone: tell it, once. */
  Client.prototype._lostConn = function (t, err) {
    var i, ch, info = {code: err && err.code, reason: err && err.message, closeCode: err && err.closeCode,
                       closeReason: err && err.closeReason, status: err && err.status, transport: t};
    this._resub = false;
    for (i = 0; i < this.channelList.length; i++) {
      ch = this.channels[this.channelList[i]];
      if (ch.state === 'subscribed') { this._chState(ch, 'subscribing', info); }
    }
    if (this.readyState !== 'open') { return; }
    this._lost = true;
    this.emit('close', {transport: t, code: info.code, reason: info.reason, closeCode: info.closeCode,
                        closeReason: info.closeReason, status: info.status});
  };

  Client.prototype._demote = function (t, why) {
    var avail = this._available();
    if (avail.length <= 1) {
      /* never give up the last one: keep retrying it */
      this._retry();
      return;
    }
    this.failed[t] = why;
    this.stats.fallbacks++;
    this._ti = 0;
    this._attempt = 0;
    this._setState('reconnecting');
    this._connect();
  };

  Client.prototype._retry = function () {
    var self = this, ceil, delay;
    if (this._closed) { return; }
    this.stats.reconnects++;
    this._setState('reconnecting');
    if (this._offline && offline()) {
      /* no network: 'online' will call; spend no attempt meanwhile */
      delay = this.options.reconnectDelayMax;
      this.emit('reconnecting', {attempt: this._attempt, delay: delay, transport: this.transport, offline: true});
    } else {
      ceil = Math.min(this.options.reconnectDelayMax, this.options.reconnectDelay * Math.pow(2, this._attempt));
      delay = Math.floor(Math.random() * ceil); /* full jitter */
      this._attempt++;
      this.emit('reconnecting', {attempt: this._attempt, delay: delay, transport: this.transport});
    }
    if (this._timer) { clearTimeout(this._timer); }
    this._timer = setTimeout(function () {
      self._timer = null;
      self._connect();
    }, delay);
  };

  /* Publish. ack(err, id, epoch, info) once the gateway has the message.
     Over the /ws socket while the client is on ws, over HTTP otherwise;
     see _pump for the order and the retries. */
  Client.prototype.publish = function (channel, event, data, opts, ack) {
    var job, self = this;
    if (typeof opts === 'function') { ack = opts; opts = null; }
    opts = opts || {};
    if (event === null || event === undefined) { event = 'message'; }
    if (!CHANNEL_RE.test(channel)) { throw new Error('anypush: bad channel name ' + channel); }
    if (!EVENT_RE.test(event)) { throw new Error('anypush: bad event name ' + event); }
    job = {channel: channel, event: event, exclude: !!(opts.excludeSender || opts.exclude_sender),
           binary: false, value: data, type: 'application/json', body: null, ack: ack || null,
           /* the same key on every try: the gateway stores it once */
           key: makeId(), timeout: opts.timeout || this.options.ackTimeout,
           deadline: null, dl: null, wait: null, busy: false, http: false, req: null,
           tries: 0, lastErr: null, done: false};
    if (typeof ArrayBuffer !== 'undefined' && data instanceof ArrayBuffer) {
      job.binary = true;
      job.type = 'application/octet-stream';
      job.body = data;
    } else if (opts.text && typeof data === 'string') {
      job.type = 'text/plain; charset=utf-8';
      job.body = data;
    } else {
      job.value = data === undefined ? null : data;
      job.body = JSON.stringify(job.value);
    }
    job.size = utf8len(job.body);
    if (this._pubq.length >= MAX_QUEUED) {
      if (ack) {
        setTimeout(function () {
          ack({code: 'queue_full', message: MAX_QUEUED + ' publishes already wait for their turn'});
        }, 0);
      }
      return self;
    }
    this._pubq.push(job);
    this._pump();
    return self;
  };

  /* How long one try of a publish waits for its answer: a third of
     ackTimeout, at least a second. */
  function attemptMs(client) {
    return Math.max(1000, Math.floor(client.options.ackTimeout / 3));
  }

  /* Where publishes go now: 'ws' (the /ws socket is up), 'wait' (on ws,
     between sockets: they are buffered) or 'http'. */
  Client.prototype._pubPath = function () {
    var t = this.transport, i;
    if (this._mux) { return 'ws'; }
    /* a shared connection is the hub's, under its client id */
    if (this._shared) { return 'http'; }
    if (this._closed || this.readyState === 'idle' || this.readyState === 'closed' || !this.channelList.length) {
      return 'http';
    }
    /* before the first connection: the one it will try first */
    for (i = 0; t === null && i < this.order.length; i++) {
      if (supported(this.order[i], this.options.env) && !this.failed[this.order[i]]) { t = this.order[i]; }
    }
    return t === 'ws' ? 'wait' : 'http';
  };

  /* Send what can go, in call order. The queue holds every publish not
     answered yet, oldest first. On the socket several are in flight (the
     gateway answers operations in order and stores a connection's
     publishes in that order, up to PUB_WINDOW); over HTTP one at a time,
     since two requests may be stored in either order (the gateway serves
     them on several threads), and a publish going over HTTP waits until
     those before it are answered. A publish not answered (a lost socket, a
     network error, no answer within attemptMs, a 5xx) is sent again with
     the same idempotency key until its ackTimeout, counted from its first
     sending, has passed; a gateway that honours keys (Idempotency-Key,
     "key") stores it once. */
  Client.prototype._pump = function () {
    var q = this._pubq, path, i, job, inflight = 0;
    if (this._pumping) { return; }
    this._pumping = true;
    try {
      path = this._pubPath();
      for (i = 0; i < q.length; i++) {
        job = q[i];
        if (job.busy) {
          if (job.http) { break; }
          inflight++;
          continue;
        }
        /* a retry waits its delay, and the ones after it wait for it */
        if (job.wait || (path === 'wait' && !job.viaHttp)) { break; }
        if (path === 'http' || job.viaHttp || job.size >= this._wsBig) {
          if (!inflight) { this._pubSend(job, null); }
          break;
        }
        if (inflight >= PUB_WINDOW) { break; }
        this._pubSend(job, this._mux);
        inflight++;
      }
    } finally {
      this._pumping = false;
    }
  };

  Client.prototype._pubSend = function (job, mux) {
    var self = this;
    job.busy = true;
    job.tries++;
    if (job.deadline === null) {
      job.deadline = now() + job.timeout;
      job.dl = setTimeout(function () {
        job.dl = null;
        var e = !job.busy && job.lastErr ? job.lastErr :
          {code: 'timeout', message: 'no answer within ' + job.timeout + ' ms (' + job.tries + ' tries)'};
        self._pubDone(job, e);
      }, job.timeout);
    }
    if (mux) {
      job.http = false;
      mux.publish(job);
      return;
    }
    job.http = true;
    this._pubHttp(job);
  };

  Client.prototype._authorize = function (headers) {
    if (this._token) { headers.Authorization = 'Bearer ' + this._token; }
    return headers;
  };

  Client.prototype._pubHttp = function (job) {
    var self = this, url, left = job.deadline - now();
    url = this.url + '/channels/' + job.channel + '?event=' + job.event + (job.exclude ? '&exclude_sender=1' : '');
    job.req = request(this, 'POST', url, {
      headers: this._authorize({'Content-Type': job.type, 'X-Client-Id': this.id, 'Idempotency-Key': job.key}),
      body: job.body,
      timeout: Math.max(1, Math.min(left, attemptMs(this)))
    }, function (err, status, text, xhr) {
      var j = err ? null : parseJSON(text), replayed = false;
      job.req = null;
      job.busy = false;
      job.http = false;
      if (job.done) { return; }
      if (!err && status === 201 && j && j.id !== undefined) {
        try { replayed = xhr.getResponseHeader('Idempotent-Replayed') === 'true'; } catch (e) { /* ignore */ }
        self._pubDone(job, null, j.id, j.epoch, replayed);
      } else if (status === 429) {
        /* refused, not stored (a rate limit): again after Retry-After,
           within the publish's own deadline */
        job.lastErr = errorOf(status, text);
        self._pubLater(job, retryAfterMs(xhr));
      } else if (err || status >= 500) {
        /* maybe stored, maybe not: again, with the same key */
        job.lastErr = err || errorOf(status, text);
        self._pubLater(job, err && err.code === 'timeout' ? 0 : Math.min(2000, 250 * Math.pow(2, job.tries - 1)));
      } else {
        self._pubDone(job, errorOf(status, text));
      }
    });
  };

  /* The answer to a publish on the socket: an ack, or an error frame. */
  Client.prototype._pubAnswer = function (job, f) {
    job.busy = false;
    if (job.done) { return; }
    if (f.type === 'ack') {
      this._pubDone(job, null, f.id, f.epoch, f.replayed === true);
    } else if (busyCode(f.code)) {
      /* not stored: again soon (the socket may be closed meanwhile;
         a rate limit refills within a second) */
      job.lastErr = {code: f.code, message: f.message || f.code};
      this._pubLater(job, f.code === 'rate_limited' || f.code === 'channel_rate_limited' ? 1000 : 500);
    } else {
      this._pubDone(job, {code: typeof f.code === 'string' ? f.code : 'error', message: f.message || f.code});
    }
  };

  Client.prototype._pubLater = function (job, ms) {
    var self = this;
    if (job.wait) { clearTimeout(job.wait); }
    job.wait = setTimeout(function () { job.wait = null; self._pump(); }, ms);
    this._pump();
  };

  /* The socket publishes were sent on is gone: their answers will not
     come. They go again, first in the queue as they were. tooBig: the
     gateway closed it for a frame over its --max-message (1009), one of
     theirs: they go over HTTP, where such a publish gets its own error
     (too_large) and the others are stored, and publishes as big as the
     smallest of them go over HTTP from now on. */
  Client.prototype._pubLost = function (tooBig) {
    var i, job;
    for (i = 0; i < this._pubq.length; i++) {
      job = this._pubq[i];
      if (job.busy && !job.http) {
        job.busy = false;
        job.lastErr = {code: 'network', message: 'the connection was lost before the ack'};
        if (tooBig) {
          job.viaHttp = true;
          if (job.size < this._wsBig) { this._wsBig = job.size; }
        }
      }
    }
  };

  Client.prototype._pubDone = function (job, err, id, epoch, replayed) {
    var i = indexOf(this._pubq, job);
    if (job.done) { return; }
    job.done = true;
    if (job.dl) { clearTimeout(job.dl); job.dl = null; }
    if (job.wait) { clearTimeout(job.wait); job.wait = null; }
    if (job.req) { job.req.abort(); job.req = null; }
    if (i >= 0) { this._pubq.splice(i, 1); }
    if (!err && job.exclude) { this._ownSent(job.channel, id, epoch); }
    /* TabLink.echo: what comes from us past this is a broadcast's */
    if (!err && !job.exclude && this._shared && hasOwn(this.channels, job.channel) && validId(id)) {
      this.channels[job.channel]._lastPub = {epoch: epoch, id: normId(id)};
    }
    /* the next ones first, so that a throwing ack stalls nothing */
    this._pump();
    if (!job.ack) { return; }
    if (err) {
      job.ack(err);
    } else {
      job.ack(null, id, epoch, {replayed: !!replayed, key: job.key, tries: job.tries});
    }
  };

  /* Publish to everyone on the channel but this client: the gateway leaves
     out every connection whose client id is this.id (X-Client-Id plus
     ?exclude_sender=1), whatever its transport. socket.io's
     socket.broadcast.emit. ack(err, id, epoch) as for publish. */
  Client.prototype.broadcast = function (channel, event, data, opts, ack) {
    var o = {}, k;
    if (typeof opts === 'function') { ack = opts; opts = null; }
    if (opts) {
      for (k in opts) { if (hasOwn(opts, k)) { o[k] = opts[k]; } }
    }
    o.excludeSender = true;
    return this.publish(channel, event, data, o, ack);
  };

  /* The ack of a broadcast: message id (of epoch) of channel name will
     never come here. Once the cursor reaches id - 1 of that epoch it moves
     on to id, so a resume does not ask for it (and, once it has left the
     history, is not told of a gap). Only then: messages before it may
     still be on their way. An id of another epoch than the channel's is of
     an incarnation we have not reached: the gap into it covers it. */
  Client.prototype._ownSent = function (name, id, epoch) {
    var ch = hasOwn(this.channels, name) ? this.channels[name] : null, k;
    if (!ch || !validId(id) || !validEpoch(epoch)) { return; }
    if (ch.epoch !== null && ch.epoch !== epoch) { return; }
    id = normId(id);
    if (ch._ownEpoch !== epoch) {
      ch._own = {};
      ch._nown = 0;
      ch._ownEpoch = epoch;
    }
    if (ch.epoch === epoch && ch.id !== null && cmpId(id, ch.id) <= 0) { return; }
    if (ch._nown >= 256) {
      /* forget the ones a gap skipped */
      for (k in ch._own) { if (hasOwn(ch._own, k) && ch.id !== null && cmpId(k, ch.id) <= 0) { delete ch._own[k]; ch._nown--; } }
      if (ch._nown >= 256) { return; }
    }
    if (!ch._own[id]) { ch._own[id] = true; ch._nown++; }
    this._skipOwn(ch);
  };

  Client.prototype._skipOwn = function (ch) {
    var n, id = ch.id;
    if (id === null || !ch._nown || ch.epoch !== ch._ownEpoch) { return; }
    n = incId(id);
    while (hasOwn(ch._own, n)) {
      delete ch._own[n];
      ch._nown--;
      id = n;
      n = incId(n);
    }
    if (id !== ch.id) { this._setPos(ch, ch.epoch, id); }
  };

  Client.prototype.close = function () {
    var i;
    if (this._closed) { return; }
    var wasOpen = this.readyState === 'open';
    this._closed = true;
    this._resub = false;
    this._lost = false;
    this._drop();
    if (this._shared) { this._shared.stop(); }
    this._listenNetwork(false);
    if (this._timer) { clearTimeout(this._timer); this._timer = null; }
    if (this._pendingConnect) { clearTimeout(this._pendingConnect); this._pendingConnect = null; }
    this._setState('closed');
    if (wasOpen) { this.emit('close', {transport: this.transport, code: 'client', reason: 'closed by the client'}); }
    for (i = 0; i < this.channelList.length; i++) {
      this._chState(this.channels[this.channelList[i]], 'unsubscribed', {code: 'client', reason: 'closed by the client'});
    }
  };

  /* Open a closed client again, with its channels and their cursors. */
  Client.prototype.connect = function () {
    var i;
    if (!this._closed) { return this; }
    this._closed = false;
    if (this._shared && !this._shared.start()) { this._shared = null; }
    this._attempt = 0;
    this._listenNetwork(true);
    this._setState(this.channelList.length ? 'connecting' : 'idle');
    for (i = 0; i < this.channelList.length; i++) {
      this._chState(this.channels[this.channelList[i]], 'subscribing', {code: 'connect', reason: 'connect() was called'});
    }
    this._schedule('connect');
    return this;
  };

  /* The browser's network and page events, where it has them: 'online'
     reconnects at once (no backoff left to wait), 'offline' drops the
     connection, which cannot work, and waits for 'online' without
     spending attempts (one try per reconnectDelayMax meanwhile, in case
     the browser was wrong), and a page that becomes visible again
     retries now instead of at the end of its backoff. */
  Client.prototype._listenNetwork = function (on) {
    var self = this, w = typeof window !== 'undefined' ? window : null,
        d = typeof document !== 'undefined' ? document : null;
    if (on && !this._net && w && typeof w.addEventListener === 'function') {
      this._net = {
        online: function () { self._network('online'); },
        offline: function () { self._network('offline'); },
        visible: function () { if (!d.hidden) { self._network('visible'); } }
      };
      w.addEventListener('online', this._net.online, false);
      w.addEventListener('offline', this._net.offline, false);
      if (d && typeof d.addEventListener === 'function' && d.hidden !== undefined) {
        d.addEventListener('visibilitychange', this._net.visible, false);
      }
    } else if (!on && this._net) {
      w.removeEventListener('online', this._net.online, false);
      w.removeEventListener('offline', this._net.offline, false);
      if (d && typeof d.removeEventListener === 'function') {
        d.removeEventListener('visibilitychange', this._net.visible, false);
      }
      this._net = null;
    }
  };

  /* navigator.onLine, where the browser has it */
  function offline() {
    return typeof navigator !== 'undefined' && navigator.onLine === false;
  }

  Client.prototype._network = function (what) {
    var self = this, delay;
    /* a shared connection is the hub's: its client sees the network */
    if (this._shared) { return; }
    if (this._closed || !this.channelList.length || this.readyState === 'closed' || this.readyState === 'idle') {
      this._offline = what === 'offline';
      return;
    }
    if (what === 'offline') {
      this._offline = true;
      this._drop();
      this._lostConn(this.transport, {code: 'offline', message: 'the browser is offline'});
      if (this._timer) { clearTimeout(this._timer); }
      delay = this.options.reconnectDelayMax;
      this._setState('reconnecting');
      this.emit('reconnecting', {attempt: this._attempt, delay: delay, transport: this.transport, offline: true});
      this._timer = setTimeout(function () { self._timer = null; self._connect(); }, delay);
      return;
    }
    if (what === 'online') {
      this._offline = false;
      this._attempt = 0;
    }
    /* back online, or visible again: a reconnect waiting for its time
       goes now */
    if (this.readyState === 'reconnecting' && this._timer) {
      clearTimeout(this._timer);
      this._timer = null;
      this._connect();
    }
  };

  /* A watchdog: fn() after ms of silence; kick() restarts the count. */
  function watchdog(ms, fn) {
    var timer = null, w = {
      kick: function () {
        if (timer) { clearTimeout(timer); }
        timer = setTimeout(function () { timer = null; fn(); }, ms);
      },
      stop: function () { if (timer) { clearTimeout(timer); timer = null; } }
    };
    w.kick();
    return w;
  }

  function silenceMs(client) {
    /* more than two heartbeat intervals, plus slack for the gateway's tick */
    return client.heartbeat * 2000 + 2000;
  }

  /* ------------------------------------------------------------------ */
  /* Transports. Each returns {close(), listen?(name)}.                  */

  var TRANSPORTS = {};

  /* The multiplexed WebSocket, /ws: one socket for every channel. After
     the welcome, each channel is a subscribe operation with its cursor as
     `since`; a channel added or left later is one operation more, so the
     set changes without a new connection. The gateway answers every
     operation in order (ack or error, same ref). A channel's messages are
     taken only once its subscribe is acknowledged on this socket: frames
     of it before that are from a subscription already left. No hello:
     binary messages come as base64 envelopes, as on every transport (the
     client hands `data` on as the gateway sends it). The per-channel URL
     (/channels/a,b?transport=ws) is not used: /ws is on every gateway this
     client speaks to, and turned off only with ws itself. */
  TRANSPORTS.ws = function (client, ctx) {
    var G = client.options.env || global(), ws, opened = false, welcomed = false, dog, ackDog = null;
    var refs = {}, nextRef = 1, subs = newMap(), waiting = 0, pubs = 0, hello = null, conn;
    function stopDogs() {
      if (dog) { dog.stop(); }
      if (ackDog) { ackDog.stop(); ackDog = null; }
    }
    function shut(code) {
      stopDogs();
      if (ws) {
        ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
        try { ws.close(code); } catch (e) { /* ignore */ }
        ws = null;
      }
    }
    function fail(err) {
      shut();
      client._fail('ws', err, welcomed, ctx);
    }
    function send(frame, bin) {
      var text = JSON.stringify(frame);
      try {
        ws.send(text);
        if (bin !== undefined) { ws.send(bin); }
      } catch (e) {
        setTimeout(function () { if (ws && ctx.live()) { fail({code: 'closed', message: String(e && e.message || e)}); } }, 0);
        return;
      }
      client.stats.bytes += utf8len(text);
    }
    function op(frame, what, bin) {
      var ref = nextRef++;
      frame.ref = ref;
      refs[ref] = what;
      send(frame, bin);
      return ref;
    }
    function subscribe(ch, initial) {
      var f = {op: 'subscribe', channel: ch.name};
      if (ch.cursor !== null) { f.since = ch.cursor; }
      if (client.options.presence) { f.presence = true; }
      subs[ch.name] = {ch: ch, acked: false};
      if (initial) { waiting++; }
      op(f, {kind: 'sub', ch: ch, initial: initial, resume: ch.cursor !== null});
    }
    /* Publishes wait for their acks: no ack for ackTimeout / 3 (1 s at
       least) while one is due, and the link is taken for dead. The
       publishes are sent again, with their keys, on the next socket. */
    function ackWait() {
      if (!pubs) {
        if (ackDog) { ackDog.stop(); ackDog = null; }
        return;
      }
      if (ackDog) { ackDog.kick(); return; }
      ackDog = watchdog(attemptMs(client), function () {
        ackDog = null;
        fail({code: 'ack_timeout', message: 'no publish ack within ' + attemptMs(client) + ' ms'});
      });
    }
    function openNow() {
      if (opened || waiting) { return; }
      opened = true;
      client._opened(ctx, hello);
    }
    function answer(f) {
      var w = validId(f.ref) && hasOwn(refs, f.ref) ? refs[f.ref] : null, s, p;
      if (!w) { return; }
      delete refs[f.ref];
      if (w.kind === 'pub') {
        pubs--;
        ackWait();
        client._pubAnswer(w.job, f);
        return;
      }
      if (w.kind !== 'sub') { return; }
      if (w.initial) { waiting--; }
      s = hasOwn(subs, w.ch.name) && subs[w.ch.name].ch === w.ch ? subs[w.ch.name] : null;
      if (s && f.type === 'ack') {
        s.acked = true;
        p = typeof f.cursor === 'string' ? parseCursor(f.cursor) : null;
        if (p && client.channels[w.ch.name] === w.ch) { client._at(w.ch, p.epoch, p.id); }
        client._chState(w.ch, 'subscribed', {recovered: w.resume, cursor: w.ch.cursor, transport: 'ws'});
      } else if (s) {
        delete subs[w.ch.name];
        client._subRefused(w.ch, f);
      }
      if (ctx.live()) { openNow(); }
    }
    /* a frame of a channel this socket has an acknowledged subscription to */
    function mine(f) {
      return typeof f.channel === 'string' && hasOwn(subs, f.channel) && subs[f.channel].acked;
    }
    client.stats.requests++;
    try {
      ws = new G.WebSocket(client.url.replace(/^http/, 'ws') + '/ws?' + client._who().slice(1), 'anypush.v1');
    } catch (e) {
      setTimeout(function () { fail({code: 'ws_failed', message: String(e && e.message || e)}); }, 0);
      return {close: function () {}};
    }
    dog = watchdog(client.options.openTimeout, function () {
      fail({code: 'open_timeout', message: 'no welcome within ' + client.options.openTimeout + ' ms'});
    });
    ws.onmessage = function (e) {
      var f, i;
      if (!ctx.live()) { return; }
      client.stats.bytes += utf8len(e.data);
      if (typeof e.data !== 'string') { return; }
      f = parseJSON(e.data);
      if (!f || typeof f !== 'object') { return; }
      if (f.type === 'welcome') {
        if (welcomed) { return; }
        welcomed = true;
        hello = f;
        client._welcomed(f);
        dog.stop();
        dog = watchdog(silenceMs(client), function () {
          fail({code: 'silence', message: 'no frame for two heartbeats'});
        });
        for (i = 0; i < client.channelList.length; i++) { subscribe(client.channels[client.channelList[i]], true); }
        client._mux = conn;
        openNow();
        /* after the subscribes: the client's own publishes reach it */
        client._pump();
        return;
      }
      if (dog && welcomed) { dog.kick(); }
      if (f.type === 'ack' || f.type === 'error') {
        answer(f);
      } else if (f.type === 'message') {
        if (mine(f)) { client._message(ctx, f); }
      } else if (f.type === 'gap') {
        if (mine(f)) { client._gap(ctx, f); }
      } else if (f.type === 'cursor') {
        if (mine(f)) { client._cursorFrame(ctx, f); }
      }
    };
    ws.onerror = function () { /* onclose follows */ };
    ws.onclose = function (e) {
      if (e.code === 1009) { client._mux1009 = true; }
      fail({code: welcomed ? 'closed' : 'ws_failed', message: 'WebSocket closed (' + e.code + (e.reason ? ' ' + e.reason : '') + ')',
            wsCode: e.code, closeCode: e.code, closeReason: e.reason || ''});
    };
    conn = {
      mux: true,
      close: function () { shut(1000); },
      /* a channel added while connected; before the welcome, the welcome
         subscribes every channel of the list */
      sub: function (ch) {
        if (welcomed && ws && !hasOwn(subs, ch.name)) { subscribe(ch, false); }
      },
      unsub: function (name) {
        if (!welcomed || !ws || !hasOwn(subs, name)) { return; }
        delete subs[name];
        op({op: 'unsubscribe', channel: name}, {kind: 'unsub'});
      },
      publish: function (job) {
        var f = {op: 'publish', channel: job.channel, event: job.event, key: job.key};
        if (job.exclude) { f.exclude_sender = true; }
        if (job.binary) {
          f.binary = true;
        } else {
          f.data = job.value;
        }
        pubs++;
        op(f, {kind: 'pub', job: job}, job.binary ? job.value : undefined);
        ackWait();
      }
    };
    return conn;
  };

  TRANSPORTS.sse = function (client, ctx) {
    var G = client.options.env || global(), es, opened = false, dog, k;
    function fail(err) {
      if (dog) { dog.stop(); }
      if (es) { try { es.close(); } catch (e) { /* ignore */ } es = null; }
      client._fail('sse', err, opened, ctx);
    }
    /* The event name is the publisher's choice, so it decides nothing on
       its own: a message envelope is a message whatever it is called, and
       only data of the gateway's shapes is a welcome or a gap. The id:
       line is the gateway's: the full cursor after the event. */
    function handler(e) {
      var d;
      if (!ctx.live() || !es) { return; }
      client.stats.bytes += utf8len(e.data);
      if (opened) { dog.kick(); }
      d = parseJSON(e.data);
      if (!d || typeof d !== 'object') { return; }
      if (d.type === 'message') {
        client._message(ctx, d);
      } else if (e.type === 'welcome' && !opened && d.type === undefined && typeof d.client === 'string') {
        opened = true;
        client._cursorText(ctx, typeof d.cursor === 'string' ? d.cursor : e.lastEventId);
        client._opened(ctx, d);
        dog.stop();
        /* The gateway sends its heartbeat as an "event: ping" too
           (EventSource hides comments), so silence past two heartbeats
           means a dead stream: reopen with the cursor, losing nothing. */
        dog = watchdog(silenceMs(client), function () {
          fail({code: 'silence', message: 'no event for two heartbeats'});
        });
      } else if (e.type === 'gap') {
        client._gap(ctx, d);
      }
      if (opened && e.lastEventId) { client._cursorText(ctx, e.lastEventId); }
    }
    client.stats.requests++;
    try {
      /* EventSource dispatches a named event only to listeners of that
         name and has no wildcard: ask for messages unnamed (they come as
         'message', the envelope names them), so that '*' and 'message'
         handlers get all of them and the cursor moves on each. A gateway
         without sse_events names them: the listeners per name below
         still get the names the app listens to. */
      es = new G.EventSource(client.url + client._path() + client._query('sse') + '&sse_events=0');
    } catch (e) {
      setTimeout(function () { fail({code: 'sse_failed', message: String(e && e.message || e)}); }, 0);
      return {close: function () {}};
    }
    /* 'error' is onerror's, below */
    for (k in client._events) {
      if (k !== 'error') { es.addEventListener(k, handler, false); }
    }
    es.addEventListener('ping', handler, false);
    dog = watchdog(client.options.openTimeout, function () {
      fail({code: 'open_timeout', message: 'no welcome within ' + client.options.openTimeout + ' ms'});
    });
    es.onerror = function (e) {
      /* A server event named 'error' (another server, an older gateway)
         comes here too: it has data, a transport error has none. */
      if (e && typeof e.data === 'string') { handler(e); return; }
      /* The browser would reconnect by itself with Last-Event-ID after a
         fixed 2 s; we reconnect ourselves, with backoff and our cursor. */
      if (!ctx.live()) { return; }
      fail({code: opened ? 'closed' : 'sse_failed', message: 'event stream ' + (opened ? 'ended' : 'failed')});
    };
    return {
      close: function () {
        if (dog) { dog.stop(); }
        if (es) { try { es.close(); } catch (e) { /* ignore */ } es = null; }
      },
      listen: function (name) { if (es && name !== 'error') { es.addEventListener(name, handler, false); } }
    };
  };

  /* poll and longpoll: one request at a time, the next one only after the
     previous reply. */
  function httpTransport(t) {
    return function (client, ctx) {
      var req = null, timer = null, opened = false, stopped = false;
      function stop() {
        stopped = true;
        if (req) { req.abort(); req = null; }
        if (timer) { clearTimeout(timer); timer = null; }
      }
      function ask() {
        var url = client.url + client._path() + client._query(t), to = client.options.requestTimeout, hold;
        timer = null;
        if (stopped || !ctx.live()) { return; }
        if (t === 'longpoll') {
          /* the first request of a connection holds only a second: it
             tells us soon that long polling works here (and where the
             tail is); the next ones hold the full time */
          hold = opened ? client.options.longpollTimeout : 1;
          url += '&timeout=' + hold;
          to = hold * 1000 + client.options.requestTimeout;
        }
        req = request(client, 'GET', url, {timeout: to}, function (err, status, text, xhr) {
          var j, more;
          req = null;
          if (stopped || !ctx.live()) { return; }
          if (err) { stop(); client._fail(t, err, opened, ctx); return; }
          j = parseJSON(text);
          if (status !== 200 || !j || !isArray(j.messages)) {
            stop();
            client._fail(t, errorOf(status, text), opened, ctx);
            return;
          }
          if (!opened) {
            opened = true;
            var id = null;
            try { id = xhr.getResponseHeader('X-Client-Id'); } catch (e) { /* ignore */ }
            client._opened(ctx, id ? {client: id} : null);
            if (!ctx.live()) { return; }
          }
          /* nothing thrown while delivering may end the loop: the next
             request resumes at the cursor, so nothing is lost either */
          try {
            more = client._reply(ctx, j);
          } catch (e) {
            more = false;
            if (typeof setTimeout === 'function') { setTimeout(function () { throw e; }, 0); }
          }
          if (stopped || !ctx.live()) { return; }
          if (more || t === 'longpoll') {
            timer = setTimeout(ask, 0);
          } else {
            timer = setTimeout(ask, client.options.pollInterval);
          }
        });
      }
      ask();
      return {close: stop};
    };
  }
  TRANSPORTS.longpoll = httpTransport('longpoll');
  TRANSPORTS.poll = httpTransport('poll');

  /* A poll / long-poll reply:
     {"messages":[...],"next":"CURSOR"[,"gap":true,"gaps":[...]][,"more":true]}
     The gaps name the channels that lost messages and where each resumes;
     they come before that channel's messages here. */
  Client.prototype._reply = function (ctx, j) {
    var i;
    if (isArray(j.gaps)) {
      for (i = 0; i < j.gaps.length; i++) {
        this._gap(ctx, j.gaps[i]);
        if (!ctx.live()) { return false; }
      }
    }
    for (i = 0; i < j.messages.length; i++) {
      this._message(ctx, j.messages[i]);
      if (!ctx.live()) { return false; }
    }
    this._cursorText(ctx, j.next);
    return !!j.more;
  };

  /* ------------------------------------------------------------------ */
  /* Shared: one connection per origin for every tab (options.shared).   */

  /* A browser opens six HTTP/1.1 connections per host: six tabs, each
     holding an event stream or a long poll, took them all and a seventh
     hung (issue 13). With `shared`, the tabs' clients of one gateway and
     one set of options hand their channels to a hub that holds one
     connection (an inner Client) for the union of them, and relays each
     channel's messages, gaps and cursors to the tabs on it. The hub runs
     in a SharedWorker (this very file, loaded as the worker's script)
     where the browser has one, else in a tab elected leader over
     BroadcastChannel (or `storage` events). Each tab keeps its own
     Client: its channels, cursors, duplicates, gaps, handlers, states
     and publishes (over HTTP with its own client id) are its own. */

  /* ms between a tab's pings to the hub and the leader's heartbeats */
  var PING_MS = 1000;
  /* a tab silent this long is gone (closed without pagehide) */
  var TAB_TIMEOUT = 5000;
  /* a leader silent this long is gone: the others elect a new one */
  var LEAD_TIMEOUT = 3500;
  /* the same for a hidden page: Chrome runs its timers once a minute
     after five minutes hidden, and its pings would come that seldom */
  var HIDDEN_TIMEOUT = 130000;
  /* ms for a SharedWorker to answer the first hello before the tabs
     elect a leader instead (a script that is not this file) */
  var WORKER_MS = 3000;
  /* what a claim waits for a lower tab id's claim before leading */
  var CLAIM_MS = 250;
  /* options a shared connection is made with: tabs share one only when
     these are equal (with the gateway's URL) */
  var SHARED_OPTS = ['transports', 'openTimeout', 'pollInterval', 'longpollTimeout', 'requestTimeout',
                     'reconnectDelay', 'reconnectDelayMax', 'upgradeDelay', 'heartbeat'];

  /* the URL of this file as a <script>, the SharedWorker's default
     script; not a bundle's (a file named otherwise), which would run the
     app in the worker */
  var SCRIPT_URL = typeof document !== 'undefined' && document.currentScript &&
    /\/anypush[A-Za-z0-9_.-]*\.js([?#].*)?$/.test(document.currentScript.src || '') ? document.currentScript.src : null;

  function pageHidden() {
    return typeof document !== 'undefined' && document.hidden === true;
  }

  function later(fn, arg) { setTimeout(function () { fn(arg); }, 0); }

  function sharedOpts(options) {
    var o = {}, i;
    for (i = 0; i < SHARED_OPTS.length; i++) { o[SHARED_OPTS[i]] = options[SHARED_OPTS[i]]; }
    return o;
  }

  function sharedKey(url, options) {
    return 'anypush:' + url + ' ' + JSON.stringify(sharedOpts(options));
  }

  /* A tab's cursor p is behind the hub's channel ich (or of another
     epoch): the hub must go back to it, or the tab would miss messages. */
  function behind(p, ich) {
    if (ich.id === null) { return true; }
    if (p.epoch !== null && ich.epoch !== null && p.epoch !== ich.epoch) { return true; }
    return cmpId(p.id, ich.id) < 0;
  }

  /* the storage-event buses of this document: 'storage' events reach the
     other documents of the origin only */
  var localBuses = [];

  /* BroadcastChannel where the browser has it, else localStorage's
     'storage' events. onmsg(data) for each message of another bus of that
     name (another tab, or another client of this page). null: neither. */
  function makeBus(name, onmsg) {
    var G = global(), bc, w = typeof window !== 'undefined' ? window : null, ls = null, on, me;
    if (typeof G.BroadcastChannel === 'function') {
      bc = new G.BroadcastChannel(name);
      bc.onmessage = function (e) { onmsg(e.data); };
      return {post: function (m) { bc.postMessage(m); }, close: function () { bc.close(); }};
    }
    try { ls = w && w.localStorage; } catch (e) { ls = null; }
    if (!ls || typeof w.addEventListener !== 'function') { return null; }
    on = function (e) {
      var d;
      if (e.key !== name || !e.newValue) { return; }
      d = parseJSON(e.newValue);
      if (d && typeof d === 'object') { onmsg(d.m); }
    };
    w.addEventListener('storage', on, false);
    me = {
      name: name,
      on: on,
      post: function (m) {
        /* a nonce makes every value new, so every post is an event; the
           item is removed at once (that event has no newValue) */
        var text = JSON.stringify({m: m, n: makeId()}), i;
        try { ls.setItem(name, text); ls.removeItem(name); } catch (e) { /* full */ }
        for (i = 0; i < localBuses.length; i++) {
          if (localBuses[i] !== me && localBuses[i].name === name) { later(localBuses[i].on, {key: name, newValue: text}); }
        }
      },
      close: function () {
        var i = indexOf(localBuses, me);
        if (i >= 0) { localBuses.splice(i, 1); }
        w.removeEventListener('storage', on, false);
      }
    };
    localBuses.push(me);
    return me;
  }

  /* The hub: one inner Client for the union of the tabs' channels.
     send(via, msg) hands msg to a tab (via: its MessagePort, or null on
     the BroadcastChannel). Tab -> hub: {tab, t: 'hello' | 'sub' (ch, cur,
     s) | 'unsub' (ch) | 'ping' | 'bye'}. Hub -> tab: {to, t: 'ev' (name,
     a, state, transport) | 'live' | 'at' | 'msg' | 'gap' | 'chs' |
     'refused' | 'who'}; s is the tab's number for its subscription, so a
     relay for an earlier one is dropped. A tab's channel is live once the
     hub's connection serves it from the tab's cursor on: from then on it
     gets the channel's messages, gaps and cursor moves. */
  function Hub(url, opts, send) {
    var self = this, inner, at, names = ['open', 'close', 'reconnecting', 'error'], i;
    this.sendVia = send;
    this.tabs = newMap();
    this.quiet = false;
    inner = this.inner = new Client(url, extend(extend({}, opts), {shared: false}));
    /* cursor moves without a message (a welcome's, an ack's, a poll's
       next, an SSE id, a cursor frame) go to the live tabs too: a tab that
       takes over resumes from them */
    at = inner._at;
    inner._at = function (ch, epoch, id) {
      var before = ch.cursor;
      at.call(inner, ch, epoch, id);
      if (ch.cursor === before) { return; }
      self.each(ch.name, true, function (t, s) {
        self.send(t, {t: 'at', ch: ch.name, s: s.s, epoch: ch.epoch, id: ch.id});
      });
    };
    function relay(name) { inner.on(name, function (a) { self.ev(name, a); }); }
    for (i = 0; i < names.length; i++) { relay(names[i]); }
    this.timer = setInterval(function () { self.sweep(); }, PING_MS);
  }

  Hub.prototype.send = function (t, msg) {
    msg.to = t.id;
    this.sendVia(t.via, msg);
  };

  /* fn(tab, sub) for each tab on channel name (the live ones only) */
  Hub.prototype.each = function (name, liveOnly, fn) {
    var k, t;
    for (k in this.tabs) {
      t = this.tabs[k];
      if (hasOwn(t.subs, name) && (!liveOnly || t.subs[name].live)) { fn(t, t.subs[name]); }
    }
  };

  /* an event of the inner client, to every tab with a channel (an error
     of one channel to its tabs) */
  Hub.prototype.ev = function (name, a) {
    var k, t;
    /* the 'close' of its own end is no tab's business */
    if (this.closed) { return; }
    for (k in this.tabs) {
      t = this.tabs[k];
      if (!t.n || (name === 'error' && a && a.channel && !hasOwn(t.subs, a.channel))) { continue; }
      this.send(t, {t: 'ev', name: name, a: a, state: this.inner.readyState, transport: this.inner.transport});
    }
  };

  Hub.prototype.onMsg = function (d, via) {
    var t;
    if (!d || typeof d !== 'object' || typeof d.tab !== 'string') { return; }
    t = hasOwn(this.tabs, d.tab) ? this.tabs[d.tab] : null;
    if (!t) {
      /* a tab this hub does not know (it was taken for gone, or spoke to
         the hub before this one): it says everything again */
      if (d.t !== 'hello') { this.sendVia(via, {t: 'who', to: d.tab}); return; }
      t = this.tabs[d.tab] = {id: d.tab, via: via, subs: newMap(), n: 0, seen: 0, slow: false};
    }
    t.seen = now();
    t.via = via;
    if (d.t === 'hello') {
      this.unsubAll(t);
      this.send(t, {t: 'hi'});
    } else if (d.t === 'ping') {
      t.slow = d.hidden === true;
    } else if (d.t === 'sub') {
      this.sub(t, d.ch, d.cur, d.s);
    } else if (d.t === 'unsub') {
      this.unsub(t, d.ch);
    } else if (d.t === 'bye') {
      this.unsubAll(t);
      delete this.tabs[t.id];
    }
  };

  Hub.prototype.sub = function (t, name, cur, s) {
    var inner = this.inner, ich, p = typeof cur === 'string' ? parseCursor(cur) : null;
    if (typeof name !== 'string' || !CHANNEL_RE.test(name)) { return; }
    if (!hasOwn(t.subs, name)) { t.n++; }
    t.subs[name] = {s: s, live: false};
    if (t.n === 1 && inner.readyState === 'open') {
      this.send(t, {t: 'ev', name: 'open', a: {}, state: 'open', transport: inner.transport});
    }
    ich = hasOwn(inner.channels, name) ? inner.channels[name] : null;
    if (!ich) {
      try {
        ich = inner.subscribe(name, p ? {since: cur} : {});
      } catch (e) {
        this.refused(name, {code: 'too_many_channels', message: String(e && e.message || e), channel: name});
        return;
      }
      this.hook(ich);
    } else if (p && behind(p, ich)) {
      this.rewind(ich, p);
    } else if (ich.state === 'subscribed') {
      this.live(t, ich);
    }
  };

  /* A tab resumes from a cursor behind the connection's: the channel is
     subscribed again from there. The tabs already on it get what they
     have seen again and drop it as duplicates (each by its own cursor). */
  Hub.prototype.rewind = function (ich, p) {
    var inner = this.inner;
    inner._setPos(ich, p.epoch, p.id);
    this.quiet = true;
    inner._chState(ich, 'subscribing', {code: 'rewind', reason: 'a tab resumes from an earlier cursor'});
    this.quiet = false;
    if (inner._conn && inner._conn.mux) {
      inner._conn.unsub(ich.name);
      inner._conn.sub(ich);
    } else {
      inner._drop();
      inner._schedule('subscribe');
    }
  };

  Hub.prototype.hook = function (ich) {
    var self = this, name = ich.name;
    ich.on('*', function (m) {
      self.each(name, true, function (t, s) { self.send(t, {t: 'msg', s: s.s, m: m}); });
    });
    ich.on('gap', function (g) {
      self.each(name, true, function (t, s) { self.send(t, {t: 'gap', s: s.s, g: g}); });
    });
    ich.on('subscribed', function () {
      self.each(name, false, function (t) { self.live(t, ich); });
    });
    ich.on('subscribing', function (info) {
      if (self.quiet) { return; }
      self.each(name, true, function (t, s) { self.send(t, {t: 'chs', ch: name, s: s.s, state: 'subscribing', info: info}); });
    });
    ich.on('unsubscribed', function (info) {
      /* refused by the gateway (a /ws subscribe error): info names it */
      if (info && info.channel) { self.refused(name, info); }
    });
  };

  Hub.prototype.refused = function (name, err) {
    var self = this;
    this.each(name, false, function (t, s) {
      self.send(t, {t: 'refused', ch: name, s: s.s, err: err});
      delete t.subs[name];
      t.n--;
    });
  };

  Hub.prototype.live = function (t, ich) {
    var s = hasOwn(t.subs, ich.name) ? t.subs[ich.name] : null;
    if (!s) { return; }
    s.live = true;
    this.send(t, {t: 'live', ch: ich.name, s: s.s, epoch: ich.epoch, id: ich.id, transport: this.inner.transport});
  };

  Hub.prototype.unsub = function (t, name) {
    var self = this;
    if (typeof name !== 'string' || !hasOwn(t.subs, name)) { return; }
    delete t.subs[name];
    t.n--;
    /* later: a tab that says everything again (hello, then its subs) takes
       its channels back without a new connection */
    setTimeout(function () {
      var k;
      for (k in self.tabs) { if (hasOwn(self.tabs[k].subs, name)) { return; } }
      if (!self.closed && hasOwn(self.inner.channels, name)) { self.inner.channels[name].unsubscribe(); }
    }, 0);
  };

  Hub.prototype.unsubAll = function (t) {
    var k;
    for (k in t.subs) { this.unsub(t, k); }
  };

  /* tabs closed without a word (a crash, no pagehide) */
  Hub.prototype.sweep = function () {
    var k, t, n = now();
    for (k in this.tabs) {
      t = this.tabs[k];
      if (t.seen < n - (t.slow ? HIDDEN_TIMEOUT : TAB_TIMEOUT)) {
        this.unsubAll(t);
        delete this.tabs[k];
      }
    }
  };

  Hub.prototype.close = function () {
    this.closed = true;
    clearInterval(this.timer);
    this.inner.close();
  };

  /* The hub of a SharedWorker: this file as the worker's script. */
  function workerMain(scope) {
    var hub = null;
    scope.onconnect = function (e) {
      var port = e.ports[0];
      port.onmessage = function (ev) {
        var d = ev.data;
        if (!d || typeof d !== 'object') { return; }
        if (!hub) {
          if (d.t !== 'hello' || typeof d.url !== 'string') { port.postMessage({t: 'who', to: d.tab}); return; }
          hub = new Hub(d.url, d.opts || {}, function (via, m) { via.postMessage(m); });
        }
        hub.onMsg(d, port);
      };
      port.start();
    };
  }

  /* A tab's side of the shared connection: speaks to the hub through a
     SharedWorker's port, or over the bus to the leader (maybe itself),
     and feeds what the hub relays into its Client. */
  function TabLink(c) {
    var self = this, w = typeof window !== 'undefined' ? window : null;
    this.stopped = false;
    this.c = c;
    this.tab = makeId();
    this.key = sharedKey(c.url, c.options);
    this.subs = newMap();     // channel -> the number of its sub, as sent
    this.resume = newMap();   // channel -> it was sent with a cursor
    this.seq = 0;
    this.port = null;
    this.bus = null;
    this.leader = null;       // the leader's tab id (this.tab when us)
    this.hub = null;          // ours, while we lead
    this.seen = 0;            // the leader's last heartbeat
    this.slow = false;        // the leader's page is hidden
    this.claiming = false;
    this.lowerAt = 0;         // when a lower tab id last claimed
    this.ctx = {transport: null, names: [], live: function () { return !c._closed; }};
    this.ok = this.start();
    if (this.ok && w && typeof w.addEventListener === 'function') {
      /* the page goes: the hub forgets this tab now, not after
         TAB_TIMEOUT, and a leader hands over at once; a page back from
         the back-forward cache joins again */
      w.addEventListener('pagehide', function () { self.stop(); }, false);
      w.addEventListener('pageshow', function (e) {
        if (e && e.persisted && self.stopped && !c._closed) { self.start(); }
      }, false);
    }
  }

  /* Find the hub (c.connect() after c.close() too). */
  TabLink.prototype.start = function () {
    var self = this;
    this.stopped = false;
    this.heard = false;
    this.leader = null;
    this.subs = newMap();
    if (!this.startWorker() && !this.startBus()) { return false; }
    this.timer = setInterval(function () { self.tick(); }, PING_MS);
    return true;
  };

  /* c.close() or pagehide: the hub drops this tab's channels; a leader
     hands over, and a closed client takes no part in elections. */
  TabLink.prototype.stop = function () {
    if (this.stopped) { return; }
    this.stopped = true;
    clearInterval(this.timer);
    if (this.hub) {
      this.bus.post({k: 'resign', id: this.tab});
      this.hub.close();
      this.hub = null;
    } else {
      this.up({t: 'bye'});
    }
    this.leader = null;
    this.subs = newMap();
    if (this.port) {
      try { this.port.close(); } catch (e) { /* ignore */ }
      this.port = null;
    }
    if (this.bus) { this.bus.close(); this.bus = null; }
  };

  TabLink.prototype.startWorker = function () {
    var G = global(), url = this.c.options.worker || SCRIPT_URL, w, self = this;
    if (typeof G.SharedWorker !== 'function' || !url) { return false; }
    try { w = new G.SharedWorker(url, this.key); } catch (e) { return false; }
    this.port = w.port;
    /* the script did not load: the tabs elect a leader instead */
    w.onerror = function () {
      if (self.port !== w.port || self.heard) { return; }
      self.port = null;
      if (!self.startBus()) { self.unshare(); }
    };
    w.port.onmessage = function (e) { self.down(e.data); };
    w.port.start();
    this.attach();
    setTimeout(function () {
      if (self.port !== w.port || self.heard) { return; }
      self.port = null;
      try { w.port.close(); } catch (e) { /* ignore */ }
      if (!self.startBus()) { self.unshare(); }
    }, WORKER_MS);
    return true;
  };

  TabLink.prototype.startBus = function () {
    var self = this;
    this.bus = makeBus(this.key, function (m) { self.onBus(m); });
    if (!this.bus) { return false; }
    this.bus.post({k: 'who'});
    setTimeout(function () { if (!self.leader) { self.claim(); } }, CLAIM_MS);
    return true;
  };

  /* neither a worker nor a bus: a connection of this tab's own */
  TabLink.prototype.unshare = function () {
    var c = this.c;
    clearInterval(this.timer);
    c._shared = null;
    c._schedule('subscribe');
  };

  /* to the hub */
  TabLink.prototype.up = function (msg) {
    var self = this, hub = this.hub;
    msg.tab = this.tab;
    if (this.port) {
      this.port.postMessage(msg);
    } else if (hub) {
      setTimeout(function () { if (self.hub === hub) { hub.onMsg(msg, null); } }, 0);
    } else if (this.leader && this.bus) {
      this.bus.post({k: 'up', d: msg});
    }
  };

  /* to a tab, from our hub; `from` lets a tab take only its leader's */
  TabLink.prototype.toTab = function (msg) {
    var self = this;
    if (msg.to === this.tab) {
      setTimeout(function () { if (self.leader === self.tab) { self.down(msg); } }, 0);
    } else if (this.bus) {
      this.bus.post({k: 'down', d: msg, from: this.tab});
    }
  };

  /* A (new) hub: say everything again, every channel from its cursor. */
  TabLink.prototype.attach = function () {
    this.subs = newMap();
    this.up({t: 'hello', url: this.c.url, opts: sharedOpts(this.c.options)});
    this.sync();
  };

  /* the hub to hold what the client's channel list says */
  TabLink.prototype.sync = function () {
    var c = this.c, i, name, k;
    if (c._closed) { return; }
    for (i = 0; i < c.channelList.length; i++) {
      name = c.channelList[i];
      if (!hasOwn(this.subs, name)) {
        this.subs[name] = ++this.seq;
        this.resume[name] = c.channels[name].cursor !== null;
        this.up({t: 'sub', ch: name, cur: c.channels[name].cursor, s: this.seq});
      }
    }
    for (k in this.subs) {
      if (!hasOwn(c.channels, k)) { delete this.subs[k]; this.up({t: 'unsub', ch: k}); }
    }
    if (!c.channelList.length && c.readyState !== 'idle') {
      if (c.readyState === 'open') { c.emit('close', {transport: c.transport, code: 'idle', reason: 'no channel left'}); }
      c._setState('idle');
    } else if (c.channelList.length && c.readyState === 'idle') {
      c._setState('connecting');
    }
  };

  /* The hub went away (the leader tab closed): the app sees a 'close',
     and the channels resume from their cursors on the next hub. */
  TabLink.prototype.lost = function (code) {
    var c = this.c;
    this.leader = null;
    this.subs = newMap();
    if (c._closed) { return; }
    c._lostConn(c.transport, {code: code, message: 'the tab holding the shared connection is gone'});
    if (c.channelList.length) { c._setState('reconnecting'); }
  };

  TabLink.prototype.tick = function () {
    var hidden = pageHidden();
    if (this.port) { this.up({t: 'ping', hidden: hidden}); return; }
    if (this.hub) {
      this.bus.post({k: 'lead', id: this.tab, hidden: hidden});
    } else if (this.leader && now() - this.seen > (this.slow ? HIDDEN_TIMEOUT : LEAD_TIMEOUT)) {
      this.lost('leader_lost');
    }
    if (!this.leader) { this.claim(); return; }
    this.up({t: 'ping', hidden: hidden});
  };

  /* Election: a tab that claims leads unless a lower tab id claimed too
     (from a little before its claim, since the tabs notice a leader gone
     at different ticks), or a leader spoke meanwhile. Two leaders all the
     same (a claim crossed another): the lower id stays (onBus). */
  TabLink.prototype.claim = function () {
    var self = this;
    if (this.hub || this.claiming || !this.bus) { return; }
    this.claiming = true;
    this.bus.post({k: 'claim', id: this.tab});
    setTimeout(function () {
      self.claiming = false;
      if (self.stopped || self.leader || self.hub || now() - self.lowerAt < CLAIM_MS * 3) { return; }
      self.lead();
    }, CLAIM_MS);
  };

  TabLink.prototype.lead = function () {
    var self = this;
    this.hub = new Hub(this.c.url, sharedOpts(this.c.options), function (via, m) { self.toTab(m); });
    this.leader = this.tab;
    this.bus.post({k: 'lead', id: this.tab});
    this.attach();
  };

  TabLink.prototype.follow = function (id) {
    this.leader = id;
    this.seen = now();
    this.attach();
  };

  TabLink.prototype.onBus = function (m) {
    if (!m || typeof m !== 'object') { return; }
    if (m.k === 'who' || m.k === 'claim') {
      if (this.hub) { this.bus.post({k: 'lead', id: this.tab}); }
      if (m.k === 'claim' && typeof m.id === 'string' && m.id < this.tab) { this.lowerAt = now(); }
    } else if (m.k === 'lead' && typeof m.id === 'string' && m.id !== this.tab) {
      if (this.hub) {
        /* two leaders: the lower id stays */
        if (m.id > this.tab) { this.bus.post({k: 'lead', id: this.tab}); return; }
        this.hub.close();
        this.hub = null;
        this.lost('leader_changed');
      }
      this.seen = now();
      this.slow = m.hidden === true;
      if (this.leader !== m.id) {
        if (this.leader) { this.lost('leader_changed'); }
        this.follow(m.id);
      }
    } else if (m.k === 'resign' && m.id === this.leader && !this.hub) {
      this.lost('leader_gone');
      this.claim();
    } else if (m.k === 'up' && this.hub) {
      this.hub.onMsg(m.d, null);
    } else if (m.k === 'down' && m.from === this.leader) {
      this.down(m.d);
    }
  };

  /* From the hub. */
  TabLink.prototype.down = function (d) {
    var c = this.c, name, ch, g;
    if (!d || typeof d !== 'object' || d.to !== this.tab) { return; }
    if (d.t === 'who') { this.attach(); return; }
    if (d.t === 'hi') { this.heard = true; return; }
    if (c._closed) { return; }
    if (d.t === 'ev') { this.event(d); return; }
    name = d.t === 'msg' ? d.m && d.m.channel : d.ch;
    if (d.t === 'gap') { name = d.g && d.g.channel; }
    if (typeof name !== 'string' || !hasOwn(c.channels, name) || this.subs[name] !== d.s) { return; }
    ch = c.channels[name];
    this.ctx.transport = c.transport;
    if (d.t === 'msg') {
      if (!this.echo(ch, d.m)) { c._message(this.ctx, d.m); }
    } else if (d.t === 'gap') {
      g = extend({}, d.g);
      /* the hub's cursor was behind ours (another tab's): only what is
         past ours is lost to us */
      if (g.epoch === ch.epoch && ch.id !== null && validId(g.cursor)) {
        if (cmpId(g.cursor, ch.id) <= 0) { return; }
        if (validId(g.last_seen) && cmpId(g.last_seen, ch.id) < 0) { g.last_seen = ch.id; }
      }
      c._gap(this.ctx, g);
    } else if (d.t === 'at' || d.t === 'live') {
      /* a cursor of the epoch we are in, or where we start (no cursor) */
      if (d.id !== null && validId(d.id) && (ch.id === null || ch.epoch === null || ch.epoch === d.epoch)) {
        c._at(ch, validEpoch(d.epoch) ? d.epoch : null, normId(d.id));
      }
      if (d.t === 'live') {
        c._chState(ch, 'subscribed', {recovered: !!this.resume[name], cursor: ch.cursor, transport: d.transport});
      }
    } else if (d.t === 'chs') {
      c._chState(ch, d.state, d.info);
    } else if (d.t === 'refused') {
      delete this.subs[name];
      c.emit('error', extend({transport: c.transport}, d.err));
      c._unsubscribe(ch, d.err);
    }
  };

  /* The shared connection's client id is the hub's, so the gateway does
     not leave this tab's broadcasts out of it: drop them here. A message
     from this tab is a broadcast of its own when its ack said so, or when
     it is past every publish of ours acknowledged on the channel and the
     publish in flight (over HTTP: one at a time; maybe waiting to be
     sent again) is a broadcast there. */
  TabLink.prototype.echo = function (ch, m) {
    var c = this.c, job = c._pubq[0], id;
    if (!m || m.from !== c.id || !validId(m.id) || !validEpoch(m.epoch)) { return false; }
    id = normId(m.id);
    if (!(ch._ownEpoch === m.epoch && hasOwn(ch._own, id)) &&
        !(job && (job.busy || job.tries) && job.exclude && job.channel === ch.name &&
          (ch._lastPub === undefined || ch._lastPub.epoch !== m.epoch || cmpId(id, ch._lastPub.id) > 0))) {
      return false;
    }
    if (!(m.epoch === ch.epoch && ch.id !== null && cmpId(id, ch.id) <= 0)) {
      c._setPos(ch, m.epoch, id);
      c._skipOwn(ch);
    }
    return true;
  };

  /* An event of the hub's connection, as this tab's own. */
  TabLink.prototype.event = function (d) {
    var c = this.c, a = d.a || {}, wasLost;
    if (!c.channelList.length) { return; }
    if (typeof d.transport === 'string' && indexOf(ORDER, d.transport) >= 0) { c._setTransport(d.transport); }
    if (d.name === 'open') {
      if (c.readyState === 'open') { return; }
      wasLost = c._lost;
      c._lost = false;
      c._setState('open');
      c.emit('open', {transport: c.transport, reconnect: wasLost, cursor: c.cursor()});
    } else if (d.name === 'close') {
      c._lostConn(c.transport, {code: a.code, message: a.reason, closeCode: a.closeCode, closeReason: a.closeReason,
                                status: a.status});
      c._setState('reconnecting');
    } else if (d.name === 'reconnecting') {
      c._setState('reconnecting');
      c.emit('reconnecting', a);
    } else if (d.name === 'error') {
      c.emit('error', a);
    }
  };

  function shareLink(c) {
    var link = new TabLink(c);
    return link.ok ? link : null;
  }

  if (typeof SharedWorkerGlobalScope !== 'undefined' && typeof self !== 'undefined' &&
      self instanceof SharedWorkerGlobalScope) {
    workerMain(self);
  }

  /* ------------------------------------------------------------------ */

  function connect(baseUrl, opts) {
    return new Client(baseUrl, opts);
  }

  return {
    connect: connect,
    Client: Client,
    Channel: Channel,
    transports: ORDER.slice(),
    supported: supported,
    version: VERSION
  };
}));
