import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Channel, Notifications } from '../../domain/ports/notifications.js';

/** Notifications within one process (the SQLite mode: no other process shares the database). */
export function createLocalNotifications(): Notifications {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  return {
    origin: randomUUID(),
    listen(channel: Channel, handler) {
      emitter.on(channel, handler);
    },
    async notify(channel, payload) {
      // Asynchronous like a database round trip: a handler never runs inside its sender.
      setImmediate(() => emitter.emit(channel, payload));
    },
    live: true,
    onResync() {},
    async start() {},
    async close() {
      emitter.removeAllListeners();
    },
  };
}
