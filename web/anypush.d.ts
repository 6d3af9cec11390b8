// Type declarations for anypush.js, the browser client of the anypush
// gateway. They describe the ES5 file as it is (no build step): loaded by
// <script> it is the global `anypush`; by CommonJS or AMD it is the
// module. The comment block at the top of anypush.js is the reference;
// docs/client.md has the long form. Checked by tests/browser/t_types.js
// (tsc --noEmit --strict against an example).

declare namespace anypush {
  /** The protocol's transport names, best first. */
  type TransportName = 'ws' | 'sse' | 'longpoll' | 'poll';

  type ReadyState = 'connecting' | 'open' | 'reconnecting' | 'idle' | 'closed';

  /** A channel's subscription: ch.state, and the channel event of each change. */
  type SubscriptionState = 'subscribing' | 'subscribed' | 'unsubscribed';

  /** 'EPOCH:ID' ('k3x9a2bq:17'), or a plain 'ID' of the current epoch. */
  type Cursor = string;

  interface Options {
    /** The order to try; one name pins the client to that transport. */
    transports?: TransportName | TransportName[] | null;
    /** Announce this client on every channel (join / leave messages). */
    presence?: boolean;
    /** One connection per origin for every tab (SharedWorker, else a leader
     *  tab over BroadcastChannel); ignored with presence or env (false). */
    shared?: boolean;
    /** The SharedWorker script for shared: the URL of anypush.js (default:
     *  the src of the <script> that loaded it, when named anypush*.js). */
    worker?: string | null;
    /** [A-Za-z0-9_-]{1,64}; default: 22 random characters (with a token:
     *  the token's sub, as the gateway's welcome says). */
    clientId?: string | null;
    /** A JWT for a gateway with --token-secret-file, or a function that
     *  calls back with a fresh one; asked before every (re)connect. */
    token?: string | ((cb: (err: unknown, token?: string) => void) => void) | null;
    /** ms for a ws/sse connection to deliver its welcome (8000). */
    openTimeout?: number;
    /** ms between short polls (1000). */
    pollInterval?: number;
    /** s the gateway holds a long poll (25). */
    longpollTimeout?: number;
    /** ms for a poll request or a probe (15000). */
    requestTimeout?: number;
    /** ms a publish may take, retries included, from its first sending to its ack (10000). */
    ackTimeout?: number;
    /** ms, first reconnect backoff ceiling (500). */
    reconnectDelay?: number;
    /** ms, the backoff's ceiling (15000). */
    reconnectDelayMax?: number;
    /** ms on a fallback transport before the better ones are tried again (30000). */
    upgradeDelay?: number;
    /** s, until a welcome says otherwise (15). */
    heartbeat?: number;
    /** Where WebSocket, EventSource and XMLHttpRequest are looked up. */
    env?: {
      WebSocket?: unknown;
      EventSource?: unknown;
      XMLHttpRequest?: unknown;
    } | null;
  }

  interface SubscribeOptions {
    /** Resume after this cursor; '0' replays all the history kept. */
    since?: Cursor | null;
  }

  interface PublishOptions {
    /** ms for the ack; default: the client's ackTimeout. */
    timeout?: number;
    /** Send a string as text/plain instead of JSON. */
    text?: boolean;
    /** Everyone but this client (what broadcast() sets). */
    excludeSender?: boolean;
  }

  /** What every message arrives as. */
  interface Envelope<T = unknown> {
    type: 'message';
    channel: string;
    event: string;
    data: T;
    /** ms since the epoch, when the gateway stored it. */
    ts: number;
    /** The publisher's client id, when it gave one. */
    from?: string;
    /** The channel's incarnation. */
    epoch: string;
    /** Position in the channel, within the epoch. */
    id: number | string;
  }

  interface Presence {
    client: string;
    transport: TransportName;
  }

  interface GapInfo {
    channel: string;
    /** An id of the old cursor: what follows it is gone. */
    last_seen: number | string | null;
    /** Where the channel resumes. */
    cursor: number | string;
    epoch?: string;
    transport: TransportName;
  }

  interface ClientError {
    /** 'timeout', 'network', 'queue_full', or the gateway's error code. */
    code: string;
    message: string;
    status?: number;
  }

  interface AckInfo {
    /** The gateway answered a retry with the message it had stored under the key. */
    replayed: boolean;
    /** The publish's idempotency key (22 characters), the same on every try. */
    key: string;
    /** How many times it was sent. */
    tries: number;
  }

  type Ack = (err: ClientError | null, id?: number | string, epoch?: string, info?: AckInfo) => void;

  /** What a channel's 'subscribing', 'subscribed' and 'unsubscribed' events carry. */
  interface SubscriptionInfo {
    /** 'subscribed': it resumed from the channel's cursor (a 'gap' follows if some was lost). */
    recovered?: boolean;
    cursor?: Cursor | null;
    transport?: TransportName | null;
    /** Why: as in CloseEvent; 'unsubscribe', 'client', or the gateway's error code of a refused subscribe. */
    code?: string;
    reason?: string;
    closeCode?: number;
    closeReason?: string;
    status?: number;
  }

  interface OpenEvent {
    transport: TransportName;
    /** true when a 'close' came since the last 'open'. */
    reconnect: boolean;
    cursor: string;
  }

