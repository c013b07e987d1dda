// Content script (isolated world): passes the page's hook events to the background. The page can post
// anything, so each event is sanitized again here, before it leaves the page: statistics only.
import { sanitizeEvent } from '../src/devtools/hook.js';
import { PAGE_MESSAGE, type RelayMessage } from './protocol.js';

function send(message: RelayMessage): void {
  // best effort: nothing listens while the extension reloads
  chrome.runtime.sendMessage(message).catch(() => {});
}

send({ kind: 'page' });
window.addEventListener('message', (e: MessageEvent) => {
  if (e.source !== window || e.data?.source !== PAGE_MESSAGE) return;
  const event = sanitizeEvent(e.data.event);
  if (event) send({ kind: 'event', event });
});
