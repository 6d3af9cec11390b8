// Each marked line is a mistake the declarations must catch: t_types.js
// expects tsc to report exactly these lines (so the check can fail).
import anypush = require('anypush-client');

const c = anypush.connect('', { transports: ['websocket'] });     // MISUSE
c.subscribe('news', { since: 17 });                                // MISUSE
c.on('open', (e) => { const s: string = e.reconnect; void s; });   // MISUSE
c.subscribe('news').on('join', (who) => { void who.nick; });        // MISUSE
c.publish('news', 'e', {}, { timeout: '1s' });                     // MISUSE
const state: anypush.ReadyState = 'opened';                        // MISUSE
anypush.connect('', { shared: 'yes' });                            // MISUSE
void state;