  interface CloseEvent {
    transport: TransportName | null;
    /** 'client' for close(), 'idle' when the last channel left, else why it was lost. */
    code?: string;
    reason?: string;
    /** The WebSocket close frame's code and reason, when there was one. */
    closeCode?: number;
    closeReason?: string;
    /** The HTTP status of an error reply (code is its JSON error code). */
    status?: number;
  }

  interface ReconnectingEvent {
    attempt: number;
    delay: number;
    transport: TransportName | null;
    /** The browser is offline: 'online' reconnects at once. */
    offline?: boolean;
  }

  interface ErrorEvent {
    code: string;
    message: string;
    transport?: TransportName | null;
    closeCode?: number;
    closeReason?: string;
    /** The channel of a /ws subscribe the gateway refused. */
    channel?: string;
  }

  interface Stats {
    requests: number;
    bytes: number;
    messages: number;
    duplicates: number;
    gaps: number;
    reconnects: number;
    fallbacks: number;
    bad: number;
  }

  class Channel {
    readonly client: Client;
    readonly name: string;
    /** 'EPOCH:ID' ('ID' while the epoch is unknown); null before the gateway said. */
    readonly cursor: Cursor | null;
    readonly epoch: string | null;
    readonly id: string | null;
    readonly subscribed: boolean;
    readonly state: SubscriptionState;

    on(event: 'join' | 'leave', fn: (who: Presence, msg: Envelope<Presence>) => void): this;
    on(event: 'gap', fn: (info: GapInfo) => void): this;
    on(event: SubscriptionState, fn: (info: SubscriptionInfo) => void): this;
    on(event: '*', fn: (msg: Envelope) => void): this;
    on<T = any>(event: string, fn: (data: T, msg: Envelope<T>) => void): this;
    once(event: 'join' | 'leave', fn: (who: Presence, msg: Envelope<Presence>) => void): this;
    once(event: 'gap', fn: (info: GapInfo) => void): this;
    once(event: SubscriptionState, fn: (info: SubscriptionInfo) => void): this;
    once(event: '*', fn: (msg: Envelope) => void): this;
    once<T = any>(event: string, fn: (data: T, msg: Envelope<T>) => void): this;
    off(event: string, fn?: (...args: any[]) => void): this;
    /** Calls the handlers of a name, as the client does; true if there were any. */
    emit(event: string, ...args: unknown[]): boolean;

    publish(event: string | null, data: unknown, ack?: Ack): Client;
    publish(event: string | null, data: unknown, opts: PublishOptions | null, ack?: Ack): Client;
    broadcast(event: string | null, data: unknown, ack?: Ack): Client;
    broadcast(event: string | null, data: unknown, opts: PublishOptions | null, ack?: Ack): Client;
    unsubscribe(): void;
  }

  class Client {
    constructor(url?: string, options?: Options);
    /** This client's id: `from` of what it publishes. */
    readonly id: string;
    readonly url: string;
    readonly transport: TransportName | null;
    readonly readyState: ReadyState;
    readonly stats: Stats;
    readonly options: Readonly<Required<Options>>;

    subscribe(channel: string, opts?: SubscribeOptions): Channel;
    publish(channel: string, event: string | null, data: unknown, ack?: Ack): this;
    publish(channel: string, event: string | null, data: unknown,
            opts: PublishOptions | null, ack?: Ack): this;
    broadcast(channel: string, event: string | null, data: unknown, ack?: Ack): this;
    broadcast(channel: string, event: string | null, data: unknown,
              opts: PublishOptions | null, ack?: Ack): this;
    /** The composite cursor: every channel's cursor joined with ','. */
    cursor(): string;
    /** Stops every request; keeps the channels and their cursors. */
    close(): void;
    /** Opens a closed client again. */
    connect(): this;

    on(event: 'open', fn: (e: OpenEvent) => void): this;
    on(event: 'close', fn: (e: CloseEvent) => void): this;
    on(event: 'reconnecting', fn: (e: ReconnectingEvent) => void): this;
    on(event: 'transport', fn: (name: TransportName, previous: TransportName | null) => void): this;
    on(event: 'message', fn: (msg: Envelope) => void): this;
    on(event: 'gap', fn: (info: GapInfo) => void): this;
    on(event: 'error', fn: (e: ErrorEvent) => void): this;
    once(event: 'open', fn: (e: OpenEvent) => void): this;
    once(event: 'close', fn: (e: CloseEvent) => void): this;
    once(event: 'reconnecting', fn: (e: ReconnectingEvent) => void): this;
    once(event: 'transport', fn: (name: TransportName, previous: TransportName | null) => void): this;
    once(event: 'message', fn: (msg: Envelope) => void): this;
    once(event: 'gap', fn: (info: GapInfo) => void): this;
    once(event: 'error', fn: (e: ErrorEvent) => void): this;
    off(event: string, fn?: (...args: any[]) => void): this;
    /** Calls the handlers of a name, as the client does; true if there were any. */
    emit(event: string, ...args: unknown[]): boolean;
  }

  function connect(url?: string, options?: Options): Client;

  /** ['ws', 'sse', 'longpoll', 'poll'] */
  const transports: TransportName[];
  /** Whether this browser (or env) has what a transport needs. */
  function supported(name: TransportName, env?: Options['env']): boolean;
  const version: string;
}

export = anypush;
export as namespace anypush;
