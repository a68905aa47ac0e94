/**
 * Entry point: one LiveStore for the page (token from `?token=`, the WebSocket on the
 * same host), notifications paced by requestAnimationFrame, and the Svelte app.
 *
 * With `?trace=1` the page records, per TR, the wall-clock time (ms since the epoch) at
 * which that TR was drawn, in `window.syncactTrace` (the end-to-end test reads it to
 * measure display latency).
 */
import { flushSync, mount } from 'svelte';
import App from './App.svelte';
import { LiveStore, type SocketLike } from './lib/store.ts';
import './app.css';

const params = new URLSearchParams(location.search);
const trace = params.get('trace') === '1';
const drawn: Record<number, number> = {};
if (trace) (window as unknown as { syncactTrace: Record<number, number> }).syncactTrace = drawn;

const store: LiveStore = new LiveStore({
  wsUrl: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`,
  token: params.get('token'),
  socket: (url) => new WebSocket(url) as unknown as SocketLike,
  schedule: (fn) =>
    requestAnimationFrame(() => {
      fn();
      flushSync(); // the panels' canvas effects run now, so "drawn" below means drawn
      const tr = store.state.tr;
      if (trace && tr >= 0 && drawn[tr] === undefined) drawn[tr] = performance.timeOrigin + performance.now();
    }),
});

mount(App, { target: document.getElementById('app')!, props: { store } });
store.connect();
